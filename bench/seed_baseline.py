"""The published baseline side by side: Paillier against hejax's CKKS backends.

RED-CNN-lite (16 channels) and RED-CNN-paper (96 channels), all-ReLU, seeded
random weights, on one 64×64 patch, compiled by the ordinary compiler for
Paillier with 2048-bit keys (the published setting, 112-bit) and 3072-bit
keys (128-bit), OpenFHE CKKS and TenSEAL CKKS (preset n8192 each), with
per-element masks and explicit unmasking (the ``hejax denoise`` defaults).

What is measured in this one run, on this machine:

* every backend's primitive costs (CKKS: ``bench/primitives.py``'s
  ``Bench``; Paillier: each op on a vector of ``SAMPLE`` values, scaled to
  4096 — Paillier work is one independent operation per value);
* RED-CNN-lite end to end on both CKKS backends (``hejax.run``: time of each
  party, bytes each way, rounds, error against float64);
* on Paillier, one output channel of a 16-channel 5×5 layer on ``CHANNEL``
  slots, and the client's encryption and decryption of ``SAMPLE`` values;
* worker processes (``workers=2``) against one process.

Everything else is extrapolated and labelled so: ``Program.cost`` (op counts
× measured primitive costs) times a calibration factor, measured over
predicted on the representative work of the same backend (the lite run on
CKKS, the one channel on Paillier). Client time is the per-ciphertext
encrypt and decrypt cost times the ciphertexts of every round; bytes are
ciphertext sizes times counts. A full Paillier run of RED-CNN-lite would
take many hours, the paper model weeks.

Writes ``bench/results/seed_baseline.md`` and ``.json``. Run from the
repository root (about 12 minutes on 2 cores)::

    OMP_NUM_THREADS=1 .venv/bin/python bench/seed_baseline.py
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import primitives  # noqa: E402

import hejax  # noqa: E402

SIZE = 64
SLOTS = 4096
SAMPLE = 256  # values per Paillier primitive measurement
CHANNEL = 64  # slots of the measured Paillier output channel
PITCH = 8  # grid row of that channel: 25 distinct taps
MODELS = {"lite": 16, "paper": 96}
CONFIGS = (
    ("paillier", "k2048"),
    ("paillier", "k3072"),
    ("openfhe", "n8192"),
    ("tenseal", "n8192"),
)
BASELINE = ("paillier", "k2048")


@dataclasses.dataclass
class Row:
    """One model on one backend: what each party spends."""

    model: str
    backend: str
    preset: str
    security: int
    rounds: int
    server_s: float
    client_s: float
    up_bytes: float
    down_bytes: float
    source: str
    max_err: float | None = None
    predicted_server_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.server_s + self.client_s


# -- models -----------------------------------------------------------------


def redcnn(preset: str, seed: int = 0):
    """All-ReLU RED-CNN with seeded random weights, its input, float64 output.

    The last transposed convolution starts at zero in an untrained model; it
    gets a seeded random kernel of the other layers' scale, so that it costs
    what a trained layer costs.
    """
    import jax

    fn, params, x = _common.redcnn(SIZE, seed, preset=preset, variant="all-relu")

    with jax.experimental.enable_x64():
        want = np.asarray(
            fn(
                jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params),
                x.astype(np.float64),
            )
        )
    return fn, params, x, want


def backend_for(name: str, preset: str, **extra):
    return hejax.backends.get(name, preset=preset, insecure=True, **extra)


# -- what the client and the wire cost, from the program -------------------------


def traffic(program) -> dict[str, Any]:
    """Rounds and the ciphertexts each way, walking the schedule like ``run``."""
    rounds = hejax.schedule(program)
    up, down, boundaries = program.input.count, 0, program.boundaries
    for rnd in rounds:
        b = boundaries[rnd.boundary] if rnd.boundary is not None else None
        down += b.before.count if b is not None else program.output.count
        if rnd.ends != "output":
            up += b.after.count
    return {"rounds": len(rounds), "up": up, "down": down}


def predicted_client(t: dict[str, Any], costs: dict[str, float]) -> float:
    return t["up"] * costs["encrypt"] + t["down"] * costs["decrypt"]


# -- Paillier measurements --------------------------------------------------------


def once(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paillier_profile(preset: str) -> tuple[dict, dict, dict]:
    """Per-op costs of a 4096-value vector, from vectors of `SAMPLE` values.

    Returns:
        ``(profile, client costs per ciphertext, sizes in bytes)``.
    """
    be = backend_for("paillier", preset, slots=SAMPLE)
    ctx = be.keygen(rotations=[1])
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, SAMPLE)
    enc = once(lambda: ctx.encrypt(v))
    ct, other = ctx.encrypt(v), ctx.encrypt(v[::-1].copy())
    dec = once(lambda: ctx.decrypt(ct))
    pt = ctx.encode(v)
    product = ctx.mul_scalar(ct, 0.7)
    t = _common.median_time
    ops = {
        "mul_scalar": t(lambda: ctx.mul_scalar(ct, -0.7), 3),
        "mul_plain": t(lambda: ctx.mul_plain(ct, pt), 3),
        "add": t(lambda: ctx.add(ct, other), 5),
        "sub": t(lambda: ctx.sub(ct, other), 3),
        "add_plain": t(lambda: ctx.add_plain(ct, pt), 5),
        "rescale": t(lambda: ctx.rescale(product), 5),
        "drop_level": t(lambda: ctx.drop_level(ct, 3), 5),
        "rotate": t(lambda: ctx.rotate(ct, 1), 5),
    }
    scale = SLOTS / SAMPLE
    profile = {op: s * scale for op, s in ops.items()}
    profile["hoist"], profile["rotate_hoisted"] = 0.0, profile["rotate"]
    client = {"encrypt": enc * scale, "decrypt": dec * scale}
    blob = len(ctx.serialize(ct))
    width = (2 * be.params["key_bits"] + 7) // 8
    size = blob + (SLOTS - SAMPLE) * width
    return profile, client, {"ct_up": size, "ct_down": size, "per_value": width}


def paillier_channel(preset: str, profile: dict) -> dict[str, float]:
    """One output channel of a 16-channel 5×5 layer on `CHANNEL` slots.

    The 16 inputs are one ciphertext used 16 times: Paillier's cost does not
    depend on the values.
    """
    be = backend_for("paillier", preset, slots=CHANNEL)
    steps = sorted({dy * PITCH + dx for dy in range(5) for dx in range(5)})
    steps = [s for s in steps if s]
    ctx = be.keygen(rotations=steps)
    rng = np.random.default_rng(1)
    ct = ctx.encrypt(rng.uniform(0, 1, CHANNEL))
    weights = rng.normal(0, 0.05, (16, len(steps) + 1))
    start = time.perf_counter()
    acc = None
    for i in range(16):
        taps = [ct, *ctx.rotate_many(ct, steps)]
        for tap, w in zip(taps, weights[i], strict=True):
            term = ctx.mul_scalar(tap, float(w))
            acc = term if acc is None else ctx.add(acc, term)
    ctx.rescale(acc)
    measured = time.perf_counter() - start
    products = 16 * (len(steps) + 1)
    predicted = (
        products * profile["mul_scalar"]
        + (products - 1) * profile["add"]
        + 16 * len(steps) * profile["rotate"]
        + profile["rescale"]
    ) * (CHANNEL / SLOTS)
    return {"measured_s": measured, "predicted_s": predicted, "products": products}


def paillier_workers(preset: str) -> dict[str, dict[str, float]]:
    """Encrypt, decrypt and mul_plain of long vectors: 1 process against 2."""
    out: dict[str, dict[str, float]] = {}
    client = backend_for("paillier", preset, slots=SAMPLE).keygen()
    v = np.random.default_rng(2).uniform(-1, 1, SAMPLE)
    for workers in (1, 2):
        be = backend_for("paillier", preset, slots=SAMPLE, workers=workers)
        ctx = be.load_public(client.public_bundle())
        ct = ctx.deserialize(client.serialize(client.encrypt(v)))
        pt = ctx.encode(v)
        ctx.mul_plain(ct, pt)  # starts the worker processes
        out[str(workers)] = {
            "encrypt": once(lambda c=ctx: c.encrypt(v)),
            "mul_plain": _common.median_time(
                lambda c=ctx, a=ct, b=pt: c.mul_plain(a, b), 3
            ),
        }
    return out


# -- CKKS measurements ----------------------------------------------------------


def ckks_profile(name: str, preset: str) -> tuple[dict, dict, dict]:
    be = backend_for(name, preset)
    bench = primitives.Bench(be, 5, tqdm(disable=True))
    bench.run()
    profile = bench.profile()
    client = {"encrypt": profile["encrypt"][0], "decrypt": profile["decrypt"][1]}
    sizes = {"ct_up": bench.sizes["ct_fresh"], "ct_down": bench.sizes["ct_last"]}
    return profile, client, sizes


def full_run(program, x, want) -> dict[str, Any]:
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle(), masks="element")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out, tr = hejax.run(client, server, x)
    return {
        "server_s": tr.total("server_seconds"),
        "client_s": tr.total("client_seconds"),
        "up": tr.total("bytes_to_server"),
        "down": tr.total("bytes_to_client"),
        "rounds": len(tr.rounds),
        "max_err": float(np.max(np.abs(out - want))),
    }


# -- the run --------------------------------------------------------------------


def run(full_lite: bool, bar: tqdm) -> dict[str, Any]:
    measured: dict[str, Any] = {}
    for name, preset in CONFIGS:
        bar.set_postfix_str(f"primitives {name} {preset}")
        if name == "paillier":
            profile, client, sizes = paillier_profile(preset)
            channel = paillier_channel(preset, profile)
            calib = channel["measured_s"] / channel["predicted_s"]
            measured[f"{name}/{preset}"] = {"channel": channel}
        else:
            profile, client, sizes = ckks_profile(name, preset)
            calib = None
            measured[f"{name}/{preset}"] = {}
        measured[f"{name}/{preset}"].update(
            profile=profile, client=client, sizes=sizes, calibration=calib
        )
        bar.update()
    bar.set_postfix_str("workers")
    measured["workers"] = paillier_workers("k2048")
    bar.update()

    rows: list[Row] = []
    for model_name in MODELS:
        fn, params, x, want = redcnn(model_name)
        counts_for: dict[str, Any] = {}
        for name, preset in CONFIGS:
            key = f"{name}/{preset}"
            m = measured[key]
            bar.set_postfix_str(f"{model_name} {name} {preset}")
            reuse = (
                name == "paillier"
                and model_name == "paper"
                and "paillier" in counts_for
            )
            if reuse:  # same slots and enough depth: the k2048 program's counts
                ops = counts_for["paillier"]["ops"]
                program_info = {
                    **counts_for["paillier"],
                    "compile_s": 0.0,
                    "predicted_server_s": sum(
                        n * m["profile"][k] for k, n in ops.items()
                    ),
                }
            else:
                start = time.perf_counter()
                program = hejax.compile(
                    fn, params, x, backend=backend_for(name, preset), unmask="explicit"
                )
                program_info = {
                    "compile_s": time.perf_counter() - start,
                    "ops": program.op_counts(),
                    "traffic": traffic(program),
                    "predicted_server_s": program.cost(m["profile"]),
                }
                counts_for.setdefault(name, program_info)
            t = program_info["traffic"]
            pred_server = program_info["predicted_server_s"]
            pred_client = predicted_client(t, m["client"])
            sec = backend_for(name, preset).capabilities.security_bits
            if name != "paillier" and model_name == "lite" and full_lite:
                got = full_run(program, x, want)
                m["calibration"] = got["server_s"] / pred_server
                m["client_calibration"] = got["client_s"] / pred_client
                rows.append(
                    Row(
                        model_name,
                        name,
                        preset,
                        sec,
                        got["rounds"],
                        got["server_s"],
                        got["client_s"],
                        got["up"],
                        got["down"],
                        "measured",
                        got["max_err"],
                        pred_server,
                    )
                )
            else:
                calib = m.get("calibration") or 1.0
                ccal = m.get("client_calibration", 1.0)
                rows.append(
                    Row(
                        model_name,
                        name,
                        preset,
                        sec,
                        t["rounds"],
                        pred_server * calib,
                        pred_client * ccal,
                        t["up"] * m["sizes"]["ct_up"],
                        t["down"] * m["sizes"]["ct_down"],
                        "extrapolated",
                        None,
                        pred_server,
                    )
                )
            program_info_out = {k: v for k, v in program_info.items()}
            measured.setdefault("programs", {})[f"{model_name}/{key}"] = (
                program_info_out
            )
            if not reuse:
                del program
                gc.collect()
            bar.update()
        del fn, params
        gc.collect()
    return {"rows": rows, "measured": measured}


# -- output -----------------------------------------------------------------------


def seconds(s: float) -> str:
    if s < 1:
        return f"{s * 1e3:.0f} ms"
    if s >= 86400:
        return f"{s / 86400:.1f} d"
    if s >= 3600:
        return f"{s / 3600:.1f} h"
    if s >= 60:
        return f"{s / 60:.1f} min"
    return f"{s:.1f} s"


def mb(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.0f}" if nbytes >= 2**24 else f"{nbytes / 2**20:.1f}"


def speedup(row: Row, rows: list[Row], preset: str) -> str:
    """Total time of Paillier at `preset` over this row's, same model."""
    base = [
        r
        for r in rows
        if r.model == row.model and (r.backend, r.preset) == ("paillier", preset)
    ]
    if not base:
        return "–"
    ratio = base[0].total_s / row.total_s
    return f"{ratio:,.0f}×" if ratio >= 10 else f"{ratio:.2f}×"


def write(out: Path, info: dict, result: dict, wall: float) -> None:
    rows, m = result["rows"], result["measured"]
    head = [
        "model",
        "backend",
        "preset",
        "security",
        "rounds",
        "server",
        "client",
        "MB client→server",
        "MB server→client",
        "total",
        "speedup vs Paillier-2048",
        "vs Paillier-3072",
        "figures",
    ]
    body = []
    for r in rows:
        label = "measured" if r.source == "measured" else "**extrapolated**"
        body.append(
            [
                r.model,
                r.backend,
                r.preset,
                f"{r.security}-bit",
                r.rounds,
                seconds(r.server_s),
                seconds(r.client_s),
                mb(r.up_bytes),
                mb(r.down_bytes),
                seconds(r.total_s),
                speedup(r, rows, "k2048"),
                speedup(r, rows, "k3072"),
                label,
            ]
        )
    lines = ["# The published baseline (Paillier) against hejax's CKKS backends", ""]
    lines += [
        f"RED-CNN all-ReLU on one {SIZE}×{SIZE} patch, seeded random weights, "
        "per-element masks, explicit unmasking, one process per party "
        "(`OMP_NUM_THREADS=1`). Produced by `bench/seed_baseline.py` in "
        f"{wall / 60:.1f} minutes. *Extrapolated* cells are op counts of the "
        "compiled program × primitive costs measured in this run × a calibration "
        "(measured / predicted on representative work of the same backend, see "
        "below); *measured* cells are a whole `hejax.run`. Speedups compare the "
        "total time of both parties. The host is shared: the load average at "
        "the start (see Machine) tells how much other work slowed every figure.",
        "",
    ]
    lines += _common.md_table(head, body)
    lines += ["", "## Compiled programs", ""]
    prog_rows = []
    for key, p in m["programs"].items():
        ops, t = p["ops"], p["traffic"]
        rot = ops.get("rotate", 0) + ops.get("rotate_hoisted", 0)
        prog_rows.append(
            [
                key,
                f"{p['compile_s']:.1f} s" if p["compile_s"] else "reused",
                f"{ops.get('mul_scalar', 0) + ops.get('mul_plain', 0):,}",
                f"{ops.get('add', 0):,}",
                f"{rot:,}",
                t["rounds"],
                t["up"],
                t["down"],
                seconds(p["predicted_server_s"]),
            ]
        )
    lines += _common.md_table(
        [
            "model/backend/preset",
            "compile",
            "products",
            "adds",
            "rotations",
            "rounds",
            "cts up",
            "cts down",
            "Program.cost",
        ],
        prog_rows,
    )
    lines += [
        "",
        "Paillier k3072 reuses the k2048 program of the paper model (same slots, "
        "both deep enough for no refresh round; compare the two lite rows).",
    ]
    lines += ["", "## Representative work and calibration", ""]
    cal_rows = []
    for name, preset in CONFIGS:
        mm = m[f"{name}/{preset}"]
        if name == "paillier":
            ch = mm["channel"]
            what = (
                f"one output channel of a 16-channel 5×5 layer ({ch['products']} "
                f"products) on {CHANNEL} slots"
            )
            cal_rows.append(
                [
                    name,
                    preset,
                    what,
                    seconds(ch["measured_s"]),
                    seconds(ch["predicted_s"]),
                    f"{mm['calibration']:.2f}",
                ]
            )
        elif "client_calibration" in mm:
            lite = next(r for r in rows if (r.model, r.backend) == ("lite", name))
            cal_rows.append(
                [
                    name,
                    preset,
                    "RED-CNN-lite, whole run (server)",
                    seconds(lite.server_s),
                    seconds(lite.predicted_server_s),
                    f"{mm['calibration']:.2f}",
                ]
            )
    lines += _common.md_table(
        ["backend", "preset", "work", "measured", "predicted", "calibration"], cal_rows
    )
    lines += ["", "## Primitive costs measured in this run (one 4096-slot vector)", ""]
    ops = [
        "encrypt",
        "decrypt",
        "mul_scalar",
        "mul_plain",
        "add",
        "add_plain",
        "rotate",
    ]
    prim = []
    for name, preset in CONFIGS:
        mm = m[f"{name}/{preset}"]
        prof = mm["profile"]
        cells = []
        for op in ops:
            if op in ("encrypt", "decrypt"):
                val = mm["client"][op]
            else:
                val = prof[op][0] if isinstance(prof[op], list) else prof[op]
            cells.append(f"{val * 1e3:,.2f}")
        size = (
            f"{mm['sizes']['ct_up'] / 2**20:.2f} / {mm['sizes']['ct_down'] / 2**20:.2f}"
        )
        prim.append([name, preset, *cells, size])
    lines += _common.md_table(
        ["backend", "preset", *[f"{o} ms" for o in ops], "ct MB up / down"], prim
    )
    lines += [
        "",
        f"Paillier ops are timed on {SAMPLE} values and scaled to 4096 (one "
        "independent modular operation per value); CKKS ops at level 0 "
        "(decrypt at the last level), by `bench/primitives.py`'s `Bench`.",
        "",
        "## Worker processes (Paillier 2048, 2 cores)",
        "",
    ]
    w = m["workers"]
    lines += _common.md_table(
        ["op", "1 process", "2 workers", "speedup"],
        [
            [
                f"{op} of {SAMPLE} values",
                seconds(w["1"][op]),
                seconds(w["2"][op]),
                f"{w['1'][op] / w['2'][op]:.2f}×",
            ]
            for op in ("encrypt", "mul_plain")
        ],
    )
    lines += ["", "## Machine", ""] + _common.machine_md(info) + [""]
    out.with_suffix(".md").write_text("\n".join(lines))
    payload = {
        "machine": info,
        "rows": [dataclasses.asdict(r) for r in rows],
        "measured": m,
        "wall_s": wall,
    }
    out.with_suffix(".json").write_text(
        json.dumps(payload, indent=1, default=float) + "\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=_common.RESULTS / "seed_baseline")
    parser.add_argument(
        "--no-full-lite",
        action="store_true",
        help="extrapolate the CKKS lite runs too (faster, nothing run end to end)",
    )
    args = parser.parse_args(argv)
    info = _common.machine()
    info["phe"] = _common.version("phe")
    info["gmpy2"] = _common.version("gmpy2")
    start = time.perf_counter()
    with tqdm(total=len(CONFIGS) + 1 + len(MODELS) * len(CONFIGS), unit="step") as bar:
        result = run(not args.no_full_lite, bar)
    write(args.out, info, result, time.perf_counter() - start)
    print(f"wrote {args.out.with_suffix('.md')} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
