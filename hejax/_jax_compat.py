"""The few JAX internals hejax touches, in one place.

Written against jax 0.6.2. Each helper notes what it relies on so that a JAX
upgrade has one file to check.
"""

from __future__ import annotations

import os
from typing import Any

from jax.extend import core as jex_core

Literal = jex_core.Literal
ClosedJaxpr = jex_core.ClosedJaxpr


def _library_dirs() -> tuple[str, ...]:
    dirs = []
    for name in ("jax", "jaxlib", "flax", "optax"):
        try:
            mod = __import__(name)
        except ImportError:
            continue
        dirs.append(os.path.dirname(mod.__file__) + os.sep)
    dirs.append(os.path.dirname(os.path.abspath(__file__)) + os.sep)
    return tuple(dirs)


LIBRARY_DIRS = _library_dirs()


def user_source(eqn: Any) -> str:
    """Return ``file:line (function)`` of the user's code that made `eqn`.

    Relies on ``eqn.source_info.traceback.frames`` (jax 0.4.x to 0.6.x): the
    first frame outside JAX, Flax, Optax and hejax is the user's.
    """
    traceback = getattr(eqn.source_info, "traceback", None)
    frames = getattr(traceback, "frames", None) or []
    fallback = ""
    for frame in frames:
        where = f"{frame.file_name}:{frame.line_num} ({frame.function_name})"
        fallback = fallback or where
        if not frame.file_name.startswith(LIBRARY_DIRS):
            return where
    return fallback or "<unknown source>"


def inner_jaxpr(eqn: Any) -> ClosedJaxpr | None:
    """The called jaxpr of a call-like equation, or None.

    ``pjit`` and ``closed_call`` keep it in ``params["jaxpr"]``,
    ``custom_jvp_call`` in ``params["call_jaxpr"]``, ``custom_vjp_call`` (0.6)
    in ``params["call_jaxpr"]`` or ``params["fun_jaxpr"]``, ``remat`` in
    ``params["jaxpr"]`` as an open Jaxpr.
    """
    for key in ("jaxpr", "call_jaxpr", "fun_jaxpr"):
        inner = eqn.params.get(key)
        if inner is None:
            continue
        if isinstance(inner, ClosedJaxpr):
            return inner
        if isinstance(inner, jex_core.Jaxpr):
            return ClosedJaxpr(inner, ())
    return None
