"""The CKKS modulus chain of the tenseal backend: primes, levels and scales.

hejax counts levels from the top of the chain: level 0 holds every data prime
and each rescale drops one. The chain is ``[first, scale × depth, special]``
in bits: `depth` primes of `scale_bits` bits that rescales consume, a larger
first prime that the last level keeps (it bounds the magnitude of the
values), and a special prime used only for key switching.

Scales are kept exact, so that ciphertexts that took different paths add
without a scale mismatch:

- every degree-1 ciphertext, at every level, has the base scale
  ``Δ = 2**scale_bits``;
- a multiplier plaintext (and a scalar) at level ``l`` is encoded at scale
  ``q_l``, the prime that the next rescale drops, so a product at level ``l``
  (degree 2) has scale ``Δ·q_l`` and the rescale brings it back to exactly
  ``Δ``;
- a plaintext that is added to a ciphertext gets that ciphertext's scale.

A degree-2 ciphertext has no scale at the last level (nothing is left to
rescale), so neither it nor a degree-2 plaintext can exist there.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import tenseal.sealapi as seal

from hejax.errors import DepthExhaustedError, InvalidInputError

RING_DIMS = (1024, 2048, 4096, 8192, 16384, 32768)
MAX_PRIME_BITS = 60


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _int_param(params: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = params[name]
    if not _is_int(value) or not low <= value <= high:
        raise InvalidInputError(
            f"tenseal: `{name}` must be an int in [{low}, {high}], got {value!r}"
        )
    return int(value)


@dataclasses.dataclass(frozen=True)
class ChainSpec:
    """Bit sizes of a CKKS modulus chain, checked for what SEAL accepts.

    Attributes:
        ring_dim: polynomial ring dimension N.
        depth: number of rescales (primes of `scale_bits` bits).
        scale_bits: bits of the base scale Δ and of each rescale prime.
        first_mod_bits: bits of the prime the last level keeps.
        special_mod_bits: bits of the key-switching prime.
    """

    ring_dim: int
    depth: int
    scale_bits: int
    first_mod_bits: int
    special_mod_bits: int

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ChainSpec:
        """Validate backend parameters and return the chain they describe.

        Raises:
            InvalidInputError: naming the parameter that is out of range.
        """
        ring_dim = params["ring_dim"]
        if not _is_int(ring_dim) or ring_dim not in RING_DIMS:
            raise InvalidInputError(
                f"tenseal: `ring_dim` must be one of {list(RING_DIMS)}, "
                f"got {ring_dim!r}"
            )
        depth = _int_param(params, "depth", 0, 64)
        scale = _int_param(params, "scale_bits", 20, MAX_PRIME_BITS - 1)
        first = _int_param(params, "first_mod_bits", scale + 1, MAX_PRIME_BITS)
        special = _int_param(params, "special_mod_bits", first, MAX_PRIME_BITS)
        return cls(int(ring_dim), depth, scale, first, special)

    @property
    def slots(self) -> int:
        """Number of CKKS slots, N/2."""
        return self.ring_dim // 2

    @property
    def bit_sizes(self) -> list[int]:
        """Bits of each prime: first, the rescale primes, then the special one."""
        return [
            self.first_mod_bits,
            *[self.scale_bits] * self.depth,
            self.special_mod_bits,
        ]

    @property
    def total_bits(self) -> int:
        """Bits of the whole modulus, special prime included."""
        return sum(self.bit_sizes)

    def primes(self) -> list[int]:
        """Generate the primes (≡ 1 mod 2N) that SEAL uses for this chain.

        Raises:
            InvalidInputError: if SEAL finds too few primes of these sizes.
        """
        try:
            moduli = seal.CoeffModulus.Create(self.ring_dim, self.bit_sizes)
        except (RuntimeError, ValueError) as exc:
            raise InvalidInputError(
                f"tenseal: no CKKS chain with primes of {self.bit_sizes} bits at "
                f"N={self.ring_dim} ({exc}); use larger `scale_bits`"
            ) from exc
        return [m.value() for m in moduli]


class Chain:
    """A SEAL context with the level table and the scale rules of hejax.

    One chain serves every key set of every backend with the same parameters
    in a process: SEAL keys are tied to the parameters, not to the context
    object.

    Args:
        spec: the bit sizes of the chain.
        secure: whether SEAL should enforce 128-bit security itself.
    """

    def __init__(self, spec: ChainSpec, secure: bool):
        self.spec = spec
        self.parms = seal.EncryptionParameters(seal.SCHEME_TYPE.CKKS)
        self.parms.set_poly_modulus_degree(spec.ring_dim)
        self.parms.set_coeff_modulus(
            seal.CoeffModulus.Create(spec.ring_dim, spec.bit_sizes)
        )
        level = seal.SEC_LEVEL_TYPE.TC128 if secure else seal.SEC_LEVEL_TYPE.NONE
        self.context = seal.SEALContext(self.parms, True, level)
        if not self.context.parameters_set():
            raise InvalidInputError(
                "tenseal: SEAL rejects the parameters: "
                f"{self.context.parameters_error_message()}"
            )
        self.base_scale = 2.0**spec.scale_bits
        self.evaluator = seal.Evaluator(self.context)
        self.encoder = seal.CKKSEncoder(self.context)
        self._parms_ids, self._dropped = self._level_table()

    def _level_table(self) -> tuple[list[list[int]], list[int]]:
        parms_ids, dropped = [], []
        data = self.context.first_context_data()
        while data is not None:
            parms_ids.append(list(data.parms_id()))
            dropped.append(data.parms().coeff_modulus()[-1].value())
            data = data.next_context_data()
        if len(parms_ids) != self.spec.depth + 1:
            raise InvalidInputError(
                f"tenseal: SEAL built {len(parms_ids)} levels, expected "
                f"{self.spec.depth + 1}"
            )
        return parms_ids, dropped[:-1]

    @property
    def moduli(self) -> list[int]:
        """All primes of the chain, special prime last."""
        return [m.value() for m in self.parms.coeff_modulus()]

    def parms_id(self, level: int) -> list[int]:
        """SEAL parms_id of `level` (0 is the top of the chain)."""
        return self._parms_ids[level]

    def level_of(self, parms_id: Any) -> int | None:
        """Level of a SEAL parms_id, or None if it is not a data level."""
        try:
            return self._parms_ids.index(list(parms_id))
        except ValueError:
            return None

    def dropped_prime(self, level: int) -> int:
        """The prime that a rescale from `level` divides out."""
        if level >= self.spec.depth:
            raise DepthExhaustedError(
                f"tenseal: level {level} is the last level of the chain; "
                "no product or degree-2 value can live there"
            )
        return self._dropped[level]

    def scale(self, level: int, degree: int) -> float:
        """Scale of a ciphertext (or added plaintext) at `level`, `degree`."""
        if degree == 1:
            return self.base_scale
        return self.base_scale * self.dropped_prime(level)

    def mul_scale(self, level: int) -> float:
        """Scale of a multiplier plaintext or scalar at `level`."""
        return float(self.dropped_prime(level))


@functools.lru_cache(maxsize=8)
def chain_for(spec: ChainSpec, secure: bool) -> Chain:
    """Return the process-wide chain for `spec` (built once, then shared)."""
    return Chain(spec, secure)


def galois_element(step: int, ring_dim: int) -> int:
    """Galois element of a left rotation by `step` slots, ``3**step mod 2N``.

    SEAL's ``rotate_vector`` applies this element for a step in ``[1, N/2)``;
    a negative step ``-k`` is the same rotation as ``N/2 - k``.
    """
    return pow(3, step % (ring_dim // 2), 2 * ring_dim)
