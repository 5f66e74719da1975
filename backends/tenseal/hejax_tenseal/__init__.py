"""hejax backend plugin for Microsoft SEAL CKKS through TenSEAL."""

from hejax_tenseal._backend import TenSEALBackend
from hejax_tenseal._context import TenSEALContext

__all__ = ["TenSEALBackend", "TenSEALContext"]
