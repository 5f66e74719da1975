"""hejax: run Flax denoisers on homomorphically encrypted images."""

from hejax import backends, errors
from hejax.backend import Backend, Capabilities, Ciphertext, Context, Plaintext

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Capabilities",
    "Ciphertext",
    "Context",
    "Plaintext",
    "backends",
    "errors",
]
