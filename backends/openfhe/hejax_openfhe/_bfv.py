"""The `openfhe-bfv` backend: coefficient-encoded BFV on OpenFHE.

Plaintexts are made with ``MakeCoefPackedPlaintext`` from centred residues
and read back with ``GetCoefPackedValue``; ``EvalMult(ct, pt)`` is then the
negacyclic ring product mod t. OpenFHE limits coefficient plaintexts to
``t ≤ 2^32`` (t need not be NTT-friendly, so a prime just below 2^32 works).
The ciphertext modulus is chosen by OpenFHE for multiplicative depth 1 under
its own 128-bit HE-standard check, and hejax checks it again against
:mod:`hejax.security`.

Ciphertexts a server context serializes go to the client, which only
decrypts them, so they are compressed to one tower first (``Compress``),
halving what travels; the client's own ciphertexts are sent whole, since the
server still multiplies them. No key switching keys are generated: hejax's
coefficient programs never rotate or relinearize.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import openfhe

from hejax import _wire
from hejax.backend import Backend, Capabilities
from hejax.backends.clear_bfv import check_coef_params, coef_capabilities
from hejax.errors import (
    InsecureParametersError,
    KeyMismatchError,
    SerializationError,
)
from hejax.ring import CoefContext, centered
from hejax.security import check_security
from hejax_openfhe._rehome import rehome

#: Largest prime below 2^32: every mask in ``[1, t)`` is invertible mod it.
T32 = 4294967291

PRESETS: Mapping[str, Mapping[str, Any]] = {
    "n8192": {"ring_dim": 8192, "plain_modulus": T32},
    "n16384": {"ring_dim": 16384, "plain_modulus": T32},
    "toy": {"ring_dim": 1024, "plain_modulus": 65537},
}


def _generate(n: int, t: int, level: Any) -> Any:
    params = openfhe.CCParamsBFVRNS()
    params.SetPlaintextModulus(t)
    params.SetMultiplicativeDepth(1)
    params.SetRingDim(n)
    params.SetSecurityLevel(level)
    cc = openfhe.GenCryptoContext(params)
    for feature in (openfhe.PKE, openfhe.LEVELEDSHE):
        cc.Enable(feature)
    return cc


def build_bfv(n: int, t: int, insecure: bool) -> tuple[Any, int]:
    """Crypto context for ring `n` and plaintext modulus `t`, with its security.

    Raises:
        InsecureParametersError: if the parameters fall below 128 bits and
            `insecure` is false.
    """
    try:
        cc = _generate(n, t, openfhe.HEStd_128_classic)
    except Exception as exc:
        if not insecure:
            raise InsecureParametersError(
                f"openfhe-bfv: N={n}, t={t} fails OpenFHE's 128-bit check "
                f"({str(exc).rsplit('():', 1)[-1].strip()}). Use a larger ring, or "
                "insecure=True for a toy size in a test."
            ) from exc
        cc = _generate(n, t, openfhe.HEStd_NotSet)
    log_q = math.ceil(math.log2(cc.GetElementParams().GetModulus()))
    return cc, check_security("openfhe-bfv", n, log_q, insecure)


class OpenFHEBFVContext(CoefContext):
    """A key set of the openfhe-bfv backend."""

    def __init__(self, backend, cc, owner, public_key, secret_key=None):
        super().__init__(backend, owner, ())
        self._cc = cc
        self._pk = public_key
        self._sk = secret_key
        self._tag = public_key.GetKeyTag()
        self._zero_ct = None

    def _export_public(self) -> bytes:
        return _wire.pack_sections(
            {
                "context": openfhe.Serialize(self._cc, openfhe.BINARY),
                "public_key": openfhe.Serialize(self._pk, openfhe.BINARY),
            }
        )

    def _encode(self, values: np.ndarray, level: int, degree: int) -> Any:
        coefs = centered(values, self.modulus)
        return self._cc.MakeCoefPackedPlaintext(coefs.tolist())

    def _encrypt(self, pt: Any, level: int) -> Any:
        # The key owner encrypts with its secret key (a third faster).
        return self._cc.Encrypt(self._sk if self._sk is not None else self._pk, pt)

    def _decrypt(self, ct: Any, level: int, degree: int) -> np.ndarray:
        pt = self._cc.Decrypt(self._sk, ct)
        pt.SetLength(self.slots)
        return np.asarray(pt.GetCoefPackedValue(), dtype=np.int64)

    def _add(self, a: Any, b: Any) -> Any:
        return self._cc.EvalAdd(a, b)

    def _sub(self, a: Any, b: Any) -> Any:
        return self._cc.EvalSub(a, b)

    def _negate(self, ct: Any) -> Any:
        return self._cc.EvalNegate(ct)

    def _add_plain(self, ct: Any, pt: Any) -> Any:
        return self._cc.EvalAdd(ct, pt)

    def _mul_plain(self, ct: Any, pt: Any) -> Any:
        return self._cc.EvalMult(ct, pt)

    def _serialize_ct(self, ct: Any) -> bytes:
        if not self._has_secret:  # bound for the client, who only decrypts
            ct = self._cc.Compress(ct, 1)
        return openfhe.Serialize(ct, openfhe.BINARY)

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> Any:
        ct = openfhe.DeserializeCiphertextString(data, openfhe.BINARY)
        if ct.GetKeyTag() != self._tag:
            raise KeyMismatchError(
                "openfhe-bfv ciphertext was encrypted under another OpenFHE key "
                f"(tag {ct.GetKeyTag()[:12]}…, this context's {self._tag[:12]}…)"
            )
        return rehome(self._zero(), ct)

    def _zero(self) -> Any:
        if self._zero_ct is None:
            self._zero_ct = self._cc.Encrypt(
                self._pk, self._cc.MakeCoefPackedPlaintext([0])
            )
        return self._zero_ct


class OpenFHEBFVBackend(Backend):
    """OpenFHE BFV with coefficient encoding (exact integers mod t).

    Presets: ``"n8192"`` (default) and ``"n16384"``, 128-bit secure with
    ``t = 4294967291``; ``"toy"`` (N = 1024, insecure, for tests). Both
    ``ring_dim`` and ``plain_modulus`` (≤ 2^32) can be overridden; the
    ``coef`` transform picks t from the model when given the backend by name.
    """

    name = "openfhe-bfv"
    presets = PRESETS
    default_preset = "n8192"

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        n, t = check_coef_params(self.name, params)
        self.crypto_context, bits = build_bfv(n, t, insecure)
        return coef_capabilities(n, t, bits)

    def _keygen(self, owner: bytes, steps: list[int]) -> OpenFHEBFVContext:
        keys = self.crypto_context.KeyGen()
        return OpenFHEBFVContext(
            self, self.crypto_context, owner, keys.publicKey, keys.secretKey
        )

    def _load_public(self, owner: bytes, steps: list[int], payload: bytes):
        sections = _wire.unpack_sections(payload)
        missing = {"context", "public_key"} - set(sections)
        if missing:
            raise SerializationError(
                f"openfhe-bfv public bundle lacks section(s) {sorted(missing)}"
            )
        cc = openfhe.DeserializeCryptoContextString(sections["context"], openfhe.BINARY)
        ours, theirs = self.crypto_context.GetElementParams(), cc.GetElementParams()
        if (ours.GetRingDimension(), ours.GetModulus()) != (
            theirs.GetRingDimension(),
            theirs.GetModulus(),
        ) or cc.GetPlaintextModulus() != self.capabilities.plain_modulus:
            raise KeyMismatchError(
                "openfhe-bfv public bundle holds a crypto context with other "
                "parameters; build the backend with the client's preset"
            )
        pk = openfhe.DeserializePublicKeyString(sections["public_key"], openfhe.BINARY)
        return OpenFHEBFVContext(self, cc, owner, pk)


__all__ = ["OpenFHEBFVBackend", "OpenFHEBFVContext"]
