"""Lowering: from an IR graph to a :class:`~hejax.program.Program`.

:func:`lower` plans a slot grid for the image, then walks the graph and
calls, for each node, the rule that `hejax.transforms` registered for its op
under the chosen transform. Rules emit primitives through a
:class:`Builder`, which tracks levels and scale degrees, deduplicates
plaintexts, and inserts a *refresh* boundary (the client decrypts and
re-encrypts, behind an additive mask) where the next layer would run out of
depth. After lowering, the output's slot states must hold every output pixel;
if the first grid does not allow it, the grid is re-planned with tiles and
larger halos.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from hejax import layout as lay
from hejax.backend import Capabilities
from hejax.errors import DepthExhaustedError, InternalError, UnsupportedModelError
from hejax.ir import Graph
from hejax.program import Boundary, Instr, PlainSpec, Program, TensorLayout

log = logging.getLogger(__name__)


class Builder:
    """Emits primitives for the rules and tracks every register's level."""

    def __init__(self, caps: Capabilities, grid: lay.Grid, options: Mapping[str, Any]):
        self.caps = caps
        self.grid = grid
        self.options = options
        self.instrs: list[Instr] = []
        self.levels: dict[int, tuple[int, int]] = {}
        self.plaintexts: list[PlainSpec] = []
        self._pt_index: dict[tuple, int] = {}
        self.boundaries: list[Boundary] = []
        self.layer = "input"
        self._next = 0

    # -- registers and plaintexts ------------------------------------------

    def fresh(self, level: int = 0, degree: int = 1) -> int:
        """A new register at the given level and degree."""
        reg = self._next
        self._next += 1
        self.levels[reg] = (level, degree)
        return reg

    def level(self, reg: int) -> int:
        """Level of a register."""
        return self.levels[reg][0]

    def plaintext(self, values: np.ndarray, level: int, degree: int) -> int:
        """Id of a plaintext with these values (deduplicated)."""
        values = np.ascontiguousarray(values, dtype=np.float64)
        key = (values.tobytes(), level, degree)
        if key not in self._pt_index:
            values.setflags(write=False)
            self._pt_index[key] = len(self.plaintexts)
            self.plaintexts.append(PlainSpec(values, level, degree))
        return self._pt_index[key]

    def _emit(self, op: str, args, outs_meta, **attrs) -> list[int]:
        outs = [self.fresh(*meta) for meta in outs_meta]
        self.instrs.append(Instr(op, tuple(outs), tuple(args), attrs, self.layer))
        return outs

    # -- primitives ---------------------------------------------------------

    def rotate(self, reg: int, steps) -> dict[int, int]:
        """Hoisted rotations of `reg`; maps each step (0 included) to a register."""
        todo = sorted({s % self.grid.slots for s in steps} - {0})
        out = {0: reg}
        if todo:
            regs = self._emit(
                "rotate", [reg], [self.levels[reg]] * len(todo), steps=tuple(todo)
            )
            out.update(zip(todo, regs, strict=True))
        return out

    def _product(self, op: str, reg: int, **attrs) -> int:
        level, degree = self.levels[reg]
        if degree != 1:
            raise InternalError(f"{self.layer}: product of an unrescaled register")
        if level + 1 > self.caps.max_depth:
            raise InternalError(f"{self.layer}: product at the last level")
        if level + 1 > self.depth:
            raise InternalError(f"{self.layer}: product past the round depth")
        return self._emit(op, [reg], [(level, 2)], **attrs)[0]

    def mul_scalar(self, reg: int, value: float) -> int:
        """``reg * value`` (degree 2)."""
        return self._product("mul_scalar", reg, value=float(value))

    def mul_plain(self, reg: int, values: np.ndarray) -> int:
        """``reg * values`` slot-wise (degree 2)."""
        pt = self.plaintext(values, self.level(reg), 1)
        return self._product("mul_plain", reg, pt=pt)

    def add_plain(self, reg: int, values: np.ndarray) -> int:
        """``reg + values`` slot-wise."""
        level, degree = self.levels[reg]
        pt = self.plaintext(values, level, degree)
        return self._emit("add_plain", [reg], [(level, degree)], pt=pt)[0]

    def add(self, a: int | None, b: int, op: str = "add") -> int:
        """``a + b`` (or ``a - b``); `a` may be None to start a sum."""
        if a is None:
            return b
        (la, da), (lb, db) = self.levels[a], self.levels[b]
        if da != db:
            raise InternalError(f"{self.layer}: adding degrees {da} and {db}")
        return self._emit(op, [a, b], [(max(la, lb), da)])[0]

    def rescale(self, reg: int) -> int:
        """Rescale a degree-2 register into the next level."""
        level, degree = self.levels[reg]
        if degree != 2:
            raise InternalError(f"{self.layer}: rescale of a degree-{degree} register")
        return self._emit("rescale", [reg], [(level + 1, 1)])[0]

    # -- tensors ----------------------------------------------------------------

    def max_level(self, x: TensorLayout) -> int:
        """Highest level among a tensor's registers."""
        return max(self.level(r) for r in x.regs.flat)

    def boundary(self, kind: str, x: TensorLayout, states=None) -> TensorLayout:
        """Hand `x` to the client; it returns fresh ciphertexts at level 0."""
        after_states = (
            lay.fresh_states(x.grid, x.placement) if states is None else states
        )
        regs = np.array([self.fresh() for _ in x.regs.flat]).reshape(x.regs.shape)
        after = TensorLayout(x.shape, x.placement, x.grid, after_states, regs)
        self.instrs.append(
            Instr(
                kind,
                tuple(int(r) for r in regs.flat),
                tuple(int(r) for r in x.regs.flat),
                {"boundary": len(self.boundaries)},
                self.layer,
            )
        )
        self.boundaries.append(Boundary(self.layer, kind, x, after))
        return after

    @property
    def depth(self) -> int:
        """Levels one round may use: the backend's, or the `round_depth` option."""
        limit = self.options.get("round_depth")
        return self.caps.max_depth if limit is None else min(limit, self.caps.max_depth)

    def relu_boundary(self, x: TensorLayout) -> TensorLayout:
        """A ReLU boundary, preceded by the server's masking product.

        The ``mask`` instruction multiplies by the round's random positive
        mask (and by the inverse of any scale the value still carries), so it
        needs one level; the scheduler fills in its plaintext per request.
        """
        x = self.ensure_depth(x, 1)
        regs = np.empty_like(x.regs)
        for idx, reg in np.ndenumerate(x.regs):
            level = self.level(int(reg))
            regs[idx] = self._emit("mask", [int(reg)], [(level + 1, 1)])[0]
        masked = TensorLayout(x.shape, x.placement, x.grid, x.states, regs)
        after = self.boundary("relu", masked)
        if self.options.get("unmask", "fold") == "fold":
            return after
        # Explicit unmasking: one product per ciphertext right after the round,
        # so later products keep scalar weights (few plaintext encodings).
        regs = np.empty_like(after.regs)
        for idx, reg in np.ndenumerate(after.regs):
            regs[idx] = self._emit("unmask", [int(reg)], [(1, 1)])[0]
        return TensorLayout(
            after.shape, after.placement, after.grid, after.states, regs
        )

    def ensure_depth(self, x: TensorLayout, need: int = 1) -> TensorLayout:
        """Insert a refresh boundary before `x` if `need` more levels do not fit."""
        if self.max_level(x) + need <= self.depth:
            return x
        if need > self.depth:
            raise DepthExhaustedError(
                f"{self.layer} needs {need} levels, a round has {self.depth}; "
                "pick a preset with more depth"
            )
        if not self.options.get("refresh", True):
            raise DepthExhaustedError(
                f"{self.layer} needs level {self.max_level(x) + need}, past the "
                f"last level ({self.caps.max_depth}) of the backend parameters, "
                "and refresh rounds are off (refresh=False); pick a preset with "
                "more depth or allow refresh rounds"
            )
        # Refreshed slots keep their states: garbage stays garbage (masked).
        return self.boundary("refresh", x, states=x.states)

    def mask(self, x: TensorLayout) -> TensorLayout:
        """Zero every slot that holds no valid pixel (one product, one level)."""
        x = self.ensure_depth(x, 1)
        masks = lay.valid_mask(x.states)
        regs = np.empty_like(x.regs)
        for (c, t), reg in np.ndenumerate(x.regs):
            regs[c, t] = self.rescale(self.mul_plain(int(reg), masks[t]))
        return TensorLayout(x.shape, x.placement, x.grid, lay.cleaned(x.states), regs)

    def input_tensor(self, shape, placement: lay.Placement) -> TensorLayout:
        """The client's input tensor in this builder's grid."""
        states = lay.fresh_states(self.grid, placement)
        regs = np.array(
            [self.fresh() for _ in range(placement.shape[2] * self.grid.tiles)]
        ).reshape(placement.shape[2], self.grid.tiles)
        return TensorLayout(tuple(shape), placement, self.grid, states, regs)


# -- planning -------------------------------------------------------------


def _image_placement(shape) -> lay.Placement:
    if len(shape) == 1:
        return lay.Placement((1, shape[0], 1), (0, 0), (1, 1))
    return lay.Placement(tuple(shape), (0, 0), (1, 1))


def placements(graph: Graph) -> tuple[dict[str, lay.Placement], list[int]]:
    """Base placement of each image tensor, and the tap reach of each conv.

    Reaches are grouped by ReLU segment (index = number of ReLUs before).
    """
    pl = {graph.input.name: _image_placement(graph.input.shape)}
    reach = [0]
    for node in graph.nodes[1:]:
        src = pl.get(node.inputs[0]) if node.inputs else None
        if node.op.startswith("conv"):
            geo = lay.conv_geometry(src, node.attrs, node.shape, node.name)
            pl[node.name] = geo.out
            reach[-1] += geo.reach()
        elif node.op == "relu":
            pl[node.name] = src
            reach.append(0)
        elif node.op in ("dense", "reshape"):
            continue
        elif src is not None:
            pl[node.name] = src
    return pl, reach


def _plan(graph: Graph, caps: Capabilities, attempt: int) -> lay.Grid:
    if len(graph.input.shape) == 1:
        if graph.input.shape[0] > caps.slots:
            raise UnsupportedModelError(
                f"a vector of {graph.input.shape[0]} values exceeds {caps.slots} slots"
            )
        return lay.Grid(caps.slots, caps.slots, 1, ((0, 0),))
    pl, reach = placements(graph)
    extent = lay.union_extent(p for p in pl.values() if len(p.shape) == 3)
    convs = [n for n in graph.nodes if n.op.startswith("conv")]
    margin = max(
        (
            lay.conv_geometry(pl[n.inputs[0]], n.attrs, n.shape, n.name).reach()
            for n in convs
        ),
        default=0,
    )
    halo = max(reach) * 2 ** max(attempt - 1, 0)
    return lay.plan_grid(caps.slots, extent, margin, halo, force_tiles=attempt > 0)


def _drop_final_mask(b: Builder, out: TensorLayout) -> TensorLayout:
    """A ReLU that ends the model runs on the client after decryption.

    Its boundary then carries the unmasked output, so the masking products
    before it, and an explicit unmasking after it, are removed. Returns the
    output layout, which then names the ReLU's registers.
    """
    unmasked = {}
    while b.instrs and b.instrs[-1].op == "unmask":
        ins = b.instrs.pop()
        unmasked[ins.out[0]] = ins.args[0]
    if unmasked:
        regs = np.vectorize(lambda r: unmasked.get(int(r), int(r)))(out.regs)
        out = TensorLayout(out.shape, out.placement, out.grid, out.states, regs)
    if not b.instrs or b.instrs[-1].op != "relu":
        return out
    boundary = b.instrs[-1]
    masks = {ins.out[0]: ins for ins in b.instrs if ins.op == "mask"}
    sources = [masks[r].args[0] for r in boundary.args]
    kept = [
        ins
        for ins in b.instrs[:-1]
        if ins.op != "mask" or ins.out[0] not in set(boundary.args)
    ]
    last = b.boundaries[-1]
    before = TensorLayout(
        last.before.shape,
        last.before.placement,
        last.before.grid,
        last.before.states,
        np.array(sources).reshape(last.before.regs.shape),
    )
    final = Instr(
        "relu",
        boundary.out,
        tuple(sources),
        {**boundary.attrs, "final": True},
        boundary.layer,
    )
    b.instrs[:] = [*kept, final]
    b.boundaries[-1] = Boundary(last.layer, "relu", before, last.after, final=True)
    return out


def lower(
    graph: Graph,
    caps: Capabilities,
    *,
    backend: str,
    fingerprint: str,
    transform: str,
    options: Mapping[str, Any],
) -> Program:
    """Lower `graph` to a Program for a backend with capabilities `caps`."""
    from hejax.transforms import rule_for

    last_error: Exception | None = None
    for attempt in range(4):
        grid = _plan(graph, caps, attempt)
        b = Builder(caps, grid, options)
        x = b.input_tensor(graph.input.shape, _image_placement(graph.input.shape))
        env = {graph.input.name: x}
        outputs: dict[str, np.ndarray] = {graph.input.name: x.regs}
        for node in graph.nodes[1:]:
            b.layer = node.name
            rule = rule_for(node.op, transform)
            env[node.name] = rule(b, node, *(env[s] for s in node.inputs))
            outputs[node.name] = env[node.name].regs
        out = _drop_final_mask(b, env[graph.output])
        try:
            lay.gather_map(out.grid, out.placement, out.states)
        except InternalError as exc:
            log.info("grid %s lost output pixels (%s); re-planning", grid, exc)
            last_error = exc
            continue
        return Program(
            graph=graph,
            instrs=tuple(b.instrs),
            plaintexts=tuple(b.plaintexts),
            levels=dict(b.levels),
            input=x,
            output=out,
            boundaries=tuple(b.boundaries),
            backend=backend,
            capabilities=caps,
            fingerprint=fingerprint,
            transform=transform,
            options={**options, "layer_outputs": outputs},
        )
    raise UnsupportedModelError(
        f"no slot grid of {caps.slots} slots holds every output pixel of this "
        f"model ({last_error}); use parameters with more slots"
    )
