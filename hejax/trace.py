"""Trace a JAX function into the hejax IR.

:func:`trace` runs ``jax.make_jaxpr`` on ``fn(params, x)`` and walks the
jaxpr the way JAX's own interpreters do: an environment maps each variable
to a compile-time constant (weights and everything computed from them alone)
or to an IR node that depends on the input. Equations on constants only are
evaluated on the spot; the others are lowered by the rules in `RULES`, a
dict from jaxpr primitive name to rule. Calls (``pjit``,
``custom_jvp_call``, …) are inlined.

Not handled yet: feature maps in another layout than NHWC, batch sizes other
than 1, and products or maxima of two input-dependent values (other than
``max(x, 0)``, which is ReLU).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from hejax import _jax_compat as jc
from hejax.errors import InvalidInputError, UnsupportedModelError
from hejax.ir import Graph, Node, validate

__all__ = ["RULES", "trace"]


@dataclasses.dataclass(frozen=True)
class Tensor:
    """An input-dependent value: an IR node, with the jaxpr's full shape."""

    name: str
    shape: tuple[int, ...]


class _Builder:
    def __init__(self):
        self.nodes: list[Node] = []
        self.counter = itertools.count()

    def emit(self, op, inputs, shape, source="", **attrs) -> Tensor:
        name = f"{op}_{next(self.counter)}"
        ir_shape = shape[1:] if len(shape) in (2, 4) else shape
        if any(d <= 0 for d in ir_shape):
            raise UnsupportedModelError(
                f"{op} at {source or 'the input'} produces an empty feature map "
                f"of shape {tuple(shape)}; the image is too small for this model"
            )
        self.nodes.append(Node(name, op, tuple(inputs), ir_shape, attrs, source))
        return Tensor(name, tuple(shape))


Rule = Callable[[_Builder, Any, list[Any]], list[Any]]
RULES: dict[str, Rule] = {}


def register(*names: str) -> Callable[[Rule], Rule]:
    """Register a lowering rule for the given jaxpr primitives."""

    def wrap(rule: Rule) -> Rule:
        for name in names:
            RULES[name] = rule
        return rule

    return wrap


def _unsupported(eqn, why: str) -> UnsupportedModelError:
    return UnsupportedModelError(
        f"`{eqn.primitive.name}` at {jc.user_source(eqn)}: {why}. hejax lowers "
        "convolutions, transposed convolutions, dense layers, additions, "
        "products with constants and max(x, 0) (ReLU)"
    )


def _const(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _interpret(b: _Builder, jaxpr: Any, consts: list[Any], args: list[Any]) -> list:
    env: dict[Any, Any] = {}

    def read(var):
        if isinstance(var, jc.Literal):
            return np.asarray(var.val)
        return env[var]

    def write(var, value):
        env[var] = value

    for var, value in zip(jaxpr.constvars, consts, strict=True):
        write(var, np.asarray(value))
    for var, value in zip(jaxpr.invars, args, strict=True):
        write(var, value)
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outvals = _lower_eqn(b, eqn, invals)
        for var, value in zip(eqn.outvars, outvals, strict=True):
            write(var, value)
    return [read(v) for v in jaxpr.outvars]


def _lower_eqn(b: _Builder, eqn: Any, invals: list[Any]) -> list[Any]:
    inner = jc.inner_jaxpr(eqn)
    if inner is not None and any(isinstance(v, Tensor) for v in invals):
        return _interpret(b, inner.jaxpr, list(inner.consts), invals)
    if not any(isinstance(v, Tensor) for v in invals):
        out = eqn.primitive.bind(*invals, **eqn.params)
        return list(out) if eqn.primitive.multiple_results else [out]
    rule = RULES.get(eqn.primitive.name)
    if rule is None:
        raise _unsupported(eqn, "this primitive has no HE lowering")
    return rule(b, eqn, invals)


# -- rules ------------------------------------------------------------------


@register("conv_general_dilated")
def _conv(b: _Builder, eqn, invals):
    x, w = invals
    if isinstance(w, Tensor):
        raise _unsupported(eqn, "the kernel depends on the input")
    p = eqn.params
    dn = p["dimension_numbers"]
    if tuple(dn.lhs_spec) != (0, 3, 1, 2) or tuple(dn.out_spec) != (0, 3, 1, 2):
        raise _unsupported(eqn, f"feature maps must be NHWC, got {dn}")
    if p["batch_group_count"] != 1:
        raise _unsupported(eqn, "batch_group_count must be 1")
    o, i, h, wd = dn.rhs_spec
    weight = np.transpose(_const(w), (h, wd, i, o))  # to HWIO
    lhs = tuple(int(d) for d in p["lhs_dilation"])
    op = "conv_transpose2d" if max(lhs) > 1 else "conv2d"
    out = b.emit(
        op,
        [x.name],
        eqn.outvars[0].aval.shape,
        jc.user_source(eqn),
        weight=weight,
        stride=tuple(int(s) for s in p["window_strides"]),
        padding=tuple((int(lo), int(hi)) for lo, hi in p["padding"]),
        lhs_dilation=lhs,
        rhs_dilation=tuple(int(d) for d in p["rhs_dilation"]),
        groups=int(p["feature_group_count"]),
    )
    return [out]


@register("dot_general")
def _dot(b: _Builder, eqn, invals):
    x, w = invals
    if isinstance(w, Tensor):
        if isinstance(x, Tensor):
            raise _unsupported(eqn, "a product of two input-dependent values")
        raise _unsupported(eqn, "the input must be the left operand")
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    w = _const(w)
    if lb or rb or len(lc) != 1 or lc[0] != len(x.shape) - 1 or w.ndim != 2:
        raise _unsupported(eqn, "only x @ W over the last axis is supported")
    weight = w if rc[0] == 1 else w.T  # (out, in)
    shape = eqn.outvars[0].aval.shape
    source = jc.user_source(eqn)
    if len(x.shape) == 4:  # a dense layer applied per pixel is a 1x1 conv
        out = b.emit(
            "conv2d",
            [x.name],
            shape,
            source,
            weight=weight.T[None, None],
            stride=(1, 1),
            padding=((0, 0), (0, 0)),
            lhs_dilation=(1, 1),
            rhs_dilation=(1, 1),
            groups=1,
        )
        return [out]
    if len(x.shape) != 2:
        raise _unsupported(eqn, f"dense input of shape {x.shape}")
    return [b.emit("dense", [x.name], shape, source, weight=weight)]


def _broadcast_const(eqn, value, shape) -> np.ndarray:
    """A constant operand, broadcastable to the IR shape (batch axis dropped)."""
    value = _const(value)
    try:
        np.broadcast_to(value, shape)
    except ValueError as exc:
        raise _unsupported(eqn, f"constant of shape {value.shape}") from exc
    return value.reshape((1,) * (len(shape) - value.ndim) + value.shape)[0]


@register("add", "sub", "add_any")
def _add(b: _Builder, eqn, invals):
    x, y = invals
    shape = eqn.outvars[0].aval.shape
    source = jc.user_source(eqn)
    sub = eqn.primitive.name == "sub"
    if isinstance(x, Tensor) and isinstance(y, Tensor):
        if x.shape != y.shape:
            raise _unsupported(eqn, f"broadcasting {x.shape} against {y.shape}")
        return [b.emit("sub" if sub else "add", [x.name, y.name], shape, source)]
    if isinstance(y, Tensor):  # c + x or c - x
        if sub:
            y = b.emit("mul_const", [y.name], y.shape, source, value=np.array(-1.0))
        x, y = y, x
        sub = False
    value = _broadcast_const(eqn, y, shape)
    value = -value if sub else value
    return [b.emit("add_const", [x.name], shape, source, value=value)]


def _scaled(b: _Builder, eqn, x: Tensor, value: np.ndarray) -> list[Tensor]:
    """``x * value`` for a constant `value`, as one mul_const node."""
    shape = eqn.outvars[0].aval.shape
    return [b.emit("mul_const", [x.name], shape, jc.user_source(eqn), value=value)]


@register("mul")
def _mul(b: _Builder, eqn, invals):
    x, y = invals
    if isinstance(x, Tensor) and isinstance(y, Tensor):
        raise _unsupported(eqn, "a product of two input-dependent values")
    if isinstance(y, Tensor):
        x, y = y, x
    return _scaled(b, eqn, x, _broadcast_const(eqn, y, eqn.outvars[0].aval.shape))


@register("div")
def _div(b: _Builder, eqn, invals):
    x, y = invals
    if isinstance(y, Tensor):
        raise _unsupported(eqn, "division by an input-dependent value")
    return _scaled(b, eqn, x, 1.0 / _broadcast_const(eqn, y, eqn.outvars[0].aval.shape))


@register("neg")
def _neg(b: _Builder, eqn, invals):
    return _scaled(b, eqn, invals[0], np.array(-1.0))


@register("max")
def _max(b: _Builder, eqn, invals):
    x, y = invals
    if isinstance(y, Tensor):
        x, y = y, x
    if isinstance(y, Tensor) or np.any(_const(y) != 0):
        raise _unsupported(eqn, "only max(x, 0) (ReLU) is supported")
    return [b.emit("relu", [x.name], x.shape, jc.user_source(eqn))]


@register("convert_element_type", "copy", "copy_p", "optimization_barrier")
def _identity(b: _Builder, eqn, invals):
    if eqn.primitive.name == "convert_element_type":
        dtype = np.dtype(eqn.params["new_dtype"])
        if dtype.kind != "f":
            raise _unsupported(eqn, f"conversion of the input to {dtype}")
    return list(invals)


@register("reshape", "squeeze", "expand_dims", "broadcast_in_dim")
def _reshape(b: _Builder, eqn, invals):
    x = invals[0]
    shape = tuple(eqn.outvars[0].aval.shape)
    if np.prod(shape) != np.prod(x.shape):
        raise _unsupported(eqn, f"broadcasting a feature map {x.shape} to {shape}")
    if shape == x.shape:
        return [x]
    if len(shape) != 2 or shape[0] != 1:
        raise _unsupported(eqn, f"reshape of a feature map {x.shape} to {shape}")
    return [b.emit("reshape", [x.name], shape, jc.user_source(eqn))]


# -- entry point ----------------------------------------------------------


def input_shape(spec: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an input spec (a ShapeDtypeStruct or an array)."""
    shape, dtype = getattr(spec, "shape", None), getattr(spec, "dtype", None)
    if shape is None or dtype is None:
        raise InvalidInputError(
            "input_spec must be a jax.ShapeDtypeStruct or an example array, got "
            f"{type(spec).__name__}"
        )
    shape, dtype = tuple(int(d) for d in shape), np.dtype(dtype)
    if dtype.kind != "f":
        raise InvalidInputError(
            f"input dtype {dtype} cannot be carried by HE slots; use float32 or "
            "float64 (scale integer images to [0, 1] first)"
        )
    if len(shape) not in (2, 4):
        raise InvalidInputError(
            f"input shape {shape} must be (1, H, W, C) for images or (1, n) for vectors"
        )
    if shape[0] != 1:
        raise InvalidInputError(
            f"batch size {shape[0]} is not supported: hejax encrypts one image "
            "at a time; give shape (1, ...) and run the images one by one"
        )
    return shape, dtype


def trace(fn: Callable, params: Any, input_spec: Any) -> Graph:
    """Trace ``fn(params, x)`` into an IR :class:`~hejax.ir.Graph`.

    Args:
        fn: a JAX-traceable function of ``(params, x)``; for Flax linen pass
            ``model.apply``.
        params: the model parameters (a pytree of arrays).
        input_spec: a ``jax.ShapeDtypeStruct`` or an example array, shape
            ``(1, H, W, C)`` or ``(1, n)``.

    Returns:
        The validated IR graph.

    Raises:
        UnsupportedModelError: for an operation hejax cannot lower, naming the
            primitive and the user's source line.
        InvalidInputError: for a bad input spec.
    """
    shape, dtype = input_shape(input_spec)
    spec = jax.ShapeDtypeStruct(shape, dtype)
    closed = jax.make_jaxpr(fn)(params, spec)
    leaves = jax.tree_util.tree_leaves(params)
    b = _Builder()
    x = b.emit("input", [], shape)
    args = [np.asarray(leaf) for leaf in leaves] + [x]
    outs = _interpret(b, closed.jaxpr, list(closed.consts), args)
    if len(outs) != 1 or not isinstance(outs[0], Tensor):
        raise UnsupportedModelError(
            "the function must return one array that depends on the input"
        )
    graph = Graph(_prune(b.nodes, outs[0].name), outs[0].name)
    validate(graph)
    return graph


def _prune(nodes: list[Node], output: str) -> list[Node]:
    live, keep = {output}, []
    for node in reversed(nodes):
        if node.name in live or node.op == "input":
            live.update(node.inputs)
            keep.append(node)
    return keep[::-1]
