"""Coefficient encoding: exact arithmetic in the ring Z_t[X]/(X^N + 1).

A coefficient backend (BFV) encrypts a polynomial of degree < N whose
coefficients are integers mod the plaintext modulus t. Adding two
ciphertexts adds coefficient-wise; multiplying by a plaintext polynomial is
the negacyclic ring product (``X^N = -1``), which is how one product computes
a whole convolution (see :mod:`hejax.transforms.coef`). Nothing is rounded:
decryption returns the exact residues, centred in ``(-t/2, t/2]``.

:class:`CoefContext` is the :class:`~hejax.backend.Context` of such a
backend. It keeps the key checks, ownership and serialization of the slot
contexts, but values are integers, a product keeps level 0 and degree 1, and
there are no rescales, level drops or rotations. Plugins implement the hooks
on raw library objects; :func:`ring_mul` is the NumPy reference of the
product that the ``clear-bfv`` backend and the conformance suite use.

Not handled here: ciphertext × ciphertext products (hejax never needs them)
and the slot (batched) encoding of BFV.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

from hejax.backend import Ciphertext, Context, Plaintext
from hejax.errors import InternalError, InvalidInputError

__all__ = ["CoefContext", "centered", "residues", "ring_mul"]

#: Largest plaintext modulus a coefficient backend may use (OpenFHE's limit
#: for coefficient-packed plaintexts; the other backends follow it so that
#: every backend runs every compiled program).
MAX_PLAIN_MODULUS = 2**32

_LIMB = 11  # three 11-bit limbs cover 33 bits; limb products stay exact in FFT


def residues(values: Any, t: int) -> np.ndarray:
    """Integers reduced to ``[0, t)`` as int64 (any integer dtype or Python ints)."""
    arr = np.asarray(values)
    if arr.dtype == object:
        return np.array([int(v) % t for v in arr.ravel()], dtype=np.int64).reshape(
            arr.shape
        )
    return np.mod(arr.astype(np.int64), t)


def centered(res: np.ndarray, t: int) -> np.ndarray:
    """Residues in ``[0, t)`` mapped to ``(-t/2, t/2]`` (int64)."""
    res = np.asarray(res, dtype=np.int64)
    return np.where(res > t // 2, res - t, res)


def ring_mul(a: np.ndarray, b: np.ndarray, t: int) -> np.ndarray:
    """Exact product of two polynomials in Z_t[X]/(X^N + 1).

    Both operands are split into 11-bit limbs; each limb convolution is
    computed with a float64 FFT whose entries stay below 2^53 (N·2^22 for
    N ≤ 2^16), so rounding the FFT output recovers it exactly.

    Args:
        a: residues in ``[0, t)``, length N (a power of two).
        b: residues in ``[0, t)``, length N.
        t: the modulus, at most 2^32.

    Returns:
        The residues of the product, int64 in ``[0, t)``.
    """
    n = a.size
    if t > MAX_PLAIN_MODULUS or n > 2**16:
        raise InternalError(f"ring_mul supports t ≤ 2^32 and N ≤ 2^16, got {t}, {n}")
    mask = (1 << _LIMB) - 1
    la = [(a >> (_LIMB * i)) & mask for i in range(3)]
    lb = [(b >> (_LIMB * i)) & mask for i in range(3)]
    fa = [np.fft.rfft(x.astype(np.float64), 2 * n) for x in la]
    fb = [np.fft.rfft(x.astype(np.float64), 2 * n) for x in lb]
    out = np.zeros(n, dtype=np.uint64)
    tt = np.uint64(t)
    for k in range(5):
        spec = sum(fa[i] * fb[k - i] for i in range(3) if 0 <= k - i < 3)
        full = np.rint(np.fft.irfft(spec, 2 * n)).astype(np.int64)
        part = np.mod(full[:n] - full[n:], t).astype(np.uint64)
        weight = np.uint64(pow(2, _LIMB * k, t))
        out = (out + part * weight % tt) % tt
    return out.astype(np.int64)


class CoefContext(Context):
    """A key set of a coefficient-encoded (BFV) backend.

    Values are integer polynomials of up to ``ring_dim`` coefficients; the
    capabilities carry the plaintext modulus ``plain_modulus``. Every
    ciphertext stays at level 0 and degree 1.
    """

    @property
    def modulus(self) -> int:
        """The plaintext modulus t."""
        return self.capabilities.plain_modulus

    def encode(self, values: Any, *, level: int = 0, degree: int = 1) -> Plaintext:
        """Encode integer coefficients (reduced mod t) into a plaintext.

        Args:
            values: 1-D integers, at most ``ring_dim`` of them; shorter
                vectors are padded with zeros. Any integers are accepted and
                reduced mod t.
            level: must be 0.
            degree: must be 1.

        Raises:
            InvalidInputError: for non-integer values, a wrong length, or a
                level or degree other than 0 and 1.
        """
        if (level, degree) != (0, 1):
            raise InvalidInputError(
                f"coefficient backends have one level and no scale: encode at "
                f"level 0, degree 1 (got level {level}, degree {degree})"
            )
        vec = self._coef_vector(values)
        handle = self._call("encode", self._encode, vec, 0, 1)
        return Plaintext(handle, self.owner, 0, 1)

    def decrypt(self, ct: Ciphertext) -> np.ndarray:
        """Decrypt all coefficients, centred in ``(-t/2, t/2]``, as int64."""
        self._require_secret()
        self._check_owned(ct, "ciphertext")
        out = self._call("decrypt", self._decrypt, ct.handle, 0, 1)
        res = residues(np.asarray(out)[: self.slots], self.modulus)
        return centered(res, self.modulus)

    def mul_plain(self, ct: Ciphertext, pt: Plaintext | Any) -> Ciphertext:
        """Return the ring product ``ct · pt`` (exact, stays at degree 1)."""
        self._check_owned(ct, "ciphertext")
        pt = self._plain_for(ct, pt, 1, "mul_plain")
        return self._like(
            ct, self._call("mul_plain", self._mul_plain, ct.handle, pt.handle)
        )

    def mul_scalar(self, ct: Ciphertext, scalar: Any) -> Ciphertext:
        """Return ``ct · scalar`` for an integer scalar (reduced mod t)."""
        if isinstance(scalar, bool) or not isinstance(scalar, int | np.integer):
            raise InvalidInputError(
                f"coefficient backends multiply by integer scalars, got {scalar!r}"
            )
        return self.mul_plain(ct, self.encode([int(scalar) % self.modulus]))

    def rescale(self, ct: Ciphertext) -> Ciphertext:
        """Coefficient backends have nothing to rescale: always an error."""
        raise InvalidInputError(
            f"{self.backend.name} computes exactly on integers and has no rescale"
        )

    def _require_secret(self) -> None:
        if not self._has_secret:
            from hejax.errors import SecretKeyError

            raise SecretKeyError(
                f"this {self.backend.name} context was built from a public bundle "
                "and holds no secret key: only the client that generated the "
                "keys can decrypt"
            )

    def _coef_vector(self, values: Any) -> np.ndarray:
        if isinstance(values, Ciphertext | Plaintext):
            raise InvalidInputError(f"expected values, got a {type(values).__name__}")
        arr = np.asarray(values)
        if arr.dtype.kind not in "iu" and arr.dtype != object:
            raise InvalidInputError(
                f"coefficients must be integers, got dtype {arr.dtype}; scale "
                "reals to fixed point first (hejax.fixedpoint)"
            )
        if arr.ndim != 1 or not 0 < arr.size <= self.slots:
            raise InvalidInputError(
                f"expected a 1-D vector of 1 to {self.slots} coefficients, got "
                f"shape {arr.shape}"
            )
        res = residues(arr, self.modulus)
        return np.pad(res, (0, self.slots - res.size))

    # -- hooks a coefficient backend does not have ------------------------

    def _mul_scalar(self, ct: Any, scalar: float, level: int) -> Any:
        raise InternalError("coefficient contexts multiply scalars as plaintexts")

    def _rescale(self, ct: Any, level: int) -> Any:
        raise InternalError("coefficient contexts have no rescale")

    def _drop_level(self, ct: Any, level: int, to_level: int, degree: int) -> Any:
        raise InternalError("coefficient contexts have one level")

    def _rotate_many(self, ct: Any, steps: Sequence[int]) -> list[Any]:
        raise InternalError("coefficient contexts have no rotation keys")

    # -- hooks a coefficient backend implements ---------------------------

    @abc.abstractmethod
    def _encode(self, values: np.ndarray, level: int, degree: int) -> Any:
        """Make a plaintext from N residues in ``[0, t)`` (int64)."""

    @abc.abstractmethod
    def _decrypt(self, ct: Any, level: int, degree: int) -> np.ndarray:
        """Decrypt to N integers congruent to the coefficients mod t."""
