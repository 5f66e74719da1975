"""CKKS parameter sets of the OpenFHE backend: presets, checks and bounds.

A parameter set is a plain dict with five entries:

- ``ring_dim``: ring dimension N (a power of two); slots = N / 2.
- ``depth``: number of rescales a fresh ciphertext allows.
- ``scale_bits``: bits of the scale Δ and of each rescaling prime.
- ``first_mod_bits``: bits of the last prime q0 that is left after all
  rescales; ``first_mod_bits - scale_bits`` bits of headroom bound the
  magnitude of slot values.
- ``num_large_digits``: digits of the HYBRID key switching (OpenFHE's
  ``dnum``); more digits need fewer key-switching primes, so they buy depth
  at a fixed ring dimension, at the price of slower rotations and larger
  rotation keys.

The modulus bit count hejax checks against the HE standard is that of the
ciphertext modulus Q, read from the crypto context, plus the key-switching
modulus P. OpenFHE does not expose P, so its size is computed here the way
OpenFHE sizes it: primes of :data:`AUX_BITS` bits each, enough to exceed the
largest digit of Q by at least one bit. `tests/backends/test_openfhe.py`
checks this against the primes found in serialized rotation keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import openfhe

from hejax.errors import InsecureParametersError, InvalidInputError
from hejax.security import check_security

AUX_BITS = 60
"""Bits of each key-switching prime of OpenFHE's HYBRID key switching."""

MAX_PRIME_BITS = 60
"""Largest prime OpenFHE's native 64-bit arithmetic takes."""

PRESETS: dict[str, dict[str, int]] = {
    # 131 + 60 = 191 modulus bits of 218 allowed at N = 8192.
    "n8192": {
        "ring_dim": 8192,
        "depth": 2,
        "scale_bits": 40,
        "first_mod_bits": 50,
        "num_large_digits": 3,
    },
    # 300 + 120 = 420 of 438 at N = 16384.
    "n16384": {
        "ring_dim": 16384,
        "depth": 6,
        "scale_bits": 40,
        "first_mod_bits": 60,
        "num_large_digits": 4,
    },
    # 700 + 180 = 880 of 881 at N = 32768.
    "n32768": {
        "ring_dim": 32768,
        "depth": 16,
        "scale_bits": 40,
        "first_mod_bits": 60,
        "num_large_digits": 6,
    },
    # Far below 128 bits: for fast tests only (needs insecure=True).
    "toy": {
        "ring_dim": 2048,
        "depth": 2,
        "scale_bits": 40,
        "first_mod_bits": 50,
        "num_large_digits": 3,
    },
}

# Errors in units of 2**-scale_bits * ring_dim, measured on every preset:
# one encryption, rotation or rescaled product is off by at most 56 units
# (a rotation at N = 16384; 20-25 units elsewhere); a sum of 64 products of
# rotations after all other levels by at most 2**8. A sum of 64 copies of
# one ciphertext can align the same error 64 times: 64 * 56 = 3584 units.
_ERROR_UNITS = 2.0**13


def _int_param(params: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = params[name]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if not is_int or not low <= value <= high:
        raise InvalidInputError(
            f"openfhe: `{name}` must be an int in [{low}, {high}], got {value!r}"
        )
    return value


def validate(params: Mapping[str, Any]) -> dict[str, int]:
    """Check the types and ranges of a parameter set; return it as ints.

    Raises:
        InvalidInputError: naming the first bad parameter and its range.
    """
    ring_dim = _int_param(params, "ring_dim", 1024, 65536)
    if ring_dim & (ring_dim - 1):
        raise InvalidInputError(
            f"openfhe: `ring_dim` must be a power of two, got {ring_dim}"
        )
    depth = _int_param(params, "depth", 1, 60)
    scale_bits = _int_param(params, "scale_bits", 20, MAX_PRIME_BITS - 1)
    first = _int_param(params, "first_mod_bits", scale_bits + 1, MAX_PRIME_BITS)
    digits = _int_param(params, "num_large_digits", 1, depth + 1)
    if digits not in digit_choices(depth):
        raise InvalidInputError(
            f"openfhe: `num_large_digits` {digits} cannot split the {depth + 1} "
            f"primes of depth {depth} into equal digits; choose one of "
            f"{digit_choices(depth)}"
        )
    return {
        "ring_dim": ring_dim,
        "depth": depth,
        "scale_bits": scale_bits,
        "first_mod_bits": first,
        "num_large_digits": digits,
    }


def digit_choices(depth: int) -> list[int]:
    """Digit counts OpenFHE accepts at `depth`.

    OpenFHE puts ``ceil(primes / digits)`` primes in each digit, so a count
    is valid only if the last digit still gets a prime.
    """
    primes = depth + 1
    return [
        k
        for k in range(1, primes + 1)
        if math.ceil(primes / math.ceil(primes / k)) == k
    ]


def key_switch_primes(params: Mapping[str, int]) -> int:
    """Number of key-switching primes OpenFHE picks for HYBRID key switching.

    Q is cut into `num_large_digits` digits of consecutive primes, q0 first;
    P must exceed the largest digit, so it takes one more bit than that
    digit, in primes of :data:`AUX_BITS` bits.
    """
    bits = [params["first_mod_bits"]] + [params["scale_bits"]] * params["depth"]
    per_digit = math.ceil(len(bits) / params["num_large_digits"])
    largest = max(sum(bits[i : i + per_digit]) for i in range(0, len(bits), per_digit))
    return largest // AUX_BITS + 1


def _ccparams(params: Mapping[str, int], level: Any) -> Any:
    ccp = openfhe.CCParamsCKKSRNS()
    ccp.SetRingDim(params["ring_dim"])
    ccp.SetBatchSize(params["ring_dim"] // 2)
    ccp.SetMultiplicativeDepth(params["depth"])
    ccp.SetScalingModSize(params["scale_bits"])
    ccp.SetFirstModSize(params["first_mod_bits"])
    ccp.SetNumLargeDigits(params["num_large_digits"])
    ccp.SetScalingTechnique(openfhe.FIXEDMANUAL)
    ccp.SetKeySwitchTechnique(openfhe.HYBRID)
    ccp.SetSecurityLevel(level)
    return ccp


def _generate(params: Mapping[str, int], level: Any) -> Any:
    try:
        cc = openfhe.GenCryptoContext(_ccparams(params, level))
    except RuntimeError as exc:
        reason = _reason(exc)
        if "HE standards" in reason:
            raise _Refused(reason) from exc
        raise InvalidInputError(
            f"openfhe rejects the parameters {dict(params)}: {reason}"
        ) from exc
    for feature in (openfhe.PKE, openfhe.KEYSWITCH, openfhe.LEVELEDSHE):
        cc.Enable(feature)
    return cc


class _Refused(Exception):
    """OpenFHE's HE-standard check refused the ring dimension."""


def _reason(exc: Exception) -> str:
    # OpenFHE prefixes its messages with "<source path>:l.<line>:<function>():".
    return str(exc).rsplit("():", 1)[-1].strip()


def modulus_bits(cc: Any, params: Mapping[str, int]) -> int:
    """Upper bound on the bits of Q·P: Q from `cc`, P from the parameters."""
    log_q = math.log2(cc.GetElementParams().GetModulus())
    return math.ceil(log_q) + AUX_BITS * key_switch_primes(params)


def build(params: Mapping[str, int], insecure: bool) -> tuple[Any, int]:
    """Generate the crypto context and check its security.

    The context is generated with OpenFHE's own HE-standard check
    (``HEStd_128_classic``) on; only when that check refuses it, and hejax's
    count agrees or `insecure` is set, is it generated with ``HEStd_NotSet``.

    Returns:
        ``(crypto_context, security_bits)``.

    Raises:
        InsecureParametersError: for parameters below 128-bit security
            without `insecure`, by hejax's count or by OpenFHE's check.
        InvalidInputError: for parameters OpenFHE cannot build at all.
    """
    try:
        cc = _generate(params, openfhe.HEStd_128_classic)
    except _Refused as exc:
        refusal = str(exc)
    else:
        ring_dim = params["ring_dim"]
        bits = check_security("openfhe", ring_dim, modulus_bits(cc, params), insecure)
        return cc, bits
    cc = _generate(params, openfhe.HEStd_NotSet)
    check_security("openfhe", params["ring_dim"], modulus_bits(cc, params), insecure)
    if not insecure:
        raise InsecureParametersError(
            f"openfhe: N={params['ring_dim']} fails OpenFHE's 128-bit check: "
            f"{refusal} Pick a preset, or pass insecure=True for a toy size in a "
            "test."
        )
    return cc, 0


def rescale_ratios(cc: Any, params: Mapping[str, int]) -> tuple[float, ...]:
    """Return ``q_l / 2**scale_bits`` per level, 1.0 after the last one.

    q_l is the prime a rescale at level l divides by: the ratio of the
    moduli of plaintexts encoded at levels l and l + 1.
    """
    zeros = np.zeros(1)
    moduli = [
        cc.MakeCKKSPackedPlaintext(zeros, 1, level).GetElementModulus()
        for level in range(params["depth"] + 1)
    ]
    scale = 2 ** params["scale_bits"]
    ratios = [hi // lo / scale for hi, lo in zip(moduli, moduli[1:], strict=False)]
    return (*ratios, 1.0)


def precision(params: Mapping[str, int]) -> float:
    """Guaranteed max absolute error (see :class:`hejax.backend.Capabilities`).

    Noise of encryption and key switching is a few times ``ring_dim``
    coefficient units, each worth ``2**-scale_bits``; exact scales (see
    :mod:`hejax_openfhe._context`) keep it from growing with the depth.
    """
    return _ERROR_UNITS * params["ring_dim"] * 2.0 ** -params["scale_bits"]


def max_abs(params: Mapping[str, int]) -> float:
    """Largest safe slot magnitude: 1/8 of the wrap-around point q0 / (2Δ)."""
    return 2.0 ** (params["first_mod_bits"] - params["scale_bits"] - 4)
