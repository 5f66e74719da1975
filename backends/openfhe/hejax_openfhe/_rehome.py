"""Received ciphertexts, moved into objects this process made.

An OpenFHE ciphertext that came out of ``DeserializeCiphertextString`` is
slow to copy (about 4 ms at N=16384 against 0.1 ms for a local one), and
every ``EvalAdd``/``EvalMult`` copies its first operand, so a server working
on received ciphertexts ran five to ten times slower than the primitive
costs, for CKKS and BFV alike. Moving the polynomials into an empty copy of
a locally encrypted ciphertext, with the metadata of the received one,
gives an object that copies at the normal cost; the values are untouched.
"""

from __future__ import annotations

from typing import Any


def rehome(template: Any, ct: Any) -> Any:
    """`ct`'s polynomials and metadata in an empty copy of local `template`."""
    out = template.CloneEmpty()
    out.SetElementsMove(ct.GetElementsMutable())
    out.SetLevel(ct.GetLevel())
    out.SetNoiseScaleDeg(ct.GetNoiseScaleDeg())
    out.SetScalingFactor(ct.GetScalingFactor())
    out.SetScalingFactorInt(ct.GetScalingFactorInt())
    out.SetSlots(ct.GetSlots())
    out.SetKeyTag(ct.GetKeyTag())
    out.SetEncodingType(ct.GetEncodingType())
    out.SetHopLevel(ct.GetHopLevel())
    return out
