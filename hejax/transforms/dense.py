"""Dense layers by the diagonal method, from any input layout.

Output value ``j`` sums ``W[j, f]·x_f`` over the input elements ``f``. For an
input ciphertext whose slot ``s`` holds element ``f``, rotating by
``d = s - j`` brings that element to slot ``j``; the products for all ``j``
with the same ``d`` form one plaintext "diagonal". The output is a vector in
slots ``0 … n-1`` of one ciphertext (one level). Cost grows with the number
of distinct diagonals, so this suits the small dense heads of image models,
not large matrices.
"""

from __future__ import annotations

import numpy as np

from hejax import layout as lay
from hejax.errors import UnsupportedModelError
from hejax.program import TensorLayout
from hejax.transforms import register


@register("dense")
def dense(b, node, x: TensorLayout) -> TensorLayout:
    """Dense layer ``W @ x`` with hoisted rotations of each input ciphertext."""
    weight = node.attrs["weight"]
    n, slots = node.shape[0], x.grid.slots
    if n > slots:
        raise UnsupportedModelError(
            f"{node.name}: {n} outputs exceed the {slots} slots of one ciphertext"
        )
    x = b.ensure_depth(x, 1)
    h, w, c = x.placement.shape
    where = lay.gather_map(x.grid, x.placement, x.states)  # pixel -> (tile, slot)
    acc = None
    j = np.arange(n)
    for ch in range(c):
        for t in range(x.grid.tiles):
            pix = np.flatnonzero(where[:, 0] == t)
            if pix.size == 0:
                continue
            src = where[pix, 1]
            flat = pix * c + ch
            d = (src[:, None] - j[None, :]) % slots
            diags: dict[int, np.ndarray] = {}
            for step in np.unique(d):
                rows, cols = np.nonzero(d == step)
                vec = np.zeros(slots)
                vec[cols] = weight[cols, flat[rows]]
                if np.any(vec):
                    diags[int(step)] = vec
            rots = b.rotate(int(x.regs[ch, t]), list(diags))
            for step, vec in diags.items():
                acc = b.add(acc, b.mul_plain(rots[step], vec))
    grid = lay.Grid(slots, slots, 1, ((0, 0),))
    placement = lay.Placement((1, n, 1), (0, 0), (1, 1))
    states = np.full((1, slots), lay.ZERO, dtype=np.int64)
    states[0, :n] = np.arange(n)
    reg = b.rescale(acc)
    return TensorLayout(node.shape, placement, grid, states, np.array([[reg]]))
