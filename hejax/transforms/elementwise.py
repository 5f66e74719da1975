"""Default rules: bias and constants, residual adds, reshapes, boundaries.

These rules are shared by every transform. Constants touch only the slots
that hold valid pixels, so known-zero slots stay zero.
"""

from __future__ import annotations

import numpy as np

from hejax import layout as lay
from hejax.errors import UnsupportedModelError
from hejax.program import TensorLayout
from hejax.transforms import register


def _full(node, x: TensorLayout) -> np.ndarray:
    """The node's constant broadcast to the tensor's (H, W, C) placement."""
    value = np.broadcast_to(node.attrs["value"], node.shape)
    return np.asarray(value).reshape(x.placement.shape)


def _slot_values(x: TensorLayout, full: np.ndarray, c: int, t: int) -> np.ndarray:
    h, w, _ = x.placement.shape
    vec = np.zeros(x.grid.slots)
    held = x.states[t] >= 0
    vec[held] = full.reshape(h * w, -1)[x.states[t, held], c]
    return vec


@register("add_const")
def add_const(b, node, x: TensorLayout) -> TensorLayout:
    """Add a constant (bias) with one add_plain per ciphertext."""
    full = _full(node, x)
    regs = np.empty_like(x.regs)
    for (c, t), reg in np.ndenumerate(x.regs):
        vec = _slot_values(x, full, c, t)
        regs[c, t] = b.add_plain(int(reg), vec) if np.any(vec) else reg
    return TensorLayout(node.shape, x.placement, x.grid, x.states, regs)


@register("mul_const")
def mul_const(b, node, x: TensorLayout) -> TensorLayout:
    """Multiply by a constant: a scalar per channel, or a plaintext."""
    full = _full(node, x)
    x = b.ensure_depth(x, 1)
    per_channel = np.all(full == full.reshape(-1, full.shape[-1])[:1], axis=(0, 1))
    regs = np.empty_like(x.regs)
    states = x.states
    if np.all(per_channel):
        for (c, t), reg in np.ndenumerate(x.regs):
            regs[c, t] = b.rescale(b.mul_scalar(int(reg), full[0, 0, c]))
    else:
        for (c, t), reg in np.ndenumerate(x.regs):
            regs[c, t] = b.rescale(b.mul_plain(int(reg), _slot_values(x, full, c, t)))
        states = lay.cleaned(x.states)
    return TensorLayout(node.shape, x.placement, x.grid, states, regs)


def _align(b, x: TensorLayout, y: TensorLayout, name: str) -> TensorLayout:
    """Rotate `y` so that its pixels sit where `x` has them."""
    if x.placement.stride != y.placement.stride or x.grid != y.grid:
        raise UnsupportedModelError(
            f"{name}: operands are laid out with strides {x.placement.stride} and "
            f"{y.placement.stride}; adding maps of different resolution is not "
            "supported"
        )
    dy = y.placement.offset[0] - x.placement.offset[0]
    dx = y.placement.offset[1] - x.placement.offset[1]
    step = x.grid.shift(dy, dx)
    if step == 0:
        return y
    regs = np.array([b.rotate(int(r), [step])[step] for r in y.regs.flat])
    states = np.roll(y.states, -step, axis=1)
    return TensorLayout(
        y.shape, x.placement, x.grid, states, regs.reshape(y.regs.shape)
    )


def _combine(b, node, x: TensorLayout, y: TensorLayout, op: str) -> TensorLayout:
    y = _align(b, x, y, node.name)
    regs = np.empty_like(x.regs)
    for (c, t), reg in np.ndenumerate(x.regs):
        regs[c, t] = b.add(int(reg), int(y.regs[c, t]), op)
    states = lay.add_states(x.states, y.states)
    return TensorLayout(node.shape, x.placement, x.grid, states, regs)


@register("add")
def add(b, node, x: TensorLayout, y: TensorLayout) -> TensorLayout:
    """Residual add of two tensors (aligned by one rotation when needed)."""
    return _combine(b, node, x, y, "add")


@register("sub")
def sub(b, node, x: TensorLayout, y: TensorLayout) -> TensorLayout:
    """Difference of two tensors."""
    return _combine(b, node, x, y, "sub")


@register("relu")
def relu(b, node, x: TensorLayout) -> TensorLayout:
    """A ReLU boundary: the client applies it and re-encrypts."""
    return b.relu_boundary(x)


@register("reshape")
def reshape(b, node, x: TensorLayout) -> TensorLayout:
    """A flatten: the same ciphertexts, read in row-major (H, W, C) order."""
    return TensorLayout(node.shape, x.placement, x.grid, x.states, x.regs)
