"""Fixed-point integers for exact schemes: quantization, rescaling, CRT.

Reals become integers with a number of fractional bits: ``q(x, f) =
floor(x·2^f + 1/2)`` (round half up). A product of an ``f``-bit value and a
``g``-bit weight has ``f + g`` fractional bits; :func:`rescale` drops ``g``
of them with the same round-half-up rule, ``(y + 2^(g-1)) >> g``, which is
well defined on every integer, negative ones included.

Rescaling commutes with ReLU (it is non-decreasing and maps 0 to 0), but not
with a multiplicative mask: ``rescale(d·y) ≠ d·rescale(y)`` in general. The
coefficient transform therefore only rescales values it sees unmasked (see
:mod:`hejax.transforms.coef`).

Where one plaintext modulus is too small, values live in Z_T with ``T`` the
product of several primes below 2^32; :func:`crt` recombines residues into
centred integers (Python ints in an object array when they exceed int64).

Not handled: moduli that are not pairwise coprime.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["crt", "primes_below", "quantize", "rescale", "residues_of"]


def quantize(x: np.ndarray, bits: int) -> np.ndarray:
    """``floor(x·2^bits + 1/2)`` (round half up), exactly.

    Scaling a float64 by a power of two is exact, and a float64 of magnitude
    ≥ 2^52 is already an integer, so the result is exact at any scale. It is
    int64 below 2^62 and an object array of Python ints above.
    """
    v = np.floor(np.asarray(x, dtype=np.float64) * 2.0**bits + 0.5)
    if v.size == 0 or np.max(np.abs(v)) < 2.0**62:
        return v.astype(np.int64)
    return np.vectorize(int, otypes=[object])(v)


def rescale(y: np.ndarray, bits: int) -> np.ndarray:
    """Drop `bits` fractional bits with round half up: ``(y + 2^(bits-1)) >> bits``.

    Works on int64 and on object arrays of Python ints (floor shifts both).
    """
    if bits == 0:
        return y
    return (y + (1 << (bits - 1))) >> bits


def _is_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d, s = d // 2, s + 1
    for a in (2, 3, 5, 7, 11, 13, 17):  # deterministic far beyond 2^32
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def primes_below(limit: int, count: int) -> list[int]:
    """The `count` largest primes below `limit` (descending)."""
    out, n = [], limit - 1
    while len(out) < count and n > 2:
        if _is_prime(n):
            out.append(n)
        n -= 1
    return out


def smallest_prime_above(n: int) -> int:
    """The smallest prime strictly greater than `n`."""
    n += 1
    while not _is_prime(n):
        n += 1
    return n


def residues_of(values: np.ndarray, t: int) -> np.ndarray:
    """Integers (int64 or object) reduced mod `t`, as int64."""
    if values.dtype == object:
        flat = [int(v) % t for v in values.ravel()]
        return np.array(flat, dtype=np.int64).reshape(values.shape)
    return np.mod(values, t)


def crt(residues: Sequence[np.ndarray], moduli: Sequence[int]) -> np.ndarray:
    """Centred integers in ``(-T/2, T/2]`` from their residues mod each modulus.

    Returns int64 when ``T < 2^62``, else an object array of Python ints.
    """
    if len(moduli) == 1:
        t = moduli[0]
        r = np.asarray(residues[0], dtype=np.int64) % t
        return np.where(r > t // 2, r - t, r)
    total = math.prod(moduli)
    acc = np.zeros(np.shape(residues[0]), dtype=object)
    for r, t in zip(residues, moduli, strict=True):
        rest = total // t
        coef = rest * pow(rest, -1, t)
        acc = acc + (np.asarray(r, dtype=np.int64) % t).astype(object) * coef
    acc = acc % total
    acc = np.where(acc > total // 2, acc - total, acc)
    if total < 2**62:
        return acc.astype(np.int64)
    return acc
