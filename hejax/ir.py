"""The tensor-level IR between a traced model and its HE program.

A :class:`Graph` is a topologically ordered tuple of frozen :class:`Node`s.
Feature maps have shape ``(H, W, C)`` (the batch axis of size 1 is dropped);
flat vectors have shape ``(n,)``. Weights are float64 NumPy arrays, made
read-only. :func:`validate` checks a graph before lowering and
:func:`evaluate` runs it in float64 NumPy, as the reference for tests.
The IR knows nothing about ciphertexts.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from hejax.errors import InternalError, InvalidInputError

__all__ = ["Graph", "Node", "OPS", "evaluate", "validate"]


def _freeze(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value = np.array(value, dtype=np.float64)
        value.setflags(write=False)
    return value


@dataclasses.dataclass(frozen=True, eq=False)
class Node:
    """One IR operation.

    Attributes:
        name: unique name, e.g. ``"conv2d_3"``.
        op: operation, a key of :data:`OPS`.
        inputs: names of the input nodes.
        shape: output shape, ``(H, W, C)`` or ``(n,)``.
        attrs: static attributes (weights, strides, …), read-only.
        source: the user's source line that produced the node.
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    shape: tuple[int, ...]
    attrs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    source: str = ""

    def __post_init__(self):
        frozen = {k: _freeze(v) for k, v in dict(self.attrs).items()}
        object.__setattr__(self, "attrs", types.MappingProxyType(frozen))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))

    def describe(self) -> str:
        """One line: ``name = op(inputs) {attrs} : shape``."""
        parts = []
        for key, value in self.attrs.items():
            if isinstance(value, np.ndarray):
                parts.append(f"{key}=f64{list(value.shape)}")
            else:
                parts.append(f"{key}={value}")
        attrs = f" {{{', '.join(parts)}}}" if parts else ""
        shape = "x".join(map(str, self.shape))
        return f"{self.name} = {self.op}({', '.join(self.inputs)}){attrs} : {shape}"


@dataclasses.dataclass(frozen=True, eq=False)
class Graph:
    """A model as IR: nodes in topological order, one input, one output."""

    nodes: tuple[Node, ...]
    output: str

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))

    @property
    def by_name(self) -> dict[str, Node]:
        """Nodes keyed by name."""
        return {n.name: n for n in self.nodes}

    @property
    def input(self) -> Node:
        """The input node."""
        return self.nodes[0]

    def users(self, name: str) -> list[Node]:
        """Nodes that read `name`."""
        return [n for n in self.nodes if name in n.inputs]

    def count(self, op: str) -> int:
        """Number of nodes with operation `op`."""
        return sum(n.op == op for n in self.nodes)

    def __str__(self) -> str:
        lines = [n.describe() for n in self.nodes]
        return "\n".join([*lines, f"return {self.output}"])


# -- reference semantics ----------------------------------------------------


def _conv(node: Node, x: np.ndarray) -> np.ndarray:
    """Float64 reference of conv_general_dilated on one (H, W, C) map."""
    a = node.attrs
    w = a["weight"]  # (kh, kw, C_in / groups, C_out)
    (sy, sx), (ly, lx), (dy, dx) = a["stride"], a["lhs_dilation"], a["rhs_dilation"]
    (pt, pb), (pl, pr) = a["padding"]
    h, wd, c = x.shape
    xd = np.zeros(((h - 1) * ly + 1, (wd - 1) * lx + 1, c))
    xd[::ly, ::lx] = x
    xp = np.pad(xd, ((max(pt, 0), max(pb, 0)), (max(pl, 0), max(pr, 0)), (0, 0)))
    xp = xp[
        max(-pt, 0) : xp.shape[0] - max(-pb, 0), max(-pl, 0) : xp.shape[1] - max(-pr, 0)
    ]
    kh, kw, cig, co = w.shape
    oh, ow = node.shape[:2]
    groups = a["groups"]
    out = np.zeros((oh, ow, co))
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[
                ky * dy : ky * dy + (oh - 1) * sy + 1 : sy,
                kx * dx : kx * dx + (ow - 1) * sx + 1 : sx,
            ]
            for g in range(groups):
                cin = slice(g * cig, (g + 1) * cig)
                cout = slice(g * co // groups, (g + 1) * co // groups)
                out[..., cout] += patch[..., cin] @ w[ky, kx, :, cout]
    return out


def _dense(node: Node, x: np.ndarray) -> np.ndarray:
    return node.attrs["weight"] @ x.reshape(-1)


_EVAL: dict[str, Callable[..., np.ndarray]] = {
    "conv2d": _conv,
    "conv_transpose2d": _conv,
    "dense": _dense,
    "add": lambda node, x, y: x + y,
    "sub": lambda node, x, y: x - y,
    "add_const": lambda node, x: x + node.attrs["value"],
    "mul_const": lambda node, x: x * node.attrs["value"],
    "relu": lambda node, x: np.maximum(x, 0.0),
    "reshape": lambda node, x: x.reshape(node.shape),
}

#: The operations of the IR with their number of inputs.
OPS = {
    "input": 0,
    "conv2d": 1,
    "conv_transpose2d": 1,
    "dense": 1,
    "add": 2,
    "sub": 2,
    "add_const": 1,
    "mul_const": 1,
    "relu": 1,
    "reshape": 1,
}


def validate(graph: Graph) -> None:
    """Check structure, shapes and attributes of `graph`.

    Raises:
        InternalError: if the graph is malformed (a bug of whoever built it).
    """
    seen: dict[str, Node] = {}
    for i, node in enumerate(graph.nodes):
        if node.op not in OPS:
            raise InternalError(f"{node.name}: unknown IR op {node.op!r}")
        if (node.op == "input") != (i == 0):
            raise InternalError(f"{node.name}: exactly the first node must be input")
        if node.name in seen:
            raise InternalError(f"duplicate node name {node.name!r}")
        if len(node.inputs) != OPS[node.op]:
            raise InternalError(f"{node.name}: {node.op} takes {OPS[node.op]} inputs")
        for src in node.inputs:
            if src not in seen:
                raise InternalError(f"{node.name}: input {src!r} is not defined before")
        _check_shapes(node, [seen[s] for s in node.inputs])
        seen[node.name] = node
    if graph.output not in seen:
        raise InternalError(f"output {graph.output!r} is not a node")


def _check_shapes(node: Node, inputs: list[Node]) -> None:
    if any(d <= 0 for d in node.shape) or len(node.shape) not in (1, 3):
        raise InternalError(f"{node.name}: bad shape {node.shape}")
    if node.op in ("add", "sub", "relu", "add_const", "mul_const"):
        if any(x.shape != node.shape for x in inputs):
            raise InternalError(f"{node.name}: operand shapes differ from {node.shape}")
    if node.op in ("add_const", "mul_const"):
        np.broadcast_to(node.attrs["value"], node.shape)
    if node.op.startswith("conv"):
        w = node.attrs["weight"]
        (c_in,) = inputs[0].shape[2:]
        if w.ndim != 4 or w.shape[2] * node.attrs["groups"] != c_in:
            raise InternalError(
                f"{node.name}: weight {w.shape} does not fit C_in={c_in}"
            )
        if w.shape[3] != node.shape[2]:
            raise InternalError(f"{node.name}: weight gives {w.shape[3]} channels")
    if node.op == "dense":
        w = node.attrs["weight"]
        if w.shape != (node.shape[0], int(np.prod(inputs[0].shape))):
            raise InternalError(f"{node.name}: dense weight {w.shape} mismatches")
    if node.op == "reshape" and np.prod(node.shape) != np.prod(inputs[0].shape):
        raise InternalError(f"{node.name}: reshape changes the element count")


def evaluate(graph: Graph, x: Any) -> np.ndarray:
    """Run `graph` on one input in float64 NumPy (the reference semantics).

    Args:
        graph: the IR graph.
        x: the input, of the input node's shape (a leading batch axis of 1 is
            accepted).

    Returns:
        The output as a float64 array of the output node's shape.
    """
    x = np.asarray(x, dtype=np.float64)
    want = graph.input.shape
    if x.shape != want and x.shape != (1, *want):
        raise InvalidInputError(f"input has shape {x.shape}, the graph expects {want}")
    env = {graph.input.name: x.reshape(want)}
    for node in graph.nodes[1:]:
        env[node.name] = _EVAL[node.op](node, *(env[s] for s in node.inputs))
    return env[graph.output]
