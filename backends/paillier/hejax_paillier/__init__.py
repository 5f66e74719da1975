"""hejax backend plugin for Paillier encryption through python-paillier.

The names are imported on first use, so that worker processes, which need
only :mod:`hejax_paillier._kernels`, start without importing hejax.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "PaillierBackend": "hejax_paillier._backend",
    "PaillierContext": "hejax_paillier._context",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hejax_paillier' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
