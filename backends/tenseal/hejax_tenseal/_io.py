"""Bytes in and out of SEAL objects for the tenseal backend.

The SEAL bindings of TenSEAL save and load objects through file paths only,
so each call goes through a file in a private temporary directory (in memory
where ``/dev/shm`` exists). SEAL compresses what it saves with zstd, which the
TenSEAL build includes: the unused high bits of each 64-bit coefficient
mostly go, and a fresh ciphertext at N=8192 shrinks from 524 KB to 413 KB.
Another compressor on top gains nothing.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import os
import shutil
import struct
import tempfile
import threading
from typing import Any, TypeVar

import numpy as np
import tenseal.sealapi as seal
import zstandard

from hejax.errors import SerializationError

T = TypeVar("T")

_SHM = "/dev/shm"
_TMP_DIR = _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK) else None
_scratch_dir: dict[int, str] = {}  # process id -> its private directory
_names = itertools.count()


def _path() -> str:
    """A fresh file name in this process's private scratch directory.

    The directory is made once per process (mode 0700, removed at exit); a
    directory per call cost more than the SEAL call it served.
    """
    pid = os.getpid()
    if pid not in _scratch_dir:
        _scratch_dir[pid] = tempfile.mkdtemp(prefix="hejax-tenseal-", dir=_TMP_DIR)
        atexit.register(shutil.rmtree, _scratch_dir[pid], True)
    return os.path.join(
        _scratch_dir[pid], f"{threading.get_ident()}-{next(_names)}.seal"
    )


def dump(obj: Any) -> bytes:
    """Serialize a SEAL object (ciphertext, key, parameters) to bytes."""
    path = _path()
    try:
        obj.save(path)
        with open(path, "rb") as f:
            return f.read()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


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
    path = _path()
    try:
        with open(path, "wb") as f:
            f.write(data)
        if context is None:
            obj.load(path)
        else:
            obj.load(context, path)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise SerializationError(
            f"SEAL could not load a {type(obj).__name__}: {exc}"
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return obj


# -- plaintext coefficients ------------------------------------------------------
#
# A SEAL object saved to bytes is a 16-byte header (magic, header size, SEAL
# version, compression mode, reserved, total size) and its members. A BFV
# Plaintext's members are its parms_id (four words, zero in coefficient form),
# its coefficient count, its scale (a double) and its coefficients, themselves
# saved as an array object: header, count, then one little-endian word each.
# Writing that layout uncompressed and loading it is ~50x faster than SEAL's
# only other entry point, a hexadecimal polynomial string; SEAL still checks
# on load that every coefficient is below t. Reading goes the other way
# through SEAL's zstd output.

_HEADER = struct.Struct("<5sBHQ")  # magic..version, compression, reserved, size
_COUNT = struct.Struct("<Q")
_MEMBERS = struct.Struct("<32sQd")  # parms_id, coefficient count, scale
_NONE, _ZSTD = 0, 2
_MAX_PLAIN = 1 << 24  # bytes of a decompressed plaintext (N = 2^17 needs 1 MiB)


@functools.cache
def _version() -> bytes:
    """Magic, header size and version of the SEAL build, from its own output."""
    return dump(seal.Plaintext("1"))[:5]


def plaintext(values: np.ndarray, context: Any) -> Any:
    """A SEAL Plaintext with coefficients `values` (each in ``[0, t)``).

    Raises:
        SerializationError: if SEAL refuses them (a value at or above t).
    """
    words = np.ascontiguousarray(values, dtype="<u8")
    k = words.size
    inner = _HEADER.size + _COUNT.size + 8 * k
    members = (
        _MEMBERS.pack(bytes(32), k, 1.0)
        + _HEADER.pack(_version(), _NONE, 0, inner)
        + _COUNT.pack(k)
        + words.tobytes()
    )
    head = _HEADER.pack(_version(), _NONE, 0, _HEADER.size + len(members))
    return load(seal.Plaintext(), head + members, context)


def coefficients(pt: Any) -> np.ndarray:
    """The coefficients of a SEAL Plaintext in coefficient form (uint64)."""
    raw = dump(pt)
    body = raw[_HEADER.size :]
    if raw[5] == _ZSTD:
        body = zstandard.ZstdDecompressor().decompress(body, max_output_size=_MAX_PLAIN)
    elif raw[5] != _NONE:
        raise SerializationError(f"SEAL saved a plaintext with compression {raw[5]}")
    count = _MEMBERS.unpack_from(body)[1]
    offset = _MEMBERS.size + _HEADER.size + _COUNT.size
    return np.frombuffer(body, dtype="<u8", count=count, offset=offset)
