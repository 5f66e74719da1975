"""The paillier context: hejax's hooks on vectors of Paillier ciphertexts.

One value per ciphertext: a hejax "ciphertext" of `slots` values is a list
of `slots` Paillier ciphertexts mod n² with one scale exponent (see
:mod:`hejax_paillier._fixed`). Sums, products by known integers and the
addition of known values are native; a rotation re-indexes the list and
costs nothing.

Levels map onto scale exponents: a ciphertext at ``(level, degree)`` has an
exponent of at most ``level + degree``. ``rescale`` and ``drop_level`` only
move hejax's bookkeeping (Paillier cannot divide); two operands with
different exponents are brought to the larger one when they are added, by
a product with a power of two (exact).

Limitations: a product by a zero weight gives the ciphertext 1, a
deterministic encryption of zero, and results are not re-randomized before
they are sent, so the client could tell such structural zeros apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import gmpy2
import numpy as np

from hejax import _wire
from hejax.backend import Context
from hejax.errors import SerializationError
from hejax_paillier import _fixed, _kernels, _parallel

if TYPE_CHECKING:
    from hejax_paillier._backend import PaillierBackend


class PaillierPlaintext:
    """Slot values encoded as integers at scale ``2^f``, for a level and degree.

    Attributes:
        ints: ``round(v · 2^f)`` per slot, signed.
        level: level of the ciphertexts it meets.
        degree: scale degree it was encoded for.
    """

    __slots__ = ("degree", "ints", "level")

    def __init__(self, ints: list[int], level: int, degree: int):
        self.ints = ints
        self.level = level
        self.degree = degree


class PaillierVector:
    """Paillier ciphertexts of the slots, holding ``v · 2^(f·exponent)``.

    Attributes:
        cs: one ``gmpy2.mpz`` mod n² per slot.
        exponent: the scale exponent ``e``.
    """

    __slots__ = ("cs", "exponent")

    def __init__(self, cs: list[gmpy2.mpz], exponent: int):
        self.cs = cs
        self.exponent = exponent


class PaillierContext(Context):
    """A Paillier key seen by the client (with the primes) or the server.

    Args:
        backend: the backend that made it.
        owner: id of the key set.
        rotations: rotation steps in ``[1, slots)`` the program may use
            (free, but only these are allowed, as in every backend).
        n: the public modulus.
        primes: ``(p, q)`` for the client; None for the server.
    """

    def __init__(
        self,
        backend: PaillierBackend,
        owner: bytes,
        rotations: Iterable[int],
        n: int,
        primes: tuple[int, int] | None = None,
    ):
        super().__init__(backend, owner, rotations)
        self._n = gmpy2.mpz(n)
        self._n2 = self._n * self._n
        self._width = (self._n2.bit_length() + 7) // 8
        self._primes = primes
        self._f = backend.params["scale_bits"]

    # -- helpers --------------------------------------------------------------

    def _par(self, kernel: Any, fixed: tuple, *columns: Sequence) -> list:
        be = self.backend
        return _parallel.run(
            kernel, fixed, columns, workers=be.workers, min_values=be.min_parallel
        )

    def _lift(self, ct: PaillierVector, exponent: int) -> list[gmpy2.mpz]:
        if ct.exponent == exponent:
            return ct.cs
        k = 1 << (self._f * (exponent - ct.exponent))
        return self._par(_kernels.mul_one, (self._n2, k), ct.cs)

    def _aligned(self, a: PaillierVector, b: PaillierVector):
        e = max(a.exponent, b.exponent)
        return e, self._lift(a, e), self._lift(b, e)

    # -- keys -----------------------------------------------------------------

    def _export_public(self) -> bytes:
        n = int(self._n)
        return _wire.pack_sections({"n": n.to_bytes((n.bit_length() + 7) // 8, "big")})

    # -- encoding and encryption -------------------------------------------

    def _encode(self, values: np.ndarray, level: int, degree: int) -> PaillierPlaintext:
        return PaillierPlaintext(_fixed.to_fixed(values, self._f), level, degree)

    def _encrypt(self, pt: PaillierPlaintext, level: int) -> PaillierVector:
        n = int(self._n)
        ms = [k % n for k in pt.ints]
        return PaillierVector(self._par(_kernels.encrypt, (n,), ms), 1)

    def _decrypt(self, ct: PaillierVector, level: int, degree: int) -> np.ndarray:
        n = int(self._n)
        ms = self._par(_kernels.decrypt, (n, *self._primes), ct.cs)
        return _fixed.from_fixed(ms, n, self._f * ct.exponent)

    # -- arithmetic -----------------------------------------------------------

    def _add(self, a: PaillierVector, b: PaillierVector) -> PaillierVector:
        e, x, y = self._aligned(a, b)
        return PaillierVector(_kernels.add(self._n2, x, y), e)

    def _sub(self, a: PaillierVector, b: PaillierVector) -> PaillierVector:
        return self._add(a, self._negate(b))

    def _negate(self, ct: PaillierVector) -> PaillierVector:
        return PaillierVector(
            self._par(_kernels.negate, (self._n2,), ct.cs), ct.exponent
        )

    def _add_plain(self, ct: PaillierVector, pt: PaillierPlaintext) -> PaillierVector:
        shift, n = self._f * (ct.exponent - 1), self._n
        ms = [(k << shift) % n for k in pt.ints]
        return PaillierVector(_kernels.add_plain(n, self._n2, ct.cs, ms), ct.exponent)

    def _mul_plain(self, ct: PaillierVector, pt: PaillierPlaintext) -> PaillierVector:
        cs = self._par(_kernels.mul, (self._n2,), ct.cs, pt.ints)
        return PaillierVector(cs, ct.exponent + 1)

    def _mul_scalar(self, ct: PaillierVector, scalar: float, level: int):
        (k,) = _fixed.to_fixed(np.array([scalar]), self._f)
        cs = self._par(_kernels.mul_one, (self._n2, k), ct.cs)
        return PaillierVector(cs, ct.exponent + 1)

    def _rescale(self, ct: PaillierVector, level: int) -> PaillierVector:
        return ct  # the scale exponent stays; only the level moves on

    def _drop_level(self, ct: PaillierVector, level: int, to_level: int, degree: int):
        return ct  # exponents are aligned lazily, when ciphertexts are added

    def _rotate_many(self, ct: PaillierVector, steps: Sequence[int]) -> list:
        return [PaillierVector(ct.cs[s:] + ct.cs[:s], ct.exponent) for s in steps]

    # -- serialization -------------------------------------------------------

    def _serialize_ct(self, ct: PaillierVector) -> bytes:
        return _fixed.pack(ct.exponent, ct.cs, self._width)

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> PaillierVector:
        exponent, cs = _fixed.unpack(data, self._width, self._n2)
        if len(cs) != self.slots:
            raise SerializationError(
                f"paillier ciphertext holds {len(cs)} values, expected {self.slots}"
            )
        if not 1 <= exponent <= level + degree:
            raise SerializationError(
                f"paillier ciphertext has scale exponent {exponent}, which a "
                f"ciphertext at level {level}, degree {degree} cannot have"
            )
        return PaillierVector(cs, exponent)


__all__ = ["PaillierContext", "PaillierPlaintext", "PaillierVector"]
