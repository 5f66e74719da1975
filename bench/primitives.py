"""Time every HE primitive of every backend, at level 0 and at the last level.

For each backend (openfhe, tenseal, and the clear simulator where it has the
preset) and each preset (n8192 and n16384; n32768 with ``--all-presets``)
this measures, through hejax's public :class:`~hejax.backend.Context` API,
the median wall time of encode, encrypt, decrypt, add, sub, add_plain,
mul_plain, mul_scalar, rescale, drop_level, rotate and rotate_many, and the
byte sizes of ciphertexts and public bundles. Hoisting is measured as
rotate_many over 1/2, 4, 8 and 16 steps and split by a linear fit into a
fixed part (``hoist``) and a per-rotation part (``rotate_hoisted``).

It writes ``bench/results/primitives.md`` (tables) and
``bench/results/primitives.json``, ``{backend: {preset: {op: [seconds at
level 0, seconds at the last level]}}}``, which ``Program.cost`` takes as
its profile: ``program.cost(profile["openfhe"]["n16384"])``.

Run from the repository root (the default run takes a few minutes)::

    .venv/bin/python bench/primitives.py
    .venv/bin/python bench/primitives.py --backends openfhe --presets n16384
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402

import hejax  # noqa: E402
from hejax.program import OP_KINDS  # noqa: E402

DEFAULT_PRESETS = ("n8192", "n16384")
DEFAULT_BACKENDS = (*_common.HE_BACKENDS, "clear")
FIT_STEPS = (1, 4, 8, 16)
# Ops that need a level left for the rescale after them: measured one level
# above the last and extrapolated to it (cost is linear in the primes left).
PRODUCT_OPS = ("mul_plain", "mul_scalar", "rescale", "drop_level")
TIMED_OPS = (
    "encode",
    "encrypt",
    "decrypt",
    "add",
    "sub",
    "add_plain",
    "mul_plain",
    "mul_scalar",
    "rescale",
    "drop_level",
    "rotate",
)
SWEEP_OPS = ("rotate", "mul_scalar", "rescale")


class Bench:
    """Timings and sizes of one backend at one preset."""

    def __init__(self, backend, repeats: int, bar: tqdm):
        self.be = backend
        self.depth = backend.capabilities.max_depth
        self.repeats = repeats
        self.bar = bar
        self.rng = np.random.default_rng(0)
        slots = backend.capabilities.slots
        self.steps = list(range(1, max(FIT_STEPS) + 1))
        self.ctx = backend.keygen(rotations=self.steps)
        self.values = self.rng.uniform(-1, 1, slots)
        self.times: dict[str, dict[int, float]] = {op: {} for op in TIMED_OPS}
        self.fit_steps = fit_steps(backend)
        self.rotate_many: dict[int, dict[int, float]] = {}
        self.sizes: dict[str, float] = {}

    def time(self, fn) -> float:
        return _common.median_time(fn, self.repeats)

    def at_level(self, level: int) -> dict[str, float]:
        """Time every op on ciphertexts at `level` (products one level up)."""
        ctx, v = self.ctx, self.values
        ct = ctx.drop_level(ctx.encrypt(v), level)
        other = ctx.drop_level(ctx.encrypt(v[::-1].copy()), level)
        pt = ctx.encode(v, level=level)
        ctx.add_plain(ct, pt)  # encodes `pt` once; later uses are cached
        plevel = min(level, self.depth - 1)
        pct = ctx.drop_level(ct if level == plevel else ctx.encrypt(v), plevel)
        factor = ctx.encode(v, level=plevel)
        ctx.mul_plain(pct, factor)
        product = ctx.mul_scalar(pct, 0.7)

        cached = self.time(lambda: ctx.add_plain(ct, pt))
        fresh = self.time(lambda: ctx.add_plain(ct, ctx.encode(v, level=level)))
        ops = {
            "encrypt": lambda: ctx.encrypt(pt),
            "decrypt": lambda: ctx.decrypt(ct),
            "add": lambda: ctx.add(ct, other),
            "sub": lambda: ctx.sub(ct, other),
            "add_plain": lambda: ctx.add_plain(ct, pt),
            "mul_plain": lambda: ctx.mul_plain(pct, factor),
            "mul_scalar": lambda: ctx.mul_scalar(pct, 0.7),
            "rescale": lambda: ctx.rescale(product),
            "drop_level": lambda: ctx.drop_level(pct, plevel + 1),
            "rotate": lambda: ctx.rotate(ct, 1),
        }
        out = {}
        for op, fn in ops.items():
            out[op] = self.time(fn)
            self.bar.update()
        out["encode"] = max(fresh - cached, 0.0)
        out["add_plain"] = cached
        self.rotate_many[level] = {}
        for n in many_steps(self.be):
            steps = self.steps[:n]
            self.rotate_many[level][n] = self.time(
                lambda s=steps: ctx.rotate_many(ct, s)
            )
            self.bar.update()
        return out

    def run(self) -> None:
        """Time every op at level 0 and at the last level, then the sizes."""
        for level in (0, self.depth):
            for op, t in self.at_level(level).items():
                self.times[op][level] = t
        self.sizes = self.measure_sizes()
        self.bar.update()
        self.sweep = self.level_sweep() if self.be.name != "clear" else {}

    def level_sweep(self) -> dict[str, dict[int, float]]:
        """Rotate, mul_scalar and rescale at every level, to test linearity."""
        ctx = self.ctx
        out: dict[str, dict[int, float]] = {op: {} for op in SWEEP_OPS}
        fresh = ctx.encrypt(self.values)
        for level in range(self.depth + 1):
            ct = ctx.drop_level(fresh, level)
            out["rotate"][level] = self.time(lambda c=ct: ctx.rotate(c, 1))
            if level < self.depth:
                out["mul_scalar"][level] = self.time(
                    lambda c=ct: ctx.mul_scalar(c, 0.7)
                )
                product = ctx.mul_scalar(ct, 0.7)
                out["rescale"][level] = self.time(lambda p=product: ctx.rescale(p))
            self.bar.update()
        return out

    def pair(self, op: str) -> list[float]:
        """``[cost at level 0, cost at the last level]`` of a timed op."""
        t = self.times[op]
        if op not in PRODUCT_OPS or self.depth <= 1:
            return [t[0], t[self.depth]]
        # Measured at depth - 1; extend the line through level 0 to `depth`.
        slope = (t[self.depth] - t[0]) / (self.depth - 1)
        return [t[0], max(t[0] + slope * self.depth, 0.0)]

    def fit(self, level: int) -> tuple[float, float]:
        """``(fixed, per rotation)`` seconds of rotate_many at `level`."""
        ns = np.array(self.fit_steps, dtype=float)
        ts = np.array([self.rotate_many[level][int(n)] for n in ns])
        per, fixed = np.polyfit(ns, ts, 1)
        return max(float(fixed), 0.0), float(per)

    def profile(self) -> dict[str, list[float]]:
        """The cost table ``Program.cost`` takes, every op kind included."""
        prof = {op: self.pair(op) for op in TIMED_OPS}
        (h0, r0), (h1, r1) = self.fit(0), self.fit(self.depth)
        prof["hoist"], prof["rotate_hoisted"] = [h0, h1], [r0, r1]
        missing = set(OP_KINDS) - set(prof)
        assert not missing, missing
        return prof

    def measure_sizes(self) -> dict[str, float]:
        """Ciphertext and bundle bytes, and the time of a keygen."""
        ctx, be = self.ctx, self.be
        ct = ctx.encrypt(self.values)
        bare = be.keygen().public_bundle()
        start = time.perf_counter()
        keyed = be.keygen(rotations=range(1, 9))
        keygen_s = time.perf_counter() - start
        with_keys = keyed.public_bundle()
        return {
            "ct_fresh": ctx.nbytes(ct),
            "ct_last": ctx.nbytes(ctx.drop_level(ct, self.depth)),
            "bundle_0": len(bare),
            "bundle_8": len(with_keys),
            "per_key": (len(with_keys) - len(bare)) / 8,
            "keygen_8_s": keygen_s,
        }


def fit_steps(be) -> tuple[int, ...]:
    """Step counts of the hoisting fit.

    With hoisting, one step is a plain rotation (no precompute), so the fit
    starts at two steps.
    """
    if be.capabilities.hoisting:
        return (2, *FIT_STEPS[1:])
    return FIT_STEPS


def many_steps(be) -> list[int]:
    """Step counts rotate_many is timed with."""
    return sorted({1, *fit_steps(be)})


def tasks_per_config(be) -> int:
    sweep = 0 if be.name == "clear" else be.capabilities.max_depth + 1
    return 2 * (len(TIMED_OPS) - 1 + len(many_steps(be))) + 1 + sweep


def configs(names: list[str], presets: list[str]) -> list[tuple[str, str, object]]:
    """Backends that load, at the presets they have, as ``(name, preset, be)``."""
    available = set(hejax.backends.available())
    out = []
    for name in names:
        if name not in available:
            print(f"skipping backend {name!r}: {hejax.backends.status().get(name)}")
            continue
        cls = hejax.backends.load(name)
        for preset in presets:
            if preset not in cls.presets:
                if name != "clear":
                    print(f"skipping {name} {preset}: no such preset")
                continue
            out.append((name, preset, hejax.backends.get(name, preset=preset)))
    return out


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f}" if seconds < 0.01 else f"{seconds * 1e3:.2f}"


def size(nbytes: float) -> str:
    if nbytes >= 2**20:
        return f"{nbytes / 2**20:.2f} MB"
    return f"{nbytes / 2**10:.1f} KB"


def preset_md(preset: str, benches: dict[str, Bench]) -> list[str]:
    """Timing, hoisting and size tables of one preset, backends side by side."""
    names = list(benches)
    header = ["op"]
    for name in names:
        d = benches[name].depth
        header += [f"{name} level 0", f"{name} level {d}"]
    rows = []
    for op in TIMED_OPS:
        row = [op]
        for b in benches.values():
            mark = "†" if op in PRODUCT_OPS and b.depth > 1 else ""
            row += [ms(b.times[op][0]), ms(b.times[op][b.depth]) + mark]
        rows.append(row)
    counts = sorted({n for b in benches.values() for n in b.rotate_many[0]})
    for n in counts:
        row = [f"rotate_many, {n} steps"]
        for b in benches.values():
            cells = [b.rotate_many[lvl].get(n) for lvl in (0, b.depth)]
            row += ["–" if c is None else ms(c) for c in cells]
        rows.append(row)
    for idx, key in enumerate(("hoist", "rotate_hoisted")):
        row = [f"{key} (fit)"]
        for b in benches.values():
            row += [ms(b.fit(lvl)[idx]) for lvl in (0, b.depth)]
        rows.append(row)

    lines = [f"## {preset}", "", "Median time per call, ms.", ""]
    lines += _common.md_table(header, rows)
    lines += ["", "By level (ms): is cost linear in the level?", ""]
    lines += sweep_md(benches)
    lines += ["", "Sizes.", ""]
    sizes = {name: b.sizes for name, b in benches.items()}
    srows = [
        ["ciphertext, fresh"] + [size(sizes[n]["ct_fresh"]) for n in names],
        ["ciphertext, last level"] + [size(sizes[n]["ct_last"]) for n in names],
        ["public bundle, 0 rotation keys"]
        + [size(sizes[n]["bundle_0"]) for n in names],
        ["public bundle, 8 rotation keys"]
        + [size(sizes[n]["bundle_8"]) for n in names],
        ["per rotation key"] + [size(sizes[n]["per_key"]) for n in names],
        ["keygen with 8 rotation keys (one run)"]
        + [f"{sizes[n]['keygen_8_s']:.2f} s" for n in names],
    ]
    lines += _common.md_table(["", *names], srows)
    return lines + [""]


def sweep_md(benches: dict[str, Bench]) -> list[str]:
    """Per-level times and the worst error of the linear interpolation."""
    benches = {name: b for name, b in benches.items() if b.sweep}
    depth = max(b.depth for b in benches.values())
    header = ["backend", "op", *[f"L{lvl}" for lvl in range(depth + 1)]]
    header.append("worst linear-interpolation error")
    rows = []
    for name, b in benches.items():
        for op in SWEEP_OPS:
            t = b.sweep[op]
            cells = [ms(t[lvl]) if lvl in t else "" for lvl in range(depth + 1)]
            rows.append([name, op, *cells, f"{_nonlinearity(t):+.0%}"])
    return _common.md_table(header, rows)


def _nonlinearity(t: dict[int, float]) -> float:
    """Worst relative error of the line through the first and last level."""
    lo, hi = min(t), max(t)
    if hi == lo:
        return 0.0
    line = {lvl: t[lo] + (t[hi] - t[lo]) * (lvl - lo) / (hi - lo) for lvl in t}
    return max((line[lvl] - t[lvl]) / t[lvl] for lvl in t)


NOTES = """\
How it was measured: one process, hejax's public `Context` methods (so each
time includes hejax's argument checks, a few µs), median of `--repeats`
samples after one warm-up call ({slow} samples for calls over
{slow_ms:.0f} ms); calls faster than {min_ms:.0f} ms are looped inside a
sample. Inputs are random slot vectors in [-1, 1].

- `encode` is the extra time of `add_plain` with a newly encoded plaintext
  over `add_plain` with a cached one: both backends encode lazily, at first
  use, so `Context.encode` alone measures nothing. `encrypt` is the
  encryption of an already-encoded plaintext; `decrypt` includes decoding.
- † The product ops (mul_plain, mul_scalar, rescale, drop_level by one
  level) cannot run at the last level, since no level is left to rescale
  into: the column shows them at the level before it. In the JSON, their
  last-level value is the line through level 0 and that level, extended to
  the last level, so that `Program.cost`'s interpolation by level gives the
  measured cost at both measured levels.
- `rotate_many, n steps` rotates one ciphertext by n different steps. With
  hoisting (openfhe), one step is a plain `EvalRotate`, so the fit uses
  2, 4, 8 and 16 steps; without (tenseal, clear) it uses 1, 4, 8 and 16.
  `hoist (fit)` is the intercept (precompute and per-call overhead),
  `rotate_hoisted (fit)` the slope (per rotation).
- "By level": single rotate, mul_scalar and rescale timed at every level
  (products up to the level before the last). `Program.cost` interpolates
  linearly between level 0 and the last level; the last column is the
  largest relative overestimate (+) of the straight line through the
  first and last measured level (of this sweep) at the levels between. Key
  switching costs grow faster than linearly with the primes left, so a
  linear line through the ends overestimates the middle levels.
- Sizes are those of hejax's serialized objects (library bytes plus a small
  header). "per rotation key" is (bundle with 8 keys − bundle with none) / 8.
- The host is shared and noisy: other processes (test runs) may have used
  the same cores during the run, so read the numbers as ±20 %.
"""


def write_md(path: Path, info, results: dict[str, dict[str, Bench]]) -> None:
    lines = ["# HE primitive costs", ""]
    lines += _common.machine_md(info) + [""]
    lines += NOTES.format(
        slow=_common.SLOW_REPEATS,
        slow_ms=_common.SLOW_OP_S * 1e3,
        min_ms=_common.MIN_SAMPLE_S * 1e3,
    ).splitlines()
    lines.append("")
    for preset, benches in results.items():
        lines += preset_md(preset, benches)
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=11, help="samples per op")
    parser.add_argument("--presets", default=",".join(DEFAULT_PRESETS))
    parser.add_argument("--all-presets", action="store_true", help="add n32768")
    parser.add_argument("--backends", default=",".join(DEFAULT_BACKENDS))
    parser.add_argument("--out", type=Path, default=_common.RESULTS)
    args = parser.parse_args(argv)

    presets = args.presets.split(",")
    if args.all_presets and "n32768" not in presets:
        presets.append("n32768")
    todo = configs(args.backends.split(","), presets)
    if not todo:
        parser.error("no backend/preset to measure")
    info = _common.machine()
    args.out.mkdir(parents=True, exist_ok=True)

    results: dict[str, dict[str, Bench]] = {}
    profile: dict[str, dict[str, dict[str, list[float]]]] = {}
    total = sum(tasks_per_config(be) for _, _, be in todo)
    with tqdm(total=total, unit="op") as bar:
        for name, preset, be in todo:
            bar.set_postfix_str(f"{name} {preset}")
            bench = Bench(be, args.repeats, bar)
            bench.run()
            results.setdefault(preset, {})[name] = bench
            profile.setdefault(name, {})[preset] = bench.profile()

    (args.out / "primitives.json").write_text(json.dumps(profile, indent=1) + "\n")
    write_md(args.out / "primitives.md", info, results)
    print(f"wrote {args.out / 'primitives.md'} and {args.out / 'primitives.json'}")


if __name__ == "__main__":
    main()
