"""The interaction scheduler: rounds, masks, and folding masks away.

:func:`schedule` splits a :class:`~hejax.program.Program` into rounds. The
compiler already ends a round at every ReLU (the nonlinear framework) and
inserts refresh rounds only where the next layer would run out of depth (the
linear framework; a chain of layers needs no fewer, since a refresh restores
the full depth). The ``round_depth`` compile option caps the levels per round.

Masks (drawn fresh for every request by :func:`draw_masks`):

* ReLU rounds: the server sends ``Enc(P·D·y)`` — ``D`` a positive mask per
  slot (``"element"``) or per channel (``"channel"``), log-uniform on
  ``[2^-3, 2^3]``, and ``P`` a random permutation of the channels (the same
  for every tile). ``ReLU(D·y) = D·ReLU(y)``, so the client's reply carries
  ``D·ReLU(y)``.
* Refresh rounds: an additive mask ``r`` uniform on ``[-R, R]`` with ``R =
  min(max_abs / 8, 2^10)``, removed by one subtraction after the client
  re-encrypts. CKKS bounds the magnitudes a slot may hold, so ``R`` cannot be
  made large against the values it hides: this mask blurs values, it does not
  hide them statistically.

Unmasking costs no HE operation in slot encodings: :func:`fold` tracks, per
request, the scale every register carries (the product of masks it holds) and
rewrites the next products so they divide it out — a scalar product by ``w``
becomes a plaintext product by ``w / S`` — and bias plaintexts are scaled to
match. Where a masked value meets a sum (a residual shortcut), the other
operand's products are aimed at the same scale, so the sum needs no extra
operation either; the next ReLU mask absorbs whatever scale remains.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from hejax import layout as lay
from hejax.errors import InvalidInputError, ProgramError
from hejax.program import Boundary, Program

__all__ = ["MASK_MODES", "MaskPlan", "Round", "draw_masks", "fold", "schedule"]

MASK_MODES = ("element", "channel", "off")
#: Multiplicative masks are log-uniform on [2^-MASK_BITS, 2^MASK_BITS].
MASK_BITS = 3.0
#: Additive masks are uniform on [-R, R], R = min(max_abs / 8, REFRESH_RANGE).
REFRESH_RANGE = 2.0**10


@dataclasses.dataclass(frozen=True)
class Round:
    """One round: server instructions ``[start, stop)``, then a hand-over.

    Attributes:
        index: round number, from 0.
        start: first instruction.
        stop: the boundary instruction that ends the round (or the end).
        ends: ``"relu"``, ``"refresh"`` or ``"output"``.
        boundary: index into ``program.boundaries`` (None for the output).
        levels: levels the round consumes.
    """

    index: int
    start: int
    stop: int
    ends: str
    boundary: int | None
    levels: int


def schedule(program: Program) -> tuple[Round, ...]:
    """The rounds of `program`, in order.

    A ``coef`` program has one round per convolution; its rounds are
    :class:`~hejax.coefprotocol.CoefRound` records (index, what ends the
    round, ciphertexts returned).
    """
    if getattr(program, "transform", None) == "coef":
        from hejax.coefprotocol import rounds_of

        return rounds_of(program)
    rounds, start, used = [], 0, 0
    for i, ins in enumerate(program.instrs):
        used = max(used, *(program.levels[r][0] for r in ins.out)) if ins.out else used
        if ins.op in ("relu", "refresh"):
            final = ins.attrs.get("final", False)
            ends = "output" if final else ins.op
            boundary = None if final else ins.attrs["boundary"]
            rounds.append(Round(len(rounds), start, i, ends, boundary, used))
            start, used = i + 1, 0
    if start < len(program.instrs) or not rounds or rounds[-1].ends != "output":
        rounds.append(
            Round(len(rounds), start, len(program.instrs), "output", None, used)
        )
    return tuple(rounds)


# -- masks ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class MaskPlan:
    """The masks of one request.

    Attributes:
        mode: ``"element"``, ``"channel"`` or ``"off"``.
        mult: boundary index -> ``(C, tiles, slots)`` positive masks.
        perm: boundary index -> channel permutation (position -> channel).
        add: boundary index -> ``(C, tiles, slots)`` additive masks.
    """

    mode: str
    mult: Mapping[int, np.ndarray]
    perm: Mapping[int, np.ndarray]
    add: Mapping[int, np.ndarray]


def draw_masks(
    program: Program,
    rng: np.random.Generator,
    mode: str = "element",
    permute: bool = True,
) -> MaskPlan:
    """Draw fresh masks for every boundary of `program`.

    Args:
        program: the compiled program.
        rng: the source of randomness (use a fresh, unpredictable one per
            request).
        mode: ``"element"`` (a mask per slot), ``"channel"`` (one per
            channel; a ReLU network is invariant to per-channel scaling, so
            this hides less) or ``"off"`` (no masks, for research only; a
            warning says so).
        permute: also permute channels at ReLU rounds.

    Raises:
        InvalidInputError: for an unknown mode.
    """
    if mode not in MASK_MODES:
        raise InvalidInputError(f"unknown mask mode {mode!r}; modes: {MASK_MODES}")
    if mode == "off":
        warnings.warn(
            "masks are off: the client sees the server's intermediate values "
            "in the clear; use this for research only",
            stacklevel=3,
        )
    mult, perm, add = {}, {}, {}
    refresh_range = min(program.capabilities.max_abs / 8, REFRESH_RANGE)
    for k, b in enumerate(program.boundaries):
        c, tiles = b.before.regs.shape
        shape = (c, tiles, program.capabilities.slots)
        if b.kind == "refresh":
            add[k] = (
                rng.uniform(-refresh_range, refresh_range, shape)
                if mode != "off"
                else np.zeros(shape)
            )
        elif not b.final:
            mult[k] = _multiplicative(rng, mode, shape)
            perm[k] = rng.permutation(c) if permute and mode != "off" else np.arange(c)
    return MaskPlan(mode, mult, perm, add)


def _multiplicative(rng, mode: str, shape) -> np.ndarray:
    if mode == "off":
        return np.ones(shape)
    size = shape if mode == "element" else (shape[0], 1, 1)
    logs = rng.uniform(-MASK_BITS, MASK_BITS, size)
    return np.broadcast_to(2.0**logs, shape).copy()


def relu_output_scale(b: Boundary, mask: np.ndarray) -> np.ndarray:
    """Scale each slot of the client's re-encrypted ReLU output carries."""
    before, after = b.before, b.after
    where = lay.gather_map(before.grid, before.placement, before.states)
    out = mask.copy()  # slots without a pixel hold zero: any scale fits them
    for t in range(after.grid.tiles):
        held = np.flatnonzero(after.states[t] >= 0)
        src = where[after.states[t, held]]
        out[:, t, held] = mask[:, src[:, 0], src[:, 1]]
    return out


# -- folding ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Folding:
    """Per-request rewrites of instructions that fold masks away.

    Attributes:
        overrides: instruction index -> replacement (for ``Runner.run``).
        encodings: plaintexts this request must encode afresh.
    """

    overrides: Mapping[int, Any]
    encodings: int


def _positions(b: Boundary) -> dict[int, tuple[int, int]]:
    return {int(r): idx for idx, r in np.ndenumerate(b.before.regs)}


def fold(program: Program, plan: MaskPlan) -> Folding:
    """Rewrite products so that every register's mask scale is divided out.

    Raises:
        ProgramError: if two differently masked values are added directly
            (no product exists to align them).
    """
    fixed = _fixed_scales(program, plan)
    desired = _desired_scales(program, fixed)
    overrides: dict[int, Any] = {}
    scale: dict[int, np.ndarray | None] = dict.fromkeys(
        (int(r) for r in program.input.regs.flat), None
    )
    scale.update(fixed)
    mask_of = {}
    for k, b in enumerate(program.boundaries):
        if k in plan.mult and plan.mode != "off":
            for reg, (c, t) in _positions(b).items():
                mask_of[reg] = plan.mult[k][c, t]
    for i, ins in enumerate(program.instrs):
        rule = _FOLD.get(ins.op)
        if rule is not None:
            rule(program, ins, i, scale, desired, overrides, mask_of)
    encodings = sum(1 for o in overrides.values() if getattr(o, "encodes", False))
    return Folding(overrides, encodings)


def _ones_like(program: Program) -> np.ndarray:
    return np.ones(program.capabilities.slots)


def _same(a, b) -> bool:
    """Whether two scales (None meaning all ones) are equal."""
    if a is None and b is None:
        return True
    return bool(
        np.allclose(1.0 if a is None else a, 1.0 if b is None else b, rtol=1e-12)
    )


def _fixed_scales(program: Program, plan: MaskPlan) -> dict[int, np.ndarray | None]:
    """Scales decided by masks alone: ReLU outputs and what flows from them."""
    fixed: dict[int, np.ndarray | None] = dict.fromkeys(
        (int(r) for r in program.input.regs.flat), None
    )
    for k, b in enumerate(program.boundaries):
        if k in plan.mult:
            s_after = relu_output_scale(b, plan.mult[k])
            for (c, t), reg in np.ndenumerate(b.after.regs):
                fixed[int(reg)] = None if plan.mode == "off" else s_after[c, t]
            for (c, t), reg in np.ndenumerate(b.before.regs):
                fixed[int(reg)] = None if plan.mode == "off" else plan.mult[k][c, t]
    for ins in program.instrs:
        if ins.op == "rotate" and ins.args[0] in fixed:
            src = fixed[ins.args[0]]
            for reg, step in zip(ins.out, ins.attrs["steps"], strict=True):
                fixed[reg] = None if src is None else np.roll(src, -step)
        elif ins.op == "add_plain" and ins.args[0] in fixed:
            fixed[ins.out[0]] = fixed[ins.args[0]]
        elif ins.op in ("add", "sub"):
            known = [fixed[a] for a in ins.args if a in fixed]
            if known:
                fixed[ins.out[0]] = known[0]
        elif ins.op == "refresh":
            for src, dst in zip(ins.args, ins.out, strict=True):
                fixed[dst] = fixed.get(src)
        elif ins.op == "unmask":
            fixed[ins.out[0]] = None
    return fixed


def _desired_scales(program: Program, fixed) -> dict[int, np.ndarray | None]:
    """Backward pass: the scale each product's result should carry."""
    desired: dict[int, np.ndarray | None] = {}
    for reg in program.output.regs.flat:
        desired[int(reg)] = None
    for ins in reversed(program.instrs):
        if ins.op in ("add", "sub"):
            out = ins.out[0]
            target = fixed[out] if out in fixed else desired.get(out)
            for a in ins.args:
                if a not in fixed:
                    desired[a] = target
        elif ins.op in ("add_plain", "rescale") and ins.args[0] not in fixed:
            desired[ins.args[0]] = desired.get(ins.out[0])
        elif ins.op == "rotate" and ins.args[0] not in fixed:
            for reg, step in zip(ins.out, ins.attrs["steps"], strict=True):
                if reg in desired:
                    d = desired[reg]
                    desired[ins.args[0]] = None if d is None else np.roll(d, step)
        elif ins.op in ("refresh", "relu"):
            for a in ins.args:
                if a not in fixed:
                    desired[a] = None
    return desired


def _ratio(target, src) -> np.ndarray | None:
    if target is None and src is None:
        return None
    t = 1.0 if target is None else target
    s = 1.0 if src is None else src
    return np.broadcast_to(
        np.asarray(t) / np.asarray(s), np.shape(t if target is not None else s)
    )


def _fold_product(program, ins, i, scale, desired, overrides, mask_of):
    src, out = ins.args[0], ins.out[0]
    target = desired.get(out)
    ratio = _ratio(target, scale[src])
    scale[out] = target
    if ratio is None:
        return
    level = program.levels[src][0]
    if ins.op == "mul_scalar" and np.ptp(ratio) == 0:
        overrides[i] = _Scalar(ins.attrs["value"] * float(ratio.flat[0]))
        return
    if ins.op == "mul_scalar":
        values = ins.attrs["value"] * ratio
    else:
        values = program.plaintexts[ins.attrs["pt"]].values * ratio
    overrides[i] = _Product(np.array(values), level)


def _fold_add_plain(program, ins, i, scale, desired, overrides, mask_of):
    src = ins.args[0]
    scale[ins.out[0]] = scale[src]
    if scale[src] is None:
        return
    spec = program.plaintexts[ins.attrs["pt"]]
    overrides[i] = _AddPlain(spec.values * scale[src], spec.level, spec.degree)


def _fold_add(program, ins, i, scale, desired, overrides, mask_of):
    a, b = (scale[r] for r in ins.args)
    if not _same(a, b):
        raise ProgramError(
            f"{ins.layer}: two differently masked values are added with no "
            "product between them to align their masks; this model needs "
            "masks='off' or a layer between the ReLU outputs"
        )
    scale[ins.out[0]] = a if a is not None else b


def _fold_rotate(program, ins, i, scale, desired, overrides, mask_of):
    src = scale[ins.args[0]]
    for reg, step in zip(ins.out, ins.attrs["steps"], strict=True):
        scale[reg] = None if src is None else np.roll(src, -step)


def _fold_rescale(program, ins, i, scale, desired, overrides, mask_of):
    scale[ins.out[0]] = scale[ins.args[0]]


def _fold_mask(program, ins, i, scale, desired, overrides, mask_of):
    src, out = ins.args[0], ins.out[0]
    ratio = _ratio(mask_of.get(out), scale[src])
    scale[out] = mask_of.get(out)
    if ratio is not None and np.ptp(ratio) == 0:
        overrides[i] = _Mask(float(ratio.flat[0]), program.levels[src][0])
    elif ratio is not None:
        overrides[i] = _Mask(np.array(ratio), program.levels[src][0])


def _fold_unmask(program, ins, i, scale, desired, overrides, mask_of):
    src, out = ins.args[0], ins.out[0]
    ratio = _ratio(None, scale[src])
    scale[out] = None
    if ratio is not None and np.ptp(ratio) == 0:
        overrides[i] = _Mask(float(ratio.flat[0]), program.levels[src][0])
    elif ratio is not None:
        overrides[i] = _Mask(np.array(ratio), program.levels[src][0])


def _fold_boundary(program, ins, i, scale, desired, overrides, mask_of):
    for src, dst in zip(ins.args, ins.out, strict=True):
        scale.setdefault(dst, scale.get(src))


_FOLD = {
    "mul_scalar": _fold_product,
    "mul_plain": _fold_product,
    "add_plain": _fold_add_plain,
    "add": _fold_add,
    "sub": _fold_add,
    "rotate": _fold_rotate,
    "rescale": _fold_rescale,
    "mask": _fold_mask,
    "unmask": _fold_unmask,
    "refresh": _fold_boundary,
    "relu": _fold_boundary,
}


class _Product:
    """A product whose factor absorbs a mask: ``ct · (w · target / scale)``."""

    encodes = True

    def __init__(self, values: np.ndarray, level: int):
        self.values, self.level = values, level

    def __call__(self, runner, env, ins):
        ctx = runner.ctx
        pt = ctx.encode(self.values, level=self.level)
        return [ctx.mul_plain(env[ins.args[0]], pt)]


class _Scalar:
    """A scalar product whose factor absorbs a per-channel mask."""

    encodes = False

    def __init__(self, value: float):
        self.value = value

    def __call__(self, runner, env, ins):
        return [runner.ctx.mul_scalar(env[ins.args[0]], self.value)]


class _AddPlain:
    """A bias scaled to the mask its ciphertext carries."""

    encodes = True

    def __init__(self, values: np.ndarray, level: int, degree: int):
        self.values, self.level, self.degree = values, level, degree

    def __call__(self, runner, env, ins):
        ctx = runner.ctx
        pt = ctx.encode(self.values, level=self.level, degree=self.degree)
        return [ctx.add_plain(env[ins.args[0]], pt)]


class _Mask:
    """The masking product before a ReLU round: ``ct · D / scale``, rescaled."""

    def __init__(self, values: np.ndarray | float, level: int):
        self.values, self.level = values, level
        self.encodes = not isinstance(values, float)

    def __call__(self, runner, env, ins):
        ctx, ct = runner.ctx, env[ins.args[0]]
        if isinstance(self.values, float):
            return [ctx.rescale(ctx.mul_scalar(ct, self.values))]
        pt = ctx.encode(self.values, level=self.level)
        return [ctx.rescale(ctx.mul_plain(ct, pt))]
