"""Bytes in and out of SEAL objects for the tenseal backend.

The SEAL bindings of TenSEAL save and load objects through file paths only,
so each call goes through a private temporary directory (in memory where
``/dev/shm`` exists). SEAL compresses what it saves with zstd, which the
TenSEAL build includes: the unused high bits of each 64-bit coefficient
mostly go, and a fresh ciphertext at N=8192 shrinks from 524 KB to 413 KB.
Another compressor on top gains nothing.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, TypeVar

from hejax.errors import SerializationError

T = TypeVar("T")

_NAME = "object.seal"
_SHM = "/dev/shm"
_TMP_DIR = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None


def _scratch() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="hejax-tenseal-", dir=_TMP_DIR)


def dump(obj: Any) -> bytes:
    """Serialize a SEAL object (ciphertext, key, parameters) to bytes."""
    with _scratch() as tmp:
        path = os.path.join(tmp, _NAME)
        obj.save(path)
        with open(path, "rb") as f:
            return f.read()


def load(obj: T, data: bytes, context: Any = None) -> T:
    """Fill the empty SEAL object `obj` from bytes written by :func:`dump`.

    Args:
        obj: a fresh SEAL object of the right type.
        data: the bytes.
        context: the SEALContext to validate against (``None`` for
            encryption parameters, which need none).

    Returns:
        `obj`, loaded.

    Raises:
        SerializationError: if SEAL rejects the bytes.
    """
    if not data:
        raise SerializationError(f"empty bytes for a SEAL {type(obj).__name__}")
    with _scratch() as tmp:
        path = os.path.join(tmp, _NAME)
        with open(path, "wb") as f:
            f.write(data)
        try:
            if context is None:
                obj.load(path)
            else:
                obj.load(context, path)
        except (RuntimeError, ValueError, TypeError) as exc:
            raise SerializationError(
                f"SEAL could not load a {type(obj).__name__}: {exc}"
            ) from exc
    return obj
