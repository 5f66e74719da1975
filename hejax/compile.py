"""`hejax.compile`: from a JAX function and its parameters to a Program."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hejax import backends, transforms
from hejax.errors import InvalidInputError
from hejax.lower import lower
from hejax.program import Program
from hejax.trace import trace

__all__ = ["compile"]

_OPTIONS = {"refresh": bool, "round_depth": int, "unmask": str}
_UNMASK = ("fold", "explicit")


def compile(  # noqa: A001 - the public name mirrors jax.jit's style of verbs
    fn: Callable,
    params: Any,
    input_spec: Any,
    *,
    backend: Any,
    transform: str = "auto",
    **options: Any,
) -> Program:
    """Compile ``fn(params, x)`` into an HE program for `backend`.

    A pure function: the result depends only on the arguments.

    Args:
        fn: a JAX-traceable function ``fn(params, x)`` — a Flax linen
            ``model.apply``, a function closing over an nnx module's
            ``graphdef`` (see :func:`hejax.nnx_apply`), or plain JAX.
        params: its parameters (a pytree of arrays).
        input_spec: a ``jax.ShapeDtypeStruct`` or an example array of shape
            ``(1, H, W, C)`` or ``(1, n)``.
        backend: a backend name (default preset) or a
            :class:`~hejax.backend.Backend` instance.
        transform: how convolutions are lowered: ``"shift"``,
            ``"shift-out"`` or ``"auto"`` (see :mod:`hejax.transforms`), or
            ``"coef"`` for coefficient backends, which returns a
            :class:`~hejax.transforms.coef.CoefProgram` and takes the options
            ``masks`` (required: ``"channel"`` or ``"off"``), ``frac_bits``,
            ``weight_bits``, ``mask_bits``, ``input_bound``, ``calibration``
            (images that cap the feature maps, checked at run time) and
            ``headroom_bits``.
        **options: ``refresh`` (default True): insert refresh rounds where
            the depth runs out; with False, running out of depth is an error.
            ``round_depth``: at most this many levels per round (default: all
            the backend's levels). ``unmask``: ``"fold"`` (default) divides
            ReLU masks out inside the next layer's products — no extra HE
            operation, but per-element masks then need a fresh plaintext per
            product; ``"explicit"`` spends one product and one level per
            ciphertext after each ReLU round instead, and keeps scalar weights.

    Returns:
        The :class:`~hejax.program.Program`.

    Raises:
        UnsupportedModelError: for operations hejax cannot lower.
        InvalidInputError: for a bad input spec, transform or option.
        BackendUnavailableError: for an unknown or broken backend.
    """
    be = backends.get(backend)
    compiler = transforms.program_compiler(transform)
    if compiler is not None:  # a whole-graph transform (coef) checks its options
        return compiler(trace(fn, params, input_spec), be, options)
    if "slot" not in be.capabilities.encodings:
        raise InvalidInputError(
            f"backend {be.name!r} supports {be.capabilities.encodings} encoding "
            f"only; transform {transform!r} needs slots. Use transform='coef'"
        )
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise InvalidInputError(
            f"unknown compile option(s) {unknown}; options: {sorted(_OPTIONS)}"
        )
    if options.get("unmask", "fold") not in _UNMASK:
        raise InvalidInputError(
            f"unknown unmask mode {options['unmask']!r}; modes: {_UNMASK}"
        )
    graph = trace(fn, params, input_spec)
    return lower(
        graph,
        be.capabilities,
        backend=be.name,
        fingerprint=be.fingerprint,
        transform=transform,
        options={**options, "backend": be},
    )
