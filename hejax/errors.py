"""Exceptions raised by hejax.

Every error a user can cause derives from :class:`HejaxError` and says what
was wrong and how to fix it. :class:`InternalError` marks a bug in hejax
itself, never a mistake of the caller.
"""

from __future__ import annotations


class HejaxError(Exception):
    """Base class of every error hejax raises on bad input or bad state."""


class InternalError(HejaxError):
    """A bug in hejax: an invariant the library itself should keep broke."""


class InvalidInputError(HejaxError, ValueError):
    """An argument has the wrong shape, type or value (NaN, inf, too long)."""


class BackendError(HejaxError):
    """Base class of errors that concern an HE backend."""


class BackendUnavailableError(BackendError):
    """A backend is unknown, not installed, or fails to import."""


class InsecureParametersError(BackendError):
    """Parameters fall below 128-bit security and `insecure=True` was not set."""


class SecretKeyError(BackendError):
    """Decryption was asked of a context that holds no secret key."""


class KeyMismatchError(BackendError):
    """A ciphertext or plaintext belongs to another key set or backend."""


class MissingRotationKeyError(BackendError):
    """A rotation was asked for whose key the public bundle does not hold."""


class DepthExhaustedError(BackendError):
    """A rescale would go past the last level the parameters allow."""


class LevelMismatchError(BackendError):
    """Operands sit at incompatible levels or scale degrees."""


class SerializationError(HejaxError):
    """Bytes are truncated, corrupted, of another version or of another kind."""


class UnsupportedModelError(HejaxError):
    """A model uses an operation the compiler cannot lower to HE."""


class ProgramError(HejaxError):
    """A program cannot run as asked (for example a ReLU with no scheduler)."""


class ProtocolError(HejaxError):
    """A client/server message is malformed, out of order, or replayed."""
