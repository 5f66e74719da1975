"""The OpenFHE backend class: parameters, key generation, public bundles."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import openfhe

from hejax import _wire
from hejax.backend import Backend, Capabilities
from hejax.errors import KeyMismatchError, SerializationError
from hejax_openfhe import _params
from hejax_openfhe._context import OpenFHEContext


class OpenFHEBackend(Backend):
    """CKKS of OpenFHE with FIXEDMANUAL rescaling and HYBRID key switching.

    Presets (see :data:`hejax_openfhe._params.PRESETS`): ``"n8192"`` (depth
    2, the default), ``"n16384"`` (depth 6), ``"n32768"`` (depth 16), all at
    128-bit security, and ``"toy"`` (N = 2048, insecure, for tests). Each
    parameter of a preset can be overridden: ``ring_dim``, ``depth``,
    ``scale_bits``, ``first_mod_bits``, ``num_large_digits``.

    Attributes:
        crypto_context: the OpenFHE crypto context of the parameters, shared
            by every key set of this backend.
        rescale_ratios: ``q_l / Δ`` for each level ``l``: the prime a rescale
            at level ``l`` divides by, over the nominal scale (1.0 at the
            last level, where no product is left).
    """

    name = "openfhe"
    presets: Mapping[str, Mapping[str, Any]] = _params.PRESETS
    default_preset = "n8192"
    context_class = OpenFHEContext

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        checked = _params.validate(params)
        self.crypto_context, bits = _params.build(checked, insecure)
        self.rescale_ratios = _params.rescale_ratios(self.crypto_context, checked)
        return Capabilities(
            scheme="ckks",
            exact=False,
            slots=checked["ring_dim"] // 2,
            rotations=True,
            rotation_cost="keyswitch",
            hoisting=True,
            max_depth=checked["depth"],
            security_bits=bits,
            encodings=("slot",),
            precision=_params.precision(checked),
            max_abs=_params.max_abs(checked),
            ring_dim=checked["ring_dim"],
        )

    def _keygen(self, owner: bytes, steps: list[int]) -> OpenFHEContext:
        cc = self.crypto_context
        keys = cc.KeyGen()
        rotation_keys = None
        if steps:
            indices = [cc.FindAutomorphismIndex(k) for k in steps]
            rotation_keys = cc.EvalAutomorphismKeyGen(keys.secretKey, indices)
        return OpenFHEContext(
            self, cc, owner, steps, keys.publicKey, rotation_keys, keys.secretKey
        )

    def _load_public(
        self, owner: bytes, steps: list[int], payload: bytes
    ) -> OpenFHEContext:
        sections = _wire.unpack_sections(payload)
        need = {"context", "public_key"} | ({"rotation_keys"} if steps else set())
        if need - set(sections):
            raise SerializationError(
                f"openfhe public bundle lacks section(s) {sorted(need - set(sections))}"
            )
        cc = openfhe.DeserializeCryptoContextString(sections["context"], openfhe.BINARY)
        self._check_same_parameters(cc)
        pk = openfhe.DeserializePublicKeyString(sections["public_key"], openfhe.BINARY)
        rotation_keys = None
        if steps:
            rotation_keys = openfhe.DeserializeEvalKeyMapString(
                sections["rotation_keys"], openfhe.BINARY
            )
        ctx = OpenFHEContext(self, cc, owner, steps, pk, rotation_keys)
        self._check_rotation_keys(cc, pk.GetKeyTag(), steps)
        return ctx

    def _check_same_parameters(self, cc: Any) -> None:
        ours, theirs = self.crypto_context.GetElementParams(), cc.GetElementParams()
        if (ours.GetRingDimension(), ours.GetModulus()) != (
            theirs.GetRingDimension(),
            theirs.GetModulus(),
        ):
            raise KeyMismatchError(
                "openfhe public bundle holds a crypto context with other moduli "
                "than this backend's; build the backend with the client's preset"
            )

    @staticmethod
    def _check_rotation_keys(cc: Any, tag: str, steps: Sequence[int]) -> None:
        indices = {cc.FindAutomorphismIndex(k) for k in steps}
        missing = openfhe.CryptoContext.GetEvalAutomorphismNoKeyIndices(tag, indices)
        if missing:
            raise SerializationError(
                f"openfhe public bundle lacks rotation keys for {len(missing)} of "
                f"its {len(steps)} declared steps"
            )


__all__ = ["OpenFHEBackend"]
