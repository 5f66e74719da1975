"""The `clear` backend: a NumPy simulator of CKKS slot semantics, unencrypted.

It keeps every rule the HE backends keep (levels, scale degrees, rotation
keys, owners, serialization) but computes on float64 arrays in the clear, so
it is the reference every other backend is checked against. It offers no
privacy at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hejax.backend import Backend, Capabilities, Context
from hejax.errors import InvalidInputError, SerializationError


class IdentityCodec:
    """Encoding, encryption and decryption that copy the array: no keys.

    Mixed into the contexts of the clear reference backends, before their
    :class:`~hejax.backend.Context` base.
    """

    def _export_public(self) -> bytes:
        return b""

    def _encode(self, values: np.ndarray, level: int, degree: int) -> np.ndarray:
        return values.copy()

    def _encrypt(self, pt: np.ndarray, level: int) -> np.ndarray:
        return pt.copy()

    def _decrypt(self, ct: np.ndarray, level: int, degree: int) -> np.ndarray:
        return ct.copy()


class ClearContext(IdentityCodec, Context):
    """Context of the clear backend; ciphertexts are float64 arrays."""

    def _add(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + b

    def _sub(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a - b

    def _negate(self, ct: np.ndarray) -> np.ndarray:
        return -ct

    _add_plain = _add

    def _mul_plain(self, ct: np.ndarray, pt: np.ndarray) -> np.ndarray:
        return ct * pt

    def _mul_scalar(self, ct: np.ndarray, scalar: float, level: int) -> np.ndarray:
        return ct * scalar

    def _rescale(self, ct: np.ndarray, level: int) -> np.ndarray:
        return ct

    def _drop_level(self, ct: np.ndarray, level: int, to: int, degree: int):
        return ct

    def _rotate_many(self, ct: np.ndarray, steps: Sequence[int]) -> list[np.ndarray]:
        return [np.roll(ct, -s) for s in steps]

    def _serialize_ct(self, ct: np.ndarray) -> bytes:
        return ct.astype("<f8").tobytes()

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> np.ndarray:
        if len(data) != 8 * self.slots:
            raise SerializationError(
                f"clear ciphertext holds {len(data)} bytes, expected {8 * self.slots}"
            )
        return np.frombuffer(data, dtype="<f8").astype(np.float64)


class ClearBackend(Backend):
    """NumPy slot simulator with CKKS-like levels; no encryption.

    Parameters: ``slots`` (any power of two ≥ 2) and ``max_depth``.
    """

    name = "clear"
    presets: Mapping[str, Mapping[str, Any]] = {
        "default": {"slots": 4096, "max_depth": 16},
        "n16384": {"slots": 8192, "max_depth": 16},
        "small": {"slots": 1024, "max_depth": 16},
    }
    default_preset = "default"

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        slots, depth = params["slots"], params["max_depth"]
        if not isinstance(slots, int) or slots < 2 or slots & (slots - 1):
            raise InvalidInputError(
                f"clear: slots must be a power of two ≥ 2, got {slots!r}"
            )
        if not isinstance(depth, int) or depth < 0:
            raise InvalidInputError(
                f"clear: max_depth must be an int ≥ 0, got {depth!r}"
            )
        return Capabilities(
            scheme="clear",
            exact=True,
            slots=slots,
            rotations=True,
            rotation_cost="free",
            hoisting=False,
            max_depth=depth,
            security_bits=0,
            encodings=("slot",),
            precision=1e-12,
            max_abs=2.0**40,
        )

    def _keygen(self, owner: bytes, steps: list[int]) -> ClearContext:
        return ClearContext(self, owner, steps)

    def _load_public(self, owner: bytes, steps: list[int], payload: bytes):
        if payload:
            raise SerializationError("clear public bundle has an unexpected payload")
        return ClearContext(self, owner, steps)


__all__ = ["ClearBackend", "ClearContext"]
