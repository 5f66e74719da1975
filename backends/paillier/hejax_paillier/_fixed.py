"""Fixed-point encoding of the paillier backend, and its ciphertext bytes.

A real ``v`` is the integer ``round(v · 2^f)`` (``f = scale_bits``, 52 by
default), reduced mod ``n``; the upper half of ``[0, n)`` holds the negative
numbers. Rounding happens once, when a value is encoded, so every encoded
value is off by at most ``2^-(f+1)`` and everything after it is exact
integer arithmetic.

A ciphertext carries a scale exponent ``e``: its slots hold ``v · 2^(f·e)``.
A fresh encryption has ``e = 1``; a product by an encoded value adds one.
Paillier cannot divide a ciphertext, so the scale is never divided out
again: the exponent grows with the products, and the plaintext modulus must
hold ``max_abs · 2^(f·e)`` for the largest ``e`` a program reaches. That is
what the backend's ``max_depth`` states. Decoding divides by ``2^(f·e)``
exactly and rounds once to float64.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import gmpy2
import numpy as np

from hejax.errors import SerializationError

_HEAD = struct.Struct("<HI")  # scale exponent, number of ciphertexts


def to_fixed(values: np.ndarray, scale_bits: int) -> list[int]:
    """The nearest integers to ``values · 2^scale_bits`` (exact in float64).

    Multiplying by a power of two is exact in float64, and so is rounding a
    float64 to the nearest integer, as long as ``|v| · 2^f < 2^1023``.
    """
    scaled = np.rint(np.ldexp(np.asarray(values, dtype=np.float64), scale_bits))
    return [int(v) for v in scaled]


def signed(m: int, n: int) -> int:
    """The representative of ``m mod n`` in ``(-n/2, n/2]``."""
    return m - n if m > n // 2 else m


def from_fixed(ms: Sequence[int], n: int, bits: int) -> np.ndarray:
    """Decode plaintexts in ``[0, n)`` that hold values times ``2^bits``."""
    den = 1 << bits
    return np.array([signed(int(m), n) / den for m in ms], dtype=np.float64)


def pack(exponent: int, cs: Sequence[gmpy2.mpz], width: int) -> bytes:
    """Bytes of a ciphertext vector: exponent, count, fixed-width integers."""
    body = b"".join(int(c).to_bytes(width, "big") for c in cs)
    return _HEAD.pack(exponent, len(cs)) + body


def unpack(data: bytes, width: int, n2: gmpy2.mpz) -> tuple[int, list[gmpy2.mpz]]:
    """Read :func:`pack` bytes; every integer must be a unit-sized residue.

    Raises:
        SerializationError: for a wrong length or an integer outside
            ``(0, n²)``.
    """
    if len(data) < _HEAD.size:
        raise SerializationError("paillier ciphertext payload is truncated")
    exponent, count = _HEAD.unpack_from(data)
    if len(data) != _HEAD.size + count * width:
        raise SerializationError(
            f"paillier ciphertext payload holds {len(data)} bytes, expected "
            f"{_HEAD.size + count * width} for {count} ciphertexts of {width} bytes"
        )
    cs = []
    for i in range(count):
        start = _HEAD.size + i * width
        c = gmpy2.mpz(int.from_bytes(data[start : start + width], "big"))
        if not 0 < c < n2:
            raise SerializationError(
                f"paillier ciphertext {i} is not an integer in (0, n²)"
            )
        cs.append(c)
    return exponent, cs
