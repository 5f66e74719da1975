"""OpenFHE backends of hejax: CKKS slot arithmetic and BFV coefficients.

It implements :class:`hejax.backend.Backend` on OpenFHE's CKKS with manual
(FIXEDMANUAL) rescaling, HYBRID key switching and hoisted rotations. It
needs the openfhe wheels for CPython 3.10. It does not multiply two
ciphertexts (hejax never does) and offers no bootstrapping: a ciphertext
that used all levels must go back to the client.
"""

from hejax_openfhe._backend import OpenFHEBackend
from hejax_openfhe._bfv import OpenFHEBFVBackend, OpenFHEBFVContext
from hejax_openfhe._context import OpenFHEContext

__all__ = [
    "OpenFHEBFVBackend",
    "OpenFHEBFVContext",
    "OpenFHEBackend",
    "OpenFHEContext",
]
