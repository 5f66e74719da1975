"""The HE program: a graph of backend primitives over ciphertext registers.

A :class:`Program` is a list of :class:`Instr` in SSA form: each reads
registers, writes new ones, and names the IR layer it belongs to. It records
the level and scale degree of every register, the plaintexts it multiplies
or adds (encoded lazily, once per server context), the rotation steps whose
keys the client must generate, and the layouts of its input, its output and
every ReLU boundary. ReLU boundaries are where the server hands ciphertexts
to the client; :func:`execute` refuses to cross them (the scheduler does).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import types
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from hejax.backend import Capabilities, Ciphertext, Context, Plaintext
from hejax.errors import ProgramError
from hejax.layout import Grid, Placement, gather_map

__all__ = ["Instr", "Program", "TensorLayout"]


_NO_ATTRS: Mapping[str, Any] = types.MappingProxyType({})


@dataclasses.dataclass(frozen=True, eq=False, slots=True)
class Instr:
    """One primitive: ``out = op(args, **attrs)``, part of IR node `layer`.

    Programs hold millions of these (a 512×512 slice), so the class has
    slots and instructions without attributes share one empty mapping.
    """

    op: str
    out: tuple[int, ...]
    args: tuple[int, ...]
    attrs: Mapping[str, Any]
    layer: str

    def __post_init__(self):
        attrs = types.MappingProxyType(dict(self.attrs)) if self.attrs else _NO_ATTRS
        object.__setattr__(self, "attrs", attrs)


@dataclasses.dataclass(frozen=True, eq=False)
class TensorLayout:
    """A tensor in ciphertexts: placement, slot states and registers.

    Attributes:
        shape: IR shape of the tensor (``(H, W, C)`` or ``(n,)``).
        placement: where its pixels are in base coordinates.
        grid: the slot grid and tiles.
        states: ``(tiles, slots)`` slot states (see :mod:`hejax.layout`).
        regs: ``(C, tiles)`` register ids.
    """

    shape: tuple[int, ...]
    placement: Placement
    grid: Grid
    states: np.ndarray
    regs: np.ndarray

    @property
    def count(self) -> int:
        """Number of ciphertexts."""
        return int(self.regs.size)

    def encode(self, x: np.ndarray) -> list[np.ndarray]:
        """Slot vectors of a tensor of this layout, ordered like ``regs.flat``."""
        h, w, c = self.placement.shape
        pix = np.asarray(x, dtype=np.float64).reshape(h * w, c)
        out = []
        for ch in range(c):
            for t in range(self.grid.tiles):
                held = self.states[t] >= 0
                vec = np.zeros(self.grid.slots)
                vec[held] = pix[self.states[t, held], ch]
                out.append(vec)
        return out

    def decode(self, vectors: Sequence[np.ndarray]) -> np.ndarray:
        """Tensor of IR shape from slot vectors ordered like ``regs.flat``."""
        h, w, c = self.placement.shape
        where = gather_map(self.grid, self.placement, self.states)
        tiles = self.grid.tiles
        out = np.empty((h * w, c))
        for ch in range(c):
            block = np.stack([vectors[ch * tiles + t] for t in range(tiles)])
            out[:, ch] = block[where[:, 0], where[:, 1]]
        return out.reshape(self.shape)

    def unused_mask(self) -> np.ndarray:
        """``(tiles, slots)`` True where a slot carries no valid pixel."""
        return self.states < 0


@dataclasses.dataclass(frozen=True, eq=False)
class PlainSpec:
    """A plaintext the program uses: values, level and scale degree."""

    values: np.ndarray
    level: int
    degree: int


@dataclasses.dataclass(frozen=True, eq=False)
class Boundary:
    """A boundary: what the client decrypts and what it re-encrypts.

    `kind` is ``"relu"`` (the client applies ReLU) or ``"refresh"`` (the client
    only re-encrypts, to restore depth). A `final` ReLU ends the model: the
    client applies it to the decrypted output and nothing is sent back.
    """

    layer: str
    kind: str
    before: TensorLayout
    after: TensorLayout
    final: bool = False


#: Instructions where the server hands ciphertexts to the client.
BOUNDARY_OPS = ("relu", "refresh")

# Hoisted rotations are counted as one precompute plus one cheap rotation each.
OP_KINDS = (
    "rotate",
    "hoist",
    "rotate_hoisted",
    "mul_plain",
    "mul_scalar",
    "add",
    "sub",
    "add_plain",
    "rescale",
    "drop_level",
)


@dataclasses.dataclass(frozen=True, eq=False)
class Program:
    """A compiled HE program. Build it with :func:`hejax.compile`.

    Attributes:
        graph: the IR the program was lowered from.
        instrs: the primitives, in execution order.
        plaintexts: plaintext table (index = id used by instructions).
        levels: ``reg -> (level, degree)``.
        input: layout of the client's input ciphertexts.
        output: layout of the ciphertexts returned to the client.
        boundaries: ReLU boundaries in order.
        backend: name of the backend it was compiled for.
        capabilities: that backend's capabilities at compile time.
        fingerprint: backend parameter fingerprint.
        transform: transform name used for convolutions.
    """

    graph: Any
    instrs: tuple[Instr, ...]
    plaintexts: tuple[PlainSpec, ...]
    levels: Mapping[int, tuple[int, int]]
    input: TensorLayout
    output: TensorLayout
    boundaries: tuple[Boundary, ...]
    backend: str
    capabilities: Capabilities
    fingerprint: str
    transform: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    # -- what the client needs ------------------------------------------------

    @functools.cached_property
    def rotations(self) -> tuple[int, ...]:
        """Rotation steps whose keys the client must generate."""
        steps = set()
        for ins in self.instrs:
            if ins.op == "rotate":
                steps.update(ins.attrs["steps"])
        return tuple(sorted(steps))

    @functools.cached_property
    def last_use(self) -> dict[int, int]:
        """For each register, the last instruction that reads it.

        Registers of the output never die; the runner frees the others after
        their last use, so memory follows the live tensors, not the program.
        """
        last: dict[int, int] = {}
        for i, ins in enumerate(self.instrs):
            for reg in ins.args:
                last[reg] = i
        for reg in self.output.regs.flat:
            last[int(reg)] = len(self.instrs)
        return last

    @property
    def depth(self) -> int:
        """Largest level any register reaches."""
        return max((lvl for lvl, _ in self.levels.values()), default=0)

    @functools.cached_property
    def digest(self) -> str:
        """A short hash of the program's structure and constants."""
        h = hashlib.sha256()
        h.update(f"{self.backend}:{self.fingerprint}:{self.transform}".encode())
        for ins in self.instrs:
            h.update(
                repr((ins.op, ins.out, ins.args, sorted(ins.attrs.items()))).encode()
            )
        for pt in self.plaintexts:
            h.update(pt.values.tobytes() + bytes([pt.level, pt.degree]))
        return h.hexdigest()[:16]

    # -- inspection -----------------------------------------------------------

    def op_counts(self, layer: str | None = None) -> dict[str, int]:
        """Primitive counts by kind (all layers, or one)."""
        hoisting = self.capabilities.hoisting
        counts: collections.Counter[str] = collections.Counter()
        for ins in self.instrs:
            if layer is None or ins.layer == layer:
                for kind, n in _kinds(ins, hoisting):
                    counts[kind] += n
        return dict(counts)

    def layers(self) -> list[dict[str, Any]]:
        """Per IR layer: op counts, rotations, plaintexts, levels, cts, bytes."""
        rows: dict[str, dict[str, Any]] = {}
        produced: dict[str, list[int]] = collections.defaultdict(list)
        pts: dict[str, set[int]] = collections.defaultdict(set)
        for ins in self.instrs:
            produced[ins.layer].extend(ins.out)
            if "pt" in ins.attrs:
                pts[ins.layer].add(ins.attrs["pt"])
        bytes_per = _ciphertext_bytes(self.capabilities)
        for node in self.graph.nodes:
            regs = produced.get(node.name, [])
            counts = self.op_counts(node.name)
            levels = sorted({self.levels[r][0] for r in regs}) or [0]
            final = self._final_regs(node.name)
            rows[node.name] = {
                "layer": node.name,
                "op": node.op,
                "ops": counts,
                "rotations": sum(
                    counts.get(k, 0) for k in ("rotate", "rotate_hoisted")
                ),
                "plaintexts": len(pts.get(node.name, ())),
                "levels": (levels[0], levels[-1]),
                "ciphertexts": len(final),
                "bytes": sum(bytes_per(self.levels[r][0]) for r in final),
            }
        return list(rows.values())

    def _final_regs(self, layer: str) -> list[int]:
        final = self.layer_outputs.get(layer)
        return [] if final is None else [int(r) for r in final.flat]

    @property
    def layer_outputs(self) -> dict[str, np.ndarray]:
        """Registers holding each layer's output tensor."""
        return self.options.get("layer_outputs", {})

    def summary(self) -> str:
        """A readable table of the program, layer by layer."""
        head = (
            f"Program for {self.backend} ({self.capabilities.scheme}, "
            f"{self.capabilities.slots} slots, transform {self.transform!r}): "
            f"{len(self.instrs)} instructions, depth {self.depth}/"
            f"{self.capabilities.max_depth}, {len(self.rotations)} rotation keys, "
            f"{len(self.boundaries)} ReLU boundaries, grid "
            f"{self.input.grid.rows}x{self.input.grid.pitch} x "
            f"{self.input.grid.tiles} tile(s)"
        )
        cols = ["layer", "op", "rotations", "mul", "add", "rescale", "pts", "levels"]
        cols += ["cts", "MB"]
        rows = [cols]
        for row in self.layers():
            ops = row["ops"]
            cells = [
                row["layer"],
                row["op"],
                row["rotations"],
                ops.get("mul_plain", 0) + ops.get("mul_scalar", 0),
                ops.get("add", 0) + ops.get("sub", 0) + ops.get("add_plain", 0),
                ops.get("rescale", 0),
                row["plaintexts"],
                "{}-{}".format(*row["levels"]),
                row["ciphertexts"],
                f"{row['bytes'] / 2**20:.1f}",
            ]
            rows.append([str(c) for c in cells])
        widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
        lines = [head]
        for r in rows:
            left = [f"{c:<{w}}" for c, w in zip(r[:2], widths[:2], strict=True)]
            right = [f"{c:>{w}}" for c, w in zip(r[2:], widths[2:], strict=True)]
            lines.append("  ".join(left + right).rstrip())
        total = self.op_counts()
        lines.append(
            "total: " + ", ".join(f"{k} {v}" for k, v in sorted(total.items()))
        )
        lines.append(self._rounds_line())
        return "\n".join(lines)

    def _rounds_line(self) -> str:
        from hejax.schedule import schedule  # the scheduler builds on programs

        parts = []
        for r in schedule(self):
            at = (
                "" if r.boundary is None else f" at {self.boundaries[r.boundary].layer}"
            )
            parts.append(f"{r.index}: {r.ends}{at} ({r.levels} levels)")
        return f"rounds ({len(parts)}): " + "; ".join(parts)

    def cost(self, profile: Mapping[str, Any]) -> float:
        """Predicted server time in seconds from a primitive cost table.

        Args:
            profile: seconds per primitive, keyed by op kind (see `OP_KINDS`);
                a value may be one number, or a pair ``(at level 0, at the
                last level)`` interpolated linearly by level. Such a table is
                written by ``bench/primitives.py``.

        Raises:
            ProgramError: if the profile lacks a primitive the program uses.
        """
        depth = max(self.capabilities.max_depth, 1)
        total = 0.0
        hoisting = self.capabilities.hoisting
        for ins in self.instrs:
            level = self.levels[ins.args[0]][0] if ins.args else 0
            for kind, n in _kinds(ins, hoisting):
                if kind not in profile:
                    raise ProgramError(f"cost profile has no entry for {kind!r}")
                total += n * _interp(profile[kind], level / depth)
        return total


def _kinds(ins: Instr, hoisting: bool) -> list[tuple[str, int]]:
    if ins.op in ("mask", "unmask"):  # a product and a rescale (masks on)
        return [("mul_plain", 1), ("rescale", 1)]
    if ins.op == "rotate":
        n = len(ins.attrs["steps"])
        if hoisting and n > 1:
            return [("hoist", 1), ("rotate_hoisted", n)]
        return [("rotate", n)]
    return [(ins.op, 1)] if ins.op in OP_KINDS else []


def _interp(entry: Any, frac: float) -> float:
    if isinstance(entry, int | float):
        return float(entry)
    first, last = entry
    return float(first) + (float(last) - float(first)) * frac


def _ciphertext_bytes(caps: Capabilities):
    def size(level: int) -> int:
        if not caps.ring_dim:
            return 8 * caps.slots
        towers = max(caps.max_depth + 1 - level, 1)
        return 2 * caps.ring_dim * towers * 8

    return size


# -- execution ------------------------------------------------------------


class Runner:
    """Executes a program's instructions on a context, caching plaintexts."""

    def __init__(self, program: Program, ctx: Context):
        if ctx.backend.fingerprint != program.fingerprint:
            raise ProgramError(
                f"program was compiled for {program.backend} parameters "
                f"{program.fingerprint}, the context has {ctx.backend.fingerprint}; "
                "compile with the same backend instance or preset"
            )
        self.program = program
        self.ctx = ctx
        self._plain: dict[int, Plaintext] = {}

    def plaintext(self, index: int, mask: np.ndarray | None = None) -> Plaintext:
        """Encoded plaintext `index` (optionally multiplied by `mask`)."""
        if mask is not None:
            spec = self.program.plaintexts[index]
            return self.ctx.encode(
                spec.values * mask, level=spec.level, degree=spec.degree
            )
        if index not in self._plain:
            spec = self.program.plaintexts[index]
            self._plain[index] = self.ctx.encode(
                spec.values, level=spec.level, degree=spec.degree
            )
        return self._plain[index]

    def run(
        self,
        env: dict[int, Ciphertext],
        start: int = 0,
        stop: int | None = None,
        overrides: Mapping[int, Any] | None = None,
    ) -> int:
        """Run instructions ``[start, stop)`` on `env`; return where it stopped.

        Execution stops before a boundary instruction (``relu`` or
        ``refresh``, where the client must act) and returns its index.
        `overrides` maps instruction indices to callables that replace their
        evaluation (used by the scheduler to fold masks).
        """
        instrs = self.program.instrs
        stop = len(instrs) if stop is None else stop
        overrides = overrides or {}
        for i in range(start, stop):
            ins = instrs[i]
            if ins.op in BOUNDARY_OPS:
                return i
            if i in overrides:
                outs = overrides[i](self, env, ins)
            else:
                outs = _EXEC[ins.op](self, env, ins)
            for reg, ct in zip(ins.out, outs, strict=True):
                env[reg] = ct
            self.release(env, i)
        return stop

    def release(self, env: dict[int, Ciphertext], i: int) -> None:
        """Drop the registers whose last use is instruction `i`."""
        last = self.program.last_use
        ins = self.program.instrs[i]
        for reg in (*ins.args, *ins.out):
            if last.get(reg, -1) <= i:
                env.pop(reg, None)


def _args(env, ins):
    return [env[a] for a in ins.args]


def _exec_rotate(r: Runner, env, ins):
    return r.ctx.rotate_many(env[ins.args[0]], list(ins.attrs["steps"]))


_EXEC = {
    "rotate": _exec_rotate,
    "mul_scalar": lambda r, env, ins: [
        r.ctx.mul_scalar(*_args(env, ins), ins.attrs["value"])
    ],
    "mul_plain": lambda r, env, ins: [
        r.ctx.mul_plain(*_args(env, ins), r.plaintext(ins.attrs["pt"]))
    ],
    "add_plain": lambda r, env, ins: [
        r.ctx.add_plain(*_args(env, ins), r.plaintext(ins.attrs["pt"]))
    ],
    "add": lambda r, env, ins: [r.ctx.add(*_args(env, ins))],
    "sub": lambda r, env, ins: [r.ctx.sub(*_args(env, ins))],
    "rescale": lambda r, env, ins: [r.ctx.rescale(*_args(env, ins))],
    "drop_level": lambda r, env, ins: [
        r.ctx.drop_level(*_args(env, ins), ins.attrs["level"])
    ],
    # Without masks a mask is the identity: only the level moves on.
    "mask": lambda r, env, ins: [
        r.ctx.drop_level(*_args(env, ins), r.program.levels[ins.out[0]][0])
    ],
    "unmask": lambda r, env, ins: [
        r.ctx.drop_level(*_args(env, ins), r.program.levels[ins.out[0]][0])
    ],
}


def execute(program: Program, x: Any, *, context: Context | None = None) -> np.ndarray:
    """Run a program without ReLU locally: keygen, encrypt, run, decrypt.

    For research and tests in one process; :func:`hejax.run` drives a real
    client and server. With no `context`, keys are generated for exactly the
    program's rotation steps.

    Returns:
        The output, shaped like the model's (with the batch axis of 1).

    Raises:
        ProgramError: if the program has ReLU boundaries (they need the
            interaction scheduler) or was compiled for another backend.
        InvalidInputError: if `x` has the wrong shape or non-finite values.
    """
    relus = [b for b in program.boundaries if b.kind == "relu"]
    if relus:
        raise ProgramError(
            f"this program has {len(relus)} ReLU boundaries; a ReLU needs the "
            "client, so run it through hejax.run(Client, Server) rather than "
            "hejax.execute"
        )
    if context is None:
        context = program.options["backend"].keygen(rotations=program.rotations)
    runner, pc = Runner(program, context), 0
    vectors = program.input.encode(check_input(program.graph.input.shape, x))
    env = {
        reg: context.encrypt(vec)
        for reg, vec in zip(program.input.regs.flat, vectors, strict=True)
    }
    while pc < len(program.instrs):
        pc = runner.run(env, pc)
        if pc < len(program.instrs):  # a refresh boundary: re-encrypt locally
            ins = program.instrs[pc]
            for src, dst in zip(ins.args, ins.out, strict=True):
                env[dst] = context.encrypt(context.decrypt(env[src]))
            runner.release(env, pc)
            pc += 1
    out = [context.decrypt(env[r]) for r in program.output.regs.flat]
    return program.output.decode(out)[None]


def check_input(want: tuple[int, ...], x: Any) -> np.ndarray:
    """Validate a model input against the program's input shape (batch dropped)."""
    from hejax.errors import InvalidInputError

    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise InvalidInputError(f"input must be real numbers, got dtype {arr.dtype}")
    if arr.shape not in (want, (1, *want)):
        raise InvalidInputError(
            f"input has shape {arr.shape}; the program was compiled for {(1, *want)}"
        )
    arr = arr.astype(np.float64).reshape(want)
    if not np.all(np.isfinite(arr)):
        raise InvalidInputError("input holds NaN or infinite values")
    return arr
