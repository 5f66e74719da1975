"""hejax: run Flax denoisers on homomorphically encrypted images."""

from hejax import backends, errors, ir, layout, transforms
from hejax.backend import Backend, Capabilities, Ciphertext, Context, Plaintext
from hejax.compile import compile
from hejax.program import Program, execute
from hejax.protocol import Client, ClientView, Server, Transcript, run
from hejax.schedule import schedule
from hejax.trace import trace

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Capabilities",
    "Ciphertext",
    "Context",
    "Plaintext",
    "Client",
    "ClientView",
    "Program",
    "Server",
    "Transcript",
    "backends",
    "compile",
    "errors",
    "execute",
    "ir",
    "layout",
    "run",
    "schedule",
    "trace",
    "transforms",
]
