"""The paillier backend: python-paillier (``phe``) with gmpy2, one value per ciphertext.

This is the published baseline hejax starts from: every pixel is its own
Paillier ciphertext, a convolution is a sum of ciphertext × weight
products, and ReLU runs at the client behind random positive masks. hejax
drives it through the same compiler and protocol as the lattice backends:
a "ciphertext" of `slots` values is a list of Paillier ciphertexts, so
rotations are free re-indexing, and there are no evaluation keys at all.

Paillier is exact: values are fixed-point integers (see
:mod:`hejax_paillier._fixed`) and only the encoding rounds.

Security follows NIST SP 800-57 Part 1 (table 2), as for RSA moduli:
2048-bit keys give about 112 bits, 3072-bit keys 128 bits. The default is
3072 bits; the published 2048-bit setting needs ``insecure=True``.

Limitations: no re-randomization of results (see
:mod:`hejax_paillier._context`); every value costs one modular
exponentiation per product, so paper-sized models take hours to days (see
``bench/results/seed_baseline.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from phe import paillier

from hejax import _wire
from hejax.backend import Backend, Capabilities
from hejax.errors import InsecureParametersError, InvalidInputError, SerializationError
from hejax_paillier import _parallel
from hejax_paillier._context import PaillierContext

#: (smallest modulus bits, security bits) after NIST SP 800-57 Part 1, table 2.
NIST_LEVELS = ((15360, 256), (7680, 192), (3072, 128), (2048, 112), (1024, 80))
#: Sums of up to this many products per level are covered by `precision`.
SUM_TERMS = 64


def _preset(key_bits: int, slots: int) -> dict[str, int]:
    return {"key_bits": key_bits, "slots": slots, "scale_bits": 52, "max_abs_bits": 32}


def security_bits(key_bits: int) -> int:
    """Security in bits of a Paillier (or RSA) modulus of `key_bits` bits.

    Returns 0 below 1024 bits, where NIST gives no level.
    """
    return next((s for bits, s in NIST_LEVELS if key_bits >= bits), 0)


def max_depth(key_bits: int, scale_bits: int, max_abs_bits: int) -> int:
    """Products a fresh ciphertext allows: ``n`` must hold ``max_abs·2^(f(D+1))``.

    The signed range of ``n ≥ 2^(key_bits-1)`` is ``|m| < 2^(key_bits-2)``.
    """
    return (key_bits - 2 - max_abs_bits) // scale_bits - 1


def precision_bound(depth: int, scale_bits: int) -> float:
    """Max absolute error that the `precision` capability states.

    Each encoded value (input, weight, mask) is off by at most ``2^-(f+1)``;
    the arithmetic after that is exact. A level of up to 64-term sums of
    products of values and weights of magnitude ≤ 1 adds at most
    ``64 · 2^-f``; with the input's own rounding and the float64 decoding,
    ``64 · (depth + 2) · 2^-f`` bounds the whole chain.
    """
    return SUM_TERMS * (depth + 2) * 2.0**-scale_bits


def _int_param(params: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = params[name]
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInputError(f"paillier: `{name}` must be an int, got {value!r}")
    if not low <= value <= high:
        raise InvalidInputError(
            f"paillier: `{name}` must be in [{low}, {high}], got {value!r}"
        )
    return int(value)


class PaillierBackend(Backend):
    """Paillier of python-paillier (with gmpy2): exact, one value per ciphertext.

    Parameters (every preset sets all of them; keyword arguments override):
    ``key_bits`` (bits of the modulus n), ``slots`` (values per hejax
    ciphertext, a power of two), ``scale_bits`` (f: values are integers at
    scale ``2^f``) and ``max_abs_bits`` (values stay below ``2^max_abs_bits``).

    ========  ========  =====  =====  ========  =========  =======
    preset    key bits  slots  depth  security  precision  max_abs
    ========  ========  =====  =====  ========  =========  =======
    k3072     3072      4096   57     128       8.4e-13    2**32
    k2048     2048      4096   37     112       5.5e-13    2**32
    toy       512       64     8      0         1.4e-13    2**32
    ========  ========  =====  =====  ========  =========  =======

    ``k3072`` is the default; ``k2048`` (the published baseline) and ``toy``
    (for tests) need ``insecure=True``. 4096 slots hold a 64×64 patch per
    channel; larger images are tiled by the compiler.

    Args:
        preset: name of a preset.
        insecure: allow keys below 128-bit security.
        workers: processes for encryption, decryption and products of long
            vectors (1, the default, keeps everything in this process; more
            need a main guard in scripts, see :mod:`hejax_paillier._parallel`).
            Not a key parameter: client and server may choose differently.
        min_parallel: vectors shorter than this stay in process.
        **params: overrides of the preset's parameters.

    Raises:
        InvalidInputError: for an unknown preset or a parameter out of range.
        InsecureParametersError: for keys below 128-bit security without
            `insecure=True`.
    """

    name = "paillier"
    presets: Mapping[str, Mapping[str, Any]] = {
        "k3072": _preset(3072, 4096),
        "k2048": _preset(2048, 4096),
        "toy": _preset(512, 64),
    }
    default_preset = "k3072"

    def __init__(
        self,
        preset: str | None = None,
        *,
        insecure: bool = False,
        workers: int = 1,
        min_parallel: int = _parallel.DEFAULT_MIN_VALUES,
        **params: Any,
    ):
        for name, value in (("workers", workers), ("min_parallel", min_parallel)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(
                    f"paillier: `{name}` must be an int ≥ 1, got {value!r}"
                )
        self.workers = workers
        self.min_parallel = min_parallel
        super().__init__(preset, insecure=insecure, **params)

    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        key_bits = _int_param(params, "key_bits", 256, 16384)
        slots = _int_param(params, "slots", 2, 1 << 16)
        scale = _int_param(params, "scale_bits", 8, 64)
        abs_bits = _int_param(params, "max_abs_bits", 1, 64)
        if key_bits % 2 or slots & (slots - 1):
            raise InvalidInputError(
                "paillier: `key_bits` must be even and `slots` a power of two, got "
                f"{key_bits} and {slots}"
            )
        depth = max_depth(key_bits, scale, abs_bits)  # ≥ 1 in these ranges
        bits = security_bits(key_bits)
        if bits < 128 and not insecure:
            raise InsecureParametersError(_insecure_message(key_bits, bits))
        return Capabilities(
            scheme="paillier",
            exact=True,
            slots=slots,
            rotations=True,
            rotation_cost="free",
            hoisting=False,
            max_depth=depth,
            security_bits=bits,
            encodings=("slot",),
            precision=precision_bound(depth, scale),
            max_abs=2.0**abs_bits,
        )

    def _keygen(self, owner: bytes, steps: list[int]) -> PaillierContext:
        public, private = paillier.generate_paillier_keypair(
            n_length=self.params["key_bits"]
        )
        return PaillierContext(
            self, owner, steps, public.n, primes=(private.p, private.q)
        )

    def _load_public(self, owner: bytes, steps: list[int], payload: bytes):
        sections = _wire.unpack_sections(payload)
        if set(sections) != {"n"}:
            raise SerializationError(
                f"paillier public bundle holds sections {sorted(sections)}, "
                "expected only 'n'"
            )
        n = int.from_bytes(sections["n"], "big")
        if n.bit_length() != self.params["key_bits"] or n % 2 == 0:
            raise SerializationError(
                f"paillier public bundle holds a modulus of {n.bit_length()} bits "
                f"(or an even one); this backend uses {self.params['key_bits']} bits"
            )
        return PaillierContext(self, owner, steps, n)


def _insecure_message(key_bits: int, bits: int) -> str:
    level = f"about {bits}-bit" if bits else "no meaningful"
    why = (
        "the published baseline's setting; like 2048-bit RSA, it resists "
        "factoring only to 112 bits"
        if key_bits == 2048
        else "a toy size for tests"
    )
    return (
        f"paillier: a {key_bits}-bit modulus gives {level} security (NIST SP "
        f"800-57 Part 1, table 2; {why}); hejax requires 128-bit security, which "
        "takes 3072-bit keys (preset 'k3072', the default). Pass insecure=True "
        "to run it anyway (benchmarks of the baseline, tests)."
    )


__all__ = ["PaillierBackend", "max_depth", "precision_bound", "security_bits"]
