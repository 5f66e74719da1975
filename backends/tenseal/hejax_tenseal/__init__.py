"""hejax backend plugins for Microsoft SEAL through TenSEAL: CKKS and BFV."""

from hejax_tenseal._backend import TenSEALBackend
from hejax_tenseal._bfv import TenSEALBFVBackend, TenSEALBFVContext
from hejax_tenseal._context import TenSEALContext

__all__ = ["TenSEALBFVBackend", "TenSEALBFVContext", "TenSEALBackend", "TenSEALContext"]
