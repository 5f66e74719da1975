"""The `clear-bfv` backend: NumPy reference of coefficient-encoded BFV.

Ciphertexts are the coefficient residues themselves (int64 in ``[0, t)``):
additions are mod t and a plaintext product is the exact negacyclic ring
product of :func:`hejax.ring.ring_mul`. It keeps every rule of the HE
coefficient backends (owners, key checks, serialization, no decryption on
the server side) and is the reference they are checked against. It offers
no privacy at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hejax.backend import Backend, Capabilities
from hejax.backends.clear import IdentityCodec
from hejax.errors import InvalidInputError, SerializationError
from hejax.ring import MAX_PLAIN_MODULUS, CoefContext, ring_mul


def check_coef_params(name: str, params: Mapping[str, Any]) -> tuple[int, int]:
    """Validate ``ring_dim`` and ``plain_modulus`` of a coefficient backend.

    Raises:
        InvalidInputError: naming the parameter that is out of range.
    """
    n, t = params["ring_dim"], params["plain_modulus"]
    if not isinstance(n, int) or n < 16 or n & (n - 1) or n > 2**16:
        raise InvalidInputError(
            f"{name}: `ring_dim` must be a power of two in [16, 65536], got {n!r}"
        )
    if not isinstance(t, int) or not 3 <= t <= MAX_PLAIN_MODULUS:
        raise InvalidInputError(
            f"{name}: `plain_modulus` must be an int in [3, 2^32], got {t!r}"
        )
    return n, t


def coef_capabilities(n: int, t: int, security_bits: int) -> Capabilities:
    """Capabilities of a coefficient backend with ring N and modulus t."""
    return Capabilities(
        scheme="bfv",
        exact=True,
        slots=n,
        rotations=False,
        rotation_cost="none",
        hoisting=False,
        max_depth=0,
        security_bits=security_bits,
        encodings=("coefficient",),
        precision=0.0,
        max_abs=float((t - 1) // 2),
        ring_dim=n,
        plain_modulus=t,
    )


class ClearBFVContext(IdentityCodec, CoefContext):
    """Context of the clear-bfv backend; ciphertexts are residue arrays."""

    def _add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.mod(a + b, self.modulus)

    def _sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.mod(a - b, self.modulus)

    def _negate(self, ct: np.ndarray) -> np.ndarray:
        return np.mod(-ct, self.modulus)

    _add_plain = _add

    def _mul_plain(self, ct: np.ndarray, pt: np.ndarray) -> np.ndarray:
        return ring_mul(ct, pt, self.modulus)

    def _serialize_ct(self, ct: np.ndarray) -> bytes:
        return ct.astype("<i8").tobytes()

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> np.ndarray:
        if len(data) != 8 * self.slots:
            raise SerializationError(
                f"clear-bfv ciphertext holds {len(data)} bytes, expected "
                f"{8 * self.slots}"
            )
        ct = np.frombuffer(data, dtype="<i8").astype(np.int64)
        if ct.min() < 0 or ct.max() >= self.modulus:
            raise SerializationError("clear-bfv ciphertext holds residues out of range")
        return ct


class ClearBFVBackend(Backend):
    """NumPy reference of BFV coefficient encoding; no encryption.

    Parameters: ``ring_dim`` (power of two) and ``plain_modulus`` t
    (at most 2^32).
    """

    name = "clear-bfv"
    presets: Mapping[str, Mapping[str, Any]] = {
        "n8192": {"ring_dim": 8192, "plain_modulus": 4294967291},
        "n16384": {"ring_dim": 16384, "plain_modulus": 4294967291},
        "small": {"ring_dim": 1024, "plain_modulus": 65537},
    }
    default_preset = "n8192"

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        n, t = check_coef_params("clear-bfv", params)
        return coef_capabilities(n, t, 0)

    def _keygen(self, owner: bytes, steps: list[int]) -> ClearBFVContext:
        return ClearBFVContext(self, owner, steps)

    def _load_public(self, owner: bytes, steps: list[int], payload: bytes):
        if payload:
            raise SerializationError(
                "clear-bfv public bundle has an unexpected payload"
            )
        return ClearBFVContext(self, owner, steps)


__all__ = ["ClearBFVBackend", "ClearBFVContext", "check_coef_params"]
