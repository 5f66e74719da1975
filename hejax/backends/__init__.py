"""The backend registry: find, load and list HE backends.

Backends register under the entry-point group ``hejax.backends`` (the
`clear` reference backend ships with hejax itself). :func:`register` adds a
backend class in process, for experiments.
"""

from __future__ import annotations

import importlib.metadata
import sys
from typing import Any

from hejax.backend import Backend
from hejax.errors import BackendUnavailableError, InvalidInputError

__all__ = ["available", "get", "load", "names", "register", "status"]

GROUP = "hejax.backends"

_INSTALL_HINTS = {
    "openfhe": (
        "the openfhe wheels carry a CPython 3.10 extension (*.22.4 builds); run "
        "hejax under CPython 3.10 (`make test` creates .venv with it) and "
        "`pip install -e backends/openfhe`"
    ),
    "tenseal": "`pip install -e backends/tenseal` (tenseal==0.3.16)",
    "paillier": "`pip install -e backends/paillier`",
}

_registered: dict[str, type[Backend]] = {}
_loaded: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    """Register a backend class under ``cls.name`` for this process."""
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise InvalidInputError(f"register expects a Backend subclass, got {cls!r}")
    _registered[cls.name] = cls
    return cls


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}


def names() -> list[str]:
    """Names of all installed or registered backends, importable or not."""
    return sorted(set(_entry_points()) | set(_registered))


def _hint(name: str) -> str:
    return _INSTALL_HINTS.get(name, f"install the plugin that provides {name!r}")


def load(name: str) -> type[Backend]:
    """Import and return the backend class called `name`.

    Raises:
        BackendUnavailableError: if no such backend is installed, or it fails
            to import; the message names the cause and the fix.
    """
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
    eps = _entry_points()
    if name not in eps:
        raise BackendUnavailableError(
            f"backend {name!r} is not installed (installed: "
            f"{', '.join(names()) or 'none'}). Fix: {_hint(name)}"
        )
    try:
        cls = eps[name].load()
    except Exception as exc:
        py = ".".join(map(str, sys.version_info[:3]))
        raise BackendUnavailableError(
            f"backend {name!r} is installed but failed to import under CPython "
            f"{py}: {type(exc).__name__}: {exc}. Fix: {_hint(name)}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendUnavailableError(
            f"entry point {name!r} in {GROUP} gives {cls!r}, not a hejax Backend"
        )
    _loaded[name] = cls
    return cls


def status() -> dict[str, str]:
    """Map each installed backend to ``"ok"`` or the reason it cannot load."""
    out = {}
    for name in names():
        try:
            load(name)
            out[name] = "ok"
        except BackendUnavailableError as exc:
            out[name] = str(exc)
    return out


def available() -> list[str]:
    """Names of the backends that are installed and import."""
    return [name for name, state in status().items() if state == "ok"]


def get(name: str | Backend, **params: Any) -> Backend:
    """Return backend `name` built with `params` (``preset=``, overrides).

    A :class:`Backend` instance is returned unchanged (with no params).

    Raises:
        BackendUnavailableError: if the backend is missing or fails to import.
        InvalidInputError: for an unknown preset or parameter.
        InsecureParametersError: for parameters below 128-bit security.
    """
    if isinstance(name, Backend):
        if params:
            raise InvalidInputError("params cannot be given with a Backend instance")
        return name
    if not isinstance(name, str):
        raise InvalidInputError(f"backend must be a name or Backend, got {name!r}")
    return load(name)(**params)
