"""The OpenFHE context: hejax's hooks on OpenFHE CKKS objects.

Levels and scale degrees follow OpenFHE's FIXEDMANUAL rescaling one to one:
a hejax level is ``ct.GetLevel()`` (rescales done), a degree is
``ct.GetNoiseScaleDeg()``. Products never rescale by themselves;
:meth:`OpenFHEContext._rescale` does one ``Rescale`` and
:meth:`OpenFHEContext._drop_level` one ``LevelReduce``.

Exact scales
------------
FIXEDMANUAL takes every scale to be Δ = 2^scale_bits, but the prime q_l a
rescale at level l divides by is only close to Δ (within a few 1e-6 at
N = 32768), so each rescale would shift the values by the factor Δ / q_l
and the shifts add up over the levels. This backend keeps every degree-1
ciphertext at exactly Δ instead: the factor of a product (plaintext or
scalar) is multiplied by q_l / Δ, which makes the product's scale Δ·q_l
and the rescale return Δ. Degree-2 plaintexts are encoded for that scale,
and degree-2 ciphertexts are decoded from it. Only a degree-2 ciphertext
moved by ``drop_level`` keeps the scale of its old level: a relative error
of at most ``max |q_l - q_m| / Δ``, as plain FIXEDMANUAL would have for
every product.

A plaintext handle keeps its values and encodes them on first use, once as
given (to encrypt or add) and once with the factor of its level (to
multiply), since the hook that encodes cannot know which use follows.

Rotation keys and OpenFHE's key store
-------------------------------------
OpenFHE looks rotation keys up in one process-wide store, keyed by the tag
of the secret key (a random id each ``KeyGen`` draws, carried by the public
key and by every ciphertext). Key sets therefore never collide with each
other, but the store is shared: ``EvalRotateKeyGen`` skips indices the tag
already holds, and anyone may empty the whole store
(``ClearEvalAutomorphismKeys``, ``ReleaseAllContexts``). So each context
keeps its own map of rotation keys (an ``EvalKeyMap``, from
``EvalAutomorphismKeyGen`` on the client, from the public bundle on the
server) and inserts it under its tag before every rotation; that costs
microseconds when the keys are there and reinstalls them when someone
cleared the store. A client and a server context of one key set in one
process hold equal keys under the same tag, so either's insertion serves
both. Keys stay in the store until the process ends or it is cleared.

The public bundle holds the crypto context, the public key and the rotation
keys, each in OpenFHE's own BINARY serialization; this OpenFHE build
serializes an ``EvalKeyMap`` to bytes, so no temporary files are involved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import openfhe

from hejax import _wire
from hejax.backend import Context
from hejax.errors import KeyMismatchError, LevelMismatchError, SerializationError
from hejax_openfhe._rehome import rehome


class _Plain:
    """Values of a plaintext with their OpenFHE encodings, made on first use."""

    __slots__ = ("values", "level", "degree", "_as_given", "_as_factor")

    def __init__(self, values: np.ndarray, level: int, degree: int):
        self.values = values
        self.level = level
        self.degree = degree
        self._as_given = None
        self._as_factor = None

    def as_given(self, cc: Any) -> Any:
        if self._as_given is None:
            self._as_given = cc.MakeCKKSPackedPlaintext(
                self.values, self.degree, self.level
            )
        return self._as_given

    def as_factor(self, cc: Any, ratio: float) -> Any:
        if self._as_factor is None:
            self._as_factor = cc.MakeCKKSPackedPlaintext(
                self.values * ratio, self.degree, self.level
            )
        return self._as_factor


class OpenFHEContext(Context):
    """A key set of the OpenFHE CKKS backend: the client's or the server's.

    Args:
        backend: the :class:`~hejax_openfhe.OpenFHEBackend` it belongs to.
        crypto_context: OpenFHE crypto context of the backend's parameters.
        owner: hejax id of the key set.
        steps: rotation steps in ``[1, slots)`` that have keys.
        public_key: OpenFHE public key.
        rotation_keys: ``EvalKeyMap`` with the keys of `steps` (``None``
            when there are no steps).
        secret_key: OpenFHE secret key, on the client only.
    """

    def __init__(
        self,
        backend: Any,
        crypto_context: Any,
        owner: bytes,
        steps: Sequence[int],
        public_key: Any,
        rotation_keys: Any,
        secret_key: Any = None,
    ):
        super().__init__(backend, owner, steps)
        self._cc = crypto_context
        self._ratio = backend.rescale_ratios
        self._pk = public_key
        self._sk = secret_key
        self._tag = public_key.GetKeyTag()
        self._rotation_keys = rotation_keys
        self._template = None  # a local ciphertext; see `_rehome`
        self._install_rotation_keys()

    # -- keys -----------------------------------------------------------

    def _install_rotation_keys(self) -> None:
        if self._rotation_keys is not None:
            openfhe.CryptoContext.InsertEvalAutomorphismKey(
                self._rotation_keys, self._tag
            )

    def _export_public(self) -> bytes:
        sections = {
            "context": openfhe.Serialize(self._cc, openfhe.BINARY),
            "public_key": openfhe.Serialize(self._pk, openfhe.BINARY),
        }
        if self._rotation_keys is not None:
            sections["rotation_keys"] = openfhe.Serialize(
                self._rotation_keys, openfhe.BINARY
            )
        return _wire.pack_sections(sections)

    # -- encoding and encryption -------------------------------------------

    def _encode(self, values: np.ndarray, level: int, degree: int) -> _Plain:
        if degree == 2:
            values = values * self._ratio[level]
        return _Plain(values, level, degree)

    def _encrypt(self, pt: _Plain, level: int) -> Any:
        return self._cc.Encrypt(self._pk, pt.as_given(self._cc))

    def _decrypt(self, ct: Any, level: int, degree: int) -> np.ndarray:
        # Decoding is cheapest from the fewest primes: one holds a degree-1
        # value, two hold the square scale of a degree-2 value.
        drop = self.capabilities.max_depth - level - degree + 1
        if drop > 0:
            ct = self._cc.LevelReduce(ct, None, drop)
        pt = self._cc.Decrypt(self._sk, ct)
        pt.SetLength(self.slots)
        out = np.asarray(pt.GetRealPackedValueArray(), dtype=np.float64)
        return out / self._ratio[level] if degree == 2 else out

    # -- arithmetic ---------------------------------------------------------

    def _add(self, a: Any, b: Any) -> Any:
        return self._cc.EvalAdd(a, b)

    def _sub(self, a: Any, b: Any) -> Any:
        return self._cc.EvalSub(a, b)

    def _negate(self, ct: Any) -> Any:
        return self._cc.EvalNegate(ct)

    def _add_plain(self, ct: Any, pt: _Plain) -> Any:
        return self._cc.EvalAdd(ct, pt.as_given(self._cc))

    def _mul_plain(self, ct: Any, pt: _Plain) -> Any:
        factor = pt.as_factor(self._cc, self._ratio[pt.level])
        return self._cc.EvalMult(ct, factor)

    def _mul_scalar(self, ct: Any, scalar: float, level: int) -> Any:
        return self._cc.EvalMult(ct, scalar * self._ratio[level])

    def _rescale(self, ct: Any, level: int) -> Any:
        return self._cc.Rescale(ct)

    def _drop_level(self, ct: Any, level: int, to_level: int, degree: int) -> Any:
        if degree == 2 and to_level == self.capabilities.max_depth:
            # The last prime alone cannot hold the square scale of a product.
            raise LevelMismatchError(
                "drop_level: a product (degree 2) cannot move to the last level "
                f"({to_level}); rescale it first"
            )
        return self._cc.LevelReduce(ct, None, to_level - level)

    def _rotate_many(self, ct: Any, steps: Sequence[int]) -> list[Any]:
        self._install_rotation_keys()
        if len(steps) == 1:
            return [self._cc.EvalRotate(ct, steps[0])]
        order = 2 * self.capabilities.ring_dim
        digits = self._cc.EvalFastRotationPrecompute(ct)
        return [self._cc.EvalFastRotation(ct, k, order, digits) for k in steps]

    # -- serialization ------------------------------------------------------

    def _serialize_ct(self, ct: Any) -> bytes:
        return openfhe.Serialize(ct, openfhe.BINARY)

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> Any:
        ct = openfhe.DeserializeCiphertextString(data, openfhe.BINARY)
        if ct.GetKeyTag() != self._tag:
            raise KeyMismatchError(
                "openfhe ciphertext was encrypted under another OpenFHE key "
                f"(tag {ct.GetKeyTag()[:12]}…, this context's {self._tag[:12]}…)"
            )
        if (ct.GetLevel(), ct.GetNoiseScaleDeg()) != (level, degree):
            raise SerializationError(
                f"openfhe ciphertext is at level {ct.GetLevel()}, degree "
                f"{ct.GetNoiseScaleDeg()}, but its header says level {level}, "
                f"degree {degree}"
            )
        return self._rehome(ct)

    def _rehome(self, ct: Any) -> Any:
        if self._template is None:
            zero = self._cc.MakeCKKSPackedPlaintext([0.0])
            self._template = self._cc.Encrypt(self._pk, zero)
        return rehome(self._template, ct)


__all__ = ["OpenFHEContext"]
