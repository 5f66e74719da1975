"""Rotation-based convolution ("shift" convolution) in slot encoding.

Each kernel tap is a rotation of a channel's ciphertext by the tap's slot
offset, so a convolution is a sum of rotated inputs times scalar weights,
rescaled once per output channel (one level). Padding, strides, dilations,
transposed convolutions (input dilation) and groups follow from the layout's
slot states, see :mod:`hejax.layout`.

Two transforms:

* ``shift`` rotates each input channel once per tap with hoisting
  (``C_in · k²`` rotations sharing one decomposition per input), then sums
  weighted copies for every output channel.
* ``shift-out`` first forms, for every output channel and tap, the weighted
  sum of unrotated inputs, then rotates that partial sum (``C_out · k²``
  rotations, not hoisted); fewer rotations when ``C_out < C_in``.
* ``auto`` picks, per layer, whichever of the two needs fewer rotations
  (counting a hoisted rotation as half a plain one when the backend hoists).

A layer whose input holds garbage where the taps would read padding first
multiplies by a 0/1 mask (one more level).
"""

from __future__ import annotations

import numpy as np

from hejax import layout as lay
from hejax.program import TensorLayout
from hejax.transforms import register

CONV_OPS = ("conv2d", "conv_transpose2d")


def _prepare(b, node, x: TensorLayout):
    geo = lay.conv_geometry(x.placement, node.attrs, node.shape, node.name)
    plain = lay.conv_states(x.grid, geo, x.states)
    masked = lay.conv_states(x.grid, geo, lay.cleaned(x.states))
    if np.sum(masked >= 0) > np.sum(plain >= 0):
        x, plain = b.mask(x), masked
    x = b.ensure_depth(x, 1)
    steps = [x.grid.shift(dy, dx) for dy, dx in geo.deltas]
    return x, geo, plain, steps


def _weights(node, o: int):
    """``(input channel, tap index, weight)`` of output channel `o`, nonzero."""
    w = node.attrs["weight"]
    kh, kw, cig, co = w.shape
    group = o // (co // node.attrs["groups"])
    for il in range(cig):
        for tap in range(kh * kw):
            value = w[tap // kw, tap % kw, il, o]
            if value != 0:
                yield group * cig + il, tap, value


def _zero(b, x: TensorLayout, t: int) -> int:
    return b.rescale(b.mul_scalar(int(x.regs[0, t]), 0.0))


def _output(node, geo, x, states, regs) -> TensorLayout:
    return TensorLayout(node.shape, geo.out, x.grid, states, regs)


def conv_rotate_inputs(b, node, x: TensorLayout) -> TensorLayout:
    """Hoisted rotations of every input channel, then weighted sums."""
    x, geo, states, steps = _prepare(b, node, x)
    c_out, tiles = node.shape[2], x.grid.tiles
    regs = np.empty((c_out, tiles), dtype=np.int64)
    used = {i for o in range(c_out) for i, _, _ in _weights(node, o)}
    for t in range(tiles):
        rots = {i: b.rotate(int(x.regs[i, t]), steps) for i in sorted(used)}
        for o in range(c_out):
            acc = None
            for i, tap, w in _weights(node, o):
                acc = b.add(acc, b.mul_scalar(rots[i][steps[tap] % x.grid.slots], w))
            regs[o, t] = _zero(b, x, t) if acc is None else b.rescale(acc)
    return _output(node, geo, x, states, regs)


def conv_rotate_outputs(b, node, x: TensorLayout) -> TensorLayout:
    """Weighted sums per tap first, then one rotation per output and tap."""
    x, geo, states, steps = _prepare(b, node, x)
    c_out, tiles = node.shape[2], x.grid.tiles
    regs = np.empty((c_out, tiles), dtype=np.int64)
    for t in range(tiles):
        for o in range(c_out):
            partial: dict[int, int] = {}
            for i, tap, w in _weights(node, o):
                term = b.mul_scalar(int(x.regs[i, t]), w)
                partial[tap] = b.add(partial.get(tap), term)
            acc = None
            for tap, reg in sorted(partial.items()):
                acc = b.add(acc, b.rotate(reg, [steps[tap]])[steps[tap] % x.grid.slots])
            regs[o, t] = _zero(b, x, t) if acc is None else b.rescale(acc)
    return _output(node, geo, x, states, regs)


def conv_auto(b, node, x: TensorLayout) -> TensorLayout:
    """Whichever of the two variants needs fewer rotations for this layer."""
    kh, kw, cig, co = node.attrs["weight"].shape
    taps = kh * kw
    c_in = cig * node.attrs["groups"]
    hoisted = 0.5 if b.caps.hoisting else 1.0
    if co * taps < hoisted * c_in * taps:
        return conv_rotate_outputs(b, node, x)
    return conv_rotate_inputs(b, node, x)


for _op in CONV_OPS:
    register(_op, "shift", "hoisted rotations of the inputs")(conv_rotate_inputs)
    register(_op, "shift-out", "rotations of output partial sums")(conv_rotate_outputs)
    register(_op, "auto", "per layer, the shift variant with fewer rotations")(
        conv_auto
    )
