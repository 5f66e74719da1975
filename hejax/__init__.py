"""hejax: run Flax denoisers on homomorphically encrypted images."""

from hejax import backends, errors, ir, layout, transforms
from hejax.backend import Backend, Capabilities, Ciphertext, Context, Plaintext
from hejax.compile import compile
from hejax.program import Program, execute
from hejax.trace import trace

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Capabilities",
    "Ciphertext",
    "Context",
    "Plaintext",
    "Program",
    "backends",
    "compile",
    "errors",
    "execute",
    "ir",
    "layout",
    "trace",
    "transforms",
]
