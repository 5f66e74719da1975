"""The tenseal context: hejax's hooks on SEAL CKKS objects.

A context holds the public key and the Galois keys of exactly the rotation
steps asked for, and the client's context also a decryptor. Plaintexts keep
their slot values and are encoded on first use at the scale that use needs
(see :mod:`hejax_tenseal._chain`), then reused.

SEAL refuses to return a ciphertext whose second component vanished (a
product by an all-zero plaintext, or ``a - a``), since its value is zero and
known to anyone. Those results are replaced here by a fresh public-key
encryption of zero at the same level and scale, which looks like any other
ciphertext.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import tenseal.sealapi as seal

from hejax import _wire
from hejax.backend import Context
from hejax.errors import InternalError, SerializationError
from hejax_tenseal import _io
from hejax_tenseal._chain import Chain

if TYPE_CHECKING:
    from hejax_tenseal._backend import TenSEALBackend

_TRANSPARENT = "transparent"


class SlotPlaintext:
    """Slot values for one level and degree, with their SEAL encodings by scale.

    Attributes:
        values: the float64 slot values.
        level: level of the ciphertexts it meets.
        degree: scale degree it was encoded for.
    """

    __slots__ = ("_encoded", "degree", "level", "values")

    def __init__(self, values: np.ndarray, level: int, degree: int):
        self.values = values
        self.level = level
        self.degree = degree
        self._encoded: dict[float, Any] = {}

    def at_scale(self, chain: Chain, scale: float) -> Any:
        """Return the SEAL plaintext at `scale`, encoding it on first use."""
        pt = self._encoded.get(scale)
        if pt is None:
            pt = seal.Plaintext()
            chain.encoder.encode(
                self.values.tolist(), chain.parms_id(self.level), scale, pt
            )
            self._encoded[scale] = pt
        return pt


class TenSEALContext(Context):
    """A SEAL CKKS key set seen by the client (secret key) or the server.

    Args:
        backend: the backend that made it.
        owner: id of the key set.
        rotations: rotation steps in ``[1, slots)`` with Galois keys.
        chain: the modulus chain and SEAL context of the backend.
        public_key: the SEAL public key.
        galois_keys: SEAL Galois keys for exactly `rotations`.
        secret_key: the SEAL secret key, for the client only.
    """

    def __init__(
        self,
        backend: TenSEALBackend,
        owner: bytes,
        rotations: Iterable[int],
        chain: Chain,
        public_key: Any,
        galois_keys: Any,
        secret_key: Any = None,
    ):
        super().__init__(backend, owner, rotations)
        self._chain = chain
        self._ev = chain.evaluator
        self._public_key = public_key
        self._galois_keys = galois_keys
        self._encryptor = seal.Encryptor(chain.context, public_key)
        self._decryptor = (
            None if secret_key is None else seal.Decryptor(chain.context, secret_key)
        )

    # -- keys ---------------------------------------------------------------

    def _export_public(self) -> bytes:
        galois = _io.dump(self._galois_keys) if self.rotations else b""
        return _wire.pack_sections(
            {
                "parms": _io.dump(self._chain.parms),
                "public_key": _io.dump(self._public_key),
                "galois_keys": galois,
            }
        )

    # -- encoding and encryption -------------------------------------------

    def _encode(self, values: np.ndarray, level: int, degree: int) -> SlotPlaintext:
        self._chain.scale(level, degree)
        return SlotPlaintext(values.copy(), level, degree)

    def _encrypt(self, pt: SlotPlaintext, level: int) -> Any:
        out = seal.Ciphertext()
        self._encryptor.encrypt(pt.at_scale(self._chain, self._chain.base_scale), out)
        return out

    def _decrypt(self, ct: Any, level: int, degree: int) -> np.ndarray:
        # Fewer primes decrypt faster: switch down as far as the scale allows.
        lowest = self._chain.spec.depth - (degree - 1)
        if level < lowest:
            low = seal.Ciphertext()
            self._ev.mod_switch_to(ct, self._chain.parms_id(lowest), low)
            ct = low
        pt = seal.Plaintext()
        self._decryptor.decrypt(ct, pt)
        return np.asarray(self._chain.encoder.decode_double(pt), dtype=np.float64)

    def _zero(self, level: int, degree: int) -> Any:
        pt = seal.Plaintext()
        scale = self._chain.scale(level, degree)
        self._chain.encoder.encode(0.0, self._chain.parms_id(level), scale, pt)
        out = seal.Ciphertext()
        self._encryptor.encrypt(pt, out)
        return out

    def _place(self, ct: Any) -> tuple[int, int]:
        level = self._chain.level_of(ct.parms_id())
        if level is None:
            raise InternalError("tenseal: a ciphertext left the modulus chain")
        return level, 1 if ct.scale == self._chain.base_scale else 2

    def _run(
        self, op: Callable[..., None], *args: Any, place: tuple[int, int] | None = None
    ) -> Any:
        """Run a SEAL evaluator op into a new ciphertext; zero stays encrypted."""
        out = seal.Ciphertext()
        try:
            op(*args, out)
        except RuntimeError as exc:
            if _TRANSPARENT not in str(exc):
                raise
            return self._zero(*(place or self._place(args[0])))
        return out

    # -- arithmetic -----------------------------------------------------------

    def _add(self, a: Any, b: Any) -> Any:
        return self._run(self._ev.add, a, b)

    def _sub(self, a: Any, b: Any) -> Any:
        return self._run(self._ev.sub, a, b)

    def _negate(self, ct: Any) -> Any:
        return self._run(self._ev.negate, ct)

    def _add_plain(self, ct: Any, pt: SlotPlaintext) -> Any:
        scale = self._chain.scale(pt.level, pt.degree)
        return self._run(self._ev.add_plain, ct, pt.at_scale(self._chain, scale))

    def _mul_plain(self, ct: Any, pt: SlotPlaintext) -> Any:
        place = (pt.level, 2)
        if not np.any(pt.values):
            return self._zero(*place)
        encoded = pt.at_scale(self._chain, self._chain.mul_scale(pt.level))
        return self._run(self._ev.multiply_plain, ct, encoded, place=place)

    def _mul_scalar(self, ct: Any, scalar: float, level: int) -> Any:
        pt = seal.Plaintext()
        scale = self._chain.mul_scale(level)
        self._chain.encoder.encode(scalar, self._chain.parms_id(level), scale, pt)
        return self._run(self._ev.multiply_plain, ct, pt, place=(level, 2))

    def _rescale(self, ct: Any, level: int) -> Any:
        out = seal.Ciphertext()
        self._ev.rescale_to_next(ct, out)
        if out.scale != self._chain.base_scale:
            raise InternalError(
                f"tenseal: rescale from level {level} gave scale {out.scale}, "
                f"expected {self._chain.base_scale}"
            )
        return out

    def _drop_level(self, ct: Any, level: int, to_level: int, degree: int) -> Any:
        target = self._chain.parms_id(to_level)
        if degree == 1:
            return self._run(self._ev.mod_switch_to, ct, target)

        # A mod switch keeps the scale Δ·q_level, but degree 2 at `to_level`
        # needs Δ·q_to_level: rescale to Δ, switch, multiply by q_to_level.
        one = seal.Plaintext()
        scale = self._chain.mul_scale(to_level)
        self._chain.encoder.encode(1.0, target, scale, one)
        out = self._rescale(ct, level)
        if to_level > level + 1:
            self._ev.mod_switch_to_inplace(out, target)
        return self._run(self._ev.multiply_plain, out, one, place=(to_level, 2))

    def _rotate_many(self, ct: Any, steps: Sequence[int]) -> list[Any]:
        return [
            self._run(self._ev.rotate_vector, ct, s, self._galois_keys) for s in steps
        ]

    # -- serialization -------------------------------------------------------

    def _serialize_ct(self, ct: Any) -> bytes:
        return _io.dump(ct)

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> Any:
        ct = _io.load(seal.Ciphertext(), data, self._chain.context)
        if ct.size() != 2:
            raise SerializationError(
                f"tenseal ciphertext has {ct.size()} components, expected 2"
            )
        if self._chain.level_of(ct.parms_id()) != level:
            raise SerializationError(
                f"tenseal ciphertext is not at level {level} as its header says"
            )
        expected = self._chain.scale(level, degree)
        if ct.scale != expected:
            raise SerializationError(
                f"tenseal ciphertext has scale {ct.scale}, expected {expected} for "
                f"level {level}, degree {degree}"
            )
        return ct


__all__ = ["SlotPlaintext", "TenSEALContext"]
