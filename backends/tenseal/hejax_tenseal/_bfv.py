"""The `tenseal-bfv` backend: coefficient-encoded BFV on SEAL via tenseal.sealapi.

A plaintext is a SEAL ``Plaintext`` loaded from its coefficients in SEAL's
own serialized layout (:func:`hejax_tenseal._io.plaintext`; the bindings
offer no coefficient setter). ``multiply_plain`` runs in NTT form, where it is
a pointwise product: a ciphertext is moved to NTT form once, however many
plaintexts it meets, products are summed in NTT form, and a ciphertext
returns to coefficient form only where BFV needs it (adding a plaintext,
decrypting, serializing).

The coefficient modulus is three 60-bit primes (:data:`COEFF_BITS`), 180 bits,
inside the HE standard's 128-bit limit for N ≥ 8192; t follows the
hejax-wide limit of 2^32. The key owner encrypts with the secret key, and
SEAL sends such a ciphertext with its random half as a seed: half the bytes
of a public-key encryption. Ciphertexts a server context serializes go to the
client, which only decrypts them, so they drop to one data prime first
(``mod_switch_to_next``), which halves them too. A
result SEAL would call *transparent* (a product by the zero polynomial, or
``a - a``) is replaced by a fresh encryption of zero, so no ciphertext ever
leaves the server in the clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import tenseal.sealapi as seal

from hejax import _wire
from hejax.backend import Backend, Capabilities
from hejax.backends.clear_bfv import check_coef_params, coef_capabilities
from hejax.errors import (
    BackendError,
    InsecureParametersError,
    KeyMismatchError,
    SerializationError,
)
from hejax.ring import CoefContext
from hejax.security import check_security
from hejax_tenseal import _io

T32 = 4294967291
#: Primes of the coefficient modulus: two carry data (120 bits, as OpenFHE
#: picks for depth 1 at t < 2^32), the last is SEAL's special prime. Sixteen
#: products of a fresh ciphertext with 400-tap kernels of full-range
#: coefficients, summed, leave 44 bits of noise budget at N = 8192.
COEFF_BITS = (60, 60, 60)
_TRANSPARENT = "transparent"

PRESETS: Mapping[str, Mapping[str, Any]] = {
    "n8192": {"ring_dim": 8192, "plain_modulus": T32},
    "n16384": {"ring_dim": 16384, "plain_modulus": T32},
    "toy": {"ring_dim": 1024, "plain_modulus": 65537},
}


class _Plain:
    """Coefficients of a plaintext with their SEAL forms, made on first use."""

    __slots__ = ("values", "_context", "_normal", "_ntt")

    def __init__(self, values: np.ndarray, context: Any):
        self.values = values
        self._context = context
        self._normal = None
        self._ntt = None

    def normal(self) -> Any:
        if self._normal is None:
            self._normal = _io.plaintext(self.values, self._context)
        return self._normal

    def ntt(self, ev: Any, parms_id: Any) -> Any:
        if self._ntt is None:
            out = seal.Plaintext()
            ev.transform_to_ntt(self.normal(), parms_id, out)
            self._ntt = out
        return self._ntt


class _Cipher:
    """A SEAL ciphertext in coefficient form, NTT form, or both (cached).

    A fresh symmetric encryption is kept as SEAL's seeded bytes (the random
    half of the ciphertext stored as a seed) and expanded on first use.
    """

    __slots__ = ("_normal", "_ntt", "seeded", "_context")

    def __init__(
        self,
        normal: Any = None,
        ntt: Any = None,
        seeded: bytes | None = None,
        context: Any = None,
    ):
        self._normal = normal
        self._ntt = ntt
        self.seeded = seeded
        self._context = context

    def normal(self, ev: Any) -> Any:
        if self._normal is None:
            out = seal.Ciphertext()
            if self.seeded is not None:
                out = _io.load(out, self.seeded, self._context)
            else:
                ev.transform_from_ntt(self._ntt, out)
            self._normal = out
        return self._normal

    def ntt(self, ev: Any) -> Any:
        if self._ntt is None:
            out = seal.Ciphertext()
            ev.transform_to_ntt(self.normal(ev), out)
            self._ntt = out
        return self._ntt

    @property
    def in_ntt(self) -> bool:
        return self._normal is None and self.seeded is None


class TenSEALBFVContext(CoefContext):
    """A key set of the tenseal-bfv backend."""

    def __init__(self, backend, owner, public_key, secret_key=None):
        super().__init__(backend, owner, ())
        self._sc = backend.seal_context
        self._ev = seal.Evaluator(self._sc)
        self._pk = public_key
        self._encryptor = seal.Encryptor(self._sc, public_key)
        self._decryptor = None
        self._symmetric = None
        if secret_key is not None:
            self._decryptor = seal.Decryptor(self._sc, secret_key)
            self._symmetric = seal.Encryptor(self._sc, secret_key)

    def _export_public(self) -> bytes:
        return _wire.pack_sections(
            {"parms": _io.dump(self.backend.parms), "public_key": _io.dump(self._pk)}
        )

    def _encode(self, values: np.ndarray, level: int, degree: int) -> _Plain:
        return _Plain(values.copy(), self._sc)

    def _fresh(self, pt: Any) -> _Cipher:
        out = seal.Ciphertext()
        self._encryptor.encrypt(pt, out)
        return _Cipher(normal=out)

    def _encrypt(self, pt: _Plain, level: int) -> _Cipher:
        if self._symmetric is None:
            return self._fresh(pt.normal())
        seeded = self._symmetric.encrypt_symmetric(pt.normal())
        return _Cipher(seeded=_io.dump(seeded), context=self._sc)

    def _decrypt(self, ct: _Cipher, level: int, degree: int) -> np.ndarray:
        normal = ct.normal(self._ev)
        if self._decryptor.invariant_noise_budget(normal) <= 0:
            raise BackendError(
                "tenseal-bfv: the ciphertext's noise budget is exhausted, so it "
                "would decrypt to garbage; use a preset with a larger ring"
            )
        pt = seal.Plaintext()
        self._decryptor.decrypt(normal, pt)
        coefs = _io.coefficients(pt)[: self.slots]
        out = np.zeros(self.slots, dtype=np.int64)
        out[: coefs.size] = coefs
        return out

    def _zero(self) -> _Cipher:
        return self._fresh(seal.Plaintext("0"))

    def _run(self, op: Any, *args: Any) -> Any:
        out = seal.Ciphertext()
        try:
            op(*args, out)
        except RuntimeError as exc:
            if _TRANSPARENT not in str(exc):
                raise
            return None
        return out

    def _combine(self, op: Any, a: _Cipher, b: _Cipher) -> _Cipher:
        if a.in_ntt and b.in_ntt:
            out = self._run(op, a.ntt(self._ev), b.ntt(self._ev))
            return self._zero() if out is None else _Cipher(ntt=out)
        out = self._run(op, a.normal(self._ev), b.normal(self._ev))
        return self._zero() if out is None else _Cipher(normal=out)

    def _add(self, a: _Cipher, b: _Cipher) -> _Cipher:
        return self._combine(self._ev.add, a, b)

    def _sub(self, a: _Cipher, b: _Cipher) -> _Cipher:
        return self._combine(self._ev.sub, a, b)

    def _negate(self, ct: _Cipher) -> _Cipher:
        if ct.in_ntt:
            return _Cipher(ntt=self._run(self._ev.negate, ct.ntt(self._ev)))
        return _Cipher(normal=self._run(self._ev.negate, ct.normal(self._ev)))

    def _add_plain(self, ct: _Cipher, pt: _Plain) -> _Cipher:
        if not np.any(pt.values):
            return ct
        out = self._run(self._ev.add_plain, ct.normal(self._ev), pt.normal())
        return self._zero() if out is None else _Cipher(normal=out)

    def _mul_plain(self, ct: _Cipher, pt: _Plain) -> _Cipher:
        if not np.any(pt.values):
            return self._zero()
        encoded = pt.ntt(self._ev, self._sc.first_parms_id())
        out = self._run(self._ev.multiply_plain, ct.ntt(self._ev), encoded)
        return self._zero() if out is None else _Cipher(ntt=out)

    def _serialize_ct(self, ct: _Cipher) -> bytes:
        if ct.seeded is not None:
            return ct.seeded
        normal = ct.normal(self._ev)
        if not self._has_secret:  # bound for the client, who only decrypts
            last = seal.Ciphertext()
            self._ev.mod_switch_to_next(normal, last)
            normal = last
        return _io.dump(normal)

    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> _Cipher:
        ct = _io.load(seal.Ciphertext(), data, self._sc)
        if ct.is_ntt_form():
            raise SerializationError("tenseal-bfv ciphertext arrived in NTT form")
        return _Cipher(normal=ct)


class TenSEALBFVBackend(Backend):
    """SEAL BFV with coefficient encoding (exact integers mod t).

    Presets: ``"n8192"`` (default) and ``"n16384"``, 128-bit secure with
    ``t = 4294967291``; ``"toy"`` (N = 1024, insecure, for tests). Both
    ``ring_dim`` and ``plain_modulus`` (≤ 2^32) can be overridden.
    """

    name = "tenseal-bfv"
    presets = PRESETS
    default_preset = "n8192"

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        n, t = check_coef_params(self.name, params)
        parms = seal.EncryptionParameters(seal.SCHEME_TYPE.BFV)
        parms.set_poly_modulus_degree(n)
        moduli = seal.CoeffModulus.Create(n, list(COEFF_BITS))
        parms.set_coeff_modulus(moduli)
        parms.set_plain_modulus(seal.Modulus(t))
        level = seal.SEC_LEVEL_TYPE.NONE if insecure else seal.SEC_LEVEL_TYPE.TC128
        context = seal.SEALContext(parms, True, level)
        if not context.parameters_set():
            raise InsecureParametersError(
                f"tenseal-bfv: SEAL refuses N={n}, t={t}: "
                f"{context.parameters_error_message()}. Use a larger ring, or "
                "insecure=True for a toy size in a test."
            )
        log_q = sum(m.bit_count() for m in moduli)
        bits = check_security(self.name, n, log_q, insecure)
        self.parms, self.seal_context = parms, context
        return coef_capabilities(n, t, bits)

    def _keygen(self, owner: bytes, steps: list[int]) -> TenSEALBFVContext:
        keygen = seal.KeyGenerator(self.seal_context)
        pk = seal.PublicKey()
        keygen.create_public_key(pk)
        return TenSEALBFVContext(self, owner, pk, keygen.secret_key())

    def _load_public(self, owner: bytes, steps: list[int], payload: bytes):
        sections = _wire.unpack_sections(payload)
        missing = {"parms", "public_key"} - set(sections)
        if missing:
            raise SerializationError(
                f"tenseal-bfv public bundle lacks section(s) {sorted(missing)}"
            )
        if sections["parms"] != _io.dump(self.parms):
            raise KeyMismatchError(
                "tenseal-bfv public bundle was made with other SEAL parameters; "
                "build the backend with the client's preset"
            )
        pk = _io.load(seal.PublicKey(), sections["public_key"], self.seal_context)
        return TenSEALBFVContext(self, owner, pk)


__all__ = ["TenSEALBFVBackend", "TenSEALBFVContext"]
