"""The tenseal backend: Microsoft SEAL CKKS through TenSEAL's `sealapi` bindings.

Only the raw SEAL bindings are used (``tenseal.sealapi``); TenSEAL's own
vector types neither rotate nor keep scales exact. Keys are a public key and
Galois keys for exactly the rotation steps asked for; hejax never multiplies
two ciphertexts, so no relinearization keys are made.

Limitations: only slot encoding; rotations are one key switch each, without
hoisting (these bindings expose none); ciphertexts are encrypted with the
public key and not seeded, so a fresh one is twice the size a seeded
symmetric encryption would be.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import tenseal.sealapi as seal

from hejax import _wire
from hejax.backend import Backend, Capabilities
from hejax.errors import KeyMismatchError, SerializationError
from hejax.security import check_security
from hejax_tenseal import _io
from hejax_tenseal._chain import Chain, ChainSpec, chain_for, galois_element
from hejax_tenseal._context import TenSEALContext

_SECTIONS = ("parms", "public_key", "galois_keys")
_PRECISION_K = 2500.0


def _preset(ring_dim: int, depth: int, first: int) -> dict[str, int]:
    return {
        "ring_dim": ring_dim,
        "depth": depth,
        "scale_bits": 40,
        "first_mod_bits": first,
        "special_mod_bits": first,
    }


def precision_bound(spec: ChainSpec) -> float:
    """The max absolute error a chain states as its `precision`.

    The hejax definition: one encrypt, up to `depth` rounds of 64-term sums
    of products by weights of magnitude ≤ 1 (each followed by a rescale), and
    decrypt, for inputs of magnitude ≤ 1. Key switching dominates: its noise
    grows with N and with the square root of the number of primes, and is
    divided by Δ. The constant is ten times the largest one measured by
    ``scripts/measure_precision.py`` on the presets (about 250): a measured
    bound with margin, not a proven one.
    """
    return (
        _PRECISION_K * spec.ring_dim * math.sqrt(spec.depth + 1) / 2.0**spec.scale_bits
    )


def max_abs_bound(spec: ChainSpec) -> float:
    """Largest safe slot magnitude: a quarter of what the last prime holds."""
    return 2.0 ** (spec.first_mod_bits - spec.scale_bits - 2)


class TenSEALBackend(Backend):
    """CKKS of Microsoft SEAL (through TenSEAL) with exact scales across levels.

    Parameters (every preset sets all of them; keyword arguments override):
    ``ring_dim`` (N), ``depth`` (rescales), ``scale_bits`` (Δ and each
    rescale prime), ``first_mod_bits`` (the prime the last level keeps) and
    ``special_mod_bits`` (the key-switching prime).

    Presets: ``"n8192"`` (default), ``"n16384"`` and ``"n32768"`` take as many
    40-bit levels as fit under the 128-bit bound of the HE standard;
    ``"toy"`` (N=2048) is insecure and needs ``insecure=True``.

    ========  ======  =====  =========  =========  =======
    preset    slots   depth  modulus    precision  max_abs
    ========  ======  =====  =========  =========  =======
    n8192     4096    3      218 bits   3.7e-5     128
    n16384    8192    8      438 bits   1.1e-4     2**17
    n32768    16384   19     880 bits   3.3e-4     2**18
    toy       1024    3      218 bits   9.3e-6     128
    ========  ======  =====  =========  =========  =======

    Args:
        preset: name of a preset.
        insecure: allow parameters below 128-bit security (tests only).
        **params: overrides of the preset's parameters.

    Raises:
        InvalidInputError: for an unknown preset or a parameter out of range.
        InsecureParametersError: for parameters below 128-bit security
            without `insecure=True`.
    """

    name = "tenseal"
    presets: Mapping[str, Mapping[str, Any]] = {
        "n8192": _preset(8192, 3, 49),
        "n16384": _preset(16384, 8, 59),
        "n32768": _preset(32768, 19, 60),
        "toy": _preset(2048, 3, 49),
    }
    default_preset = "n8192"
    context_class = TenSEALContext

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        spec = ChainSpec.from_params(params)
        bits = check_security(self.name, spec.ring_dim, spec.total_bits, insecure)
        spec.primes()
        self._spec = spec
        return Capabilities(
            scheme="ckks",
            exact=False,
            slots=spec.slots,
            rotations=True,
            rotation_cost="keyswitch",
            hoisting=False,
            max_depth=spec.depth,
            security_bits=bits,
            encodings=("slot",),
            precision=precision_bound(spec),
            max_abs=max_abs_bound(spec),
            ring_dim=spec.ring_dim,
        )

    @property
    def chain(self) -> Chain:
        """The SEAL context and level table, built on first use."""
        return chain_for(self._spec, self.capabilities.security_bits >= 128)

    def _keygen(self, owner: bytes, steps: list[int]) -> TenSEALContext:
        chain = self.chain
        keygen = seal.KeyGenerator(chain.context)
        public_key = seal.PublicKey()
        keygen.create_public_key(public_key)
        galois_keys = seal.GaloisKeys()
        if steps:
            elements = [galois_element(s, self._spec.ring_dim) for s in steps]
            keygen.create_galois_keys(elements, galois_keys)
        return TenSEALContext(
            self, owner, steps, chain, public_key, galois_keys, keygen.secret_key()
        )

    def _load_public(self, owner: bytes, steps: list[int], payload: bytes):
        sections = _wire.unpack_sections(payload)
        missing = [name for name in _SECTIONS if name not in sections]
        if missing:
            raise SerializationError(f"tenseal public bundle lacks {missing}")
        chain = self.chain
        self._check_parms(sections["parms"], chain)
        public_key = _io.load(seal.PublicKey(), sections["public_key"], chain.context)
        galois_keys = self._load_galois(sections["galois_keys"], steps, chain)
        return TenSEALContext(self, owner, steps, chain, public_key, galois_keys)

    def _check_parms(self, data: bytes, chain: Chain) -> None:
        parms = _io.load(seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS), data)
        theirs = [m.value() for m in parms.coeff_modulus()]
        if parms.poly_modulus_degree() != self._spec.ring_dim or theirs != chain.moduli:
            raise KeyMismatchError(
                "tenseal public bundle was made with another modulus chain "
                f"(N={parms.poly_modulus_degree()}, {len(theirs)} primes); build "
                "the backend with the client's preset and parameters"
            )

    def _load_galois(self, data: bytes, steps: list[int], chain: Chain) -> Any:
        galois_keys = seal.GaloisKeys()
        if not steps:
            if data:
                raise SerializationError("tenseal bundle holds unlisted rotation keys")
            return galois_keys
        _io.load(galois_keys, data, chain.context)
        absent = [
            self.signed_step(s)
            for s in steps
            if not galois_keys.has_key(galois_element(s, self._spec.ring_dim))
        ]
        if absent or galois_keys.size() != len(steps):
            raise SerializationError(
                f"tenseal bundle's rotation keys do not match its header (missing "
                f"steps {absent}, {galois_keys.size()} keys for {len(steps)} steps)"
            )
        return galois_keys


__all__ = ["TenSEALBackend", "precision_bound"]
