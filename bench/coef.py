"""Benchmark: the coef transform against the rotation transforms, side by side.

For RED-CNN-lite (16 channels) and RED-CNN-paper (96 channels) on 64×64 and
512×512 images it reports server time, client time, bytes each way and
rounds of ``transform="coef"`` on a BFV backend, next to the best rotation
transform on CKKS. What cannot run in the time budget is extrapolated, and
labelled so:

* coef, not run: op counts of the compiled program × the coef backend's
  primitive costs, measured at the start of this run (the same model is
  checked against every configuration that did run);
* rotation transforms: ``Program.cost(profile)`` (primitive costs from
  ``bench/results/primitives.json``) of the compiled 64×64 lite program;
  512×512 scales it by the pixel count and the paper model by the square of
  the width (a convolution's products and rotations grow with C_in·C_out).

Usage: ``python bench/coef.py [--quick]``; writes ``bench/results/coef.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    RESULTS,
    machine,
    machine_md,
    md_table,
    median_time,
    redcnn_lite,  # noqa: E402
)

import hejax  # noqa: E402


@dataclasses.dataclass
class Row:
    model: str
    size: int
    transform: str
    backend: str
    server_s: float
    client_s: float
    mb_up: float
    mb_down: float
    rounds: int
    source: str
    predicted_server_s: float | None = None
    exact: str = ""


def primitive_costs(backend) -> dict[str, float]:
    """Seconds per coef primitive, and bytes per ciphertext each way."""
    ctx = backend.keygen()
    srv = backend.load_public(ctx.public_bundle())
    n, t = backend.capabilities.ring_dim, backend.capabilities.plain_modulus
    rng = np.random.default_rng(0)
    dense = rng.integers(0, t, n)
    kernel = np.zeros(n, dtype=np.int64)
    kernel[rng.choice(n, 25 * 4, replace=False)] = rng.integers(0, t, 100)
    pt, kt = ctx.encode(dense), srv.encode(kernel)
    ct = ctx.encrypt(pt)
    up = ctx.serialize(ct)
    sct = srv.deserialize(up)
    prod = srv.mul_plain(sct, kt)
    down = srv.serialize(prod)
    r = 7
    return {
        "encode": median_time(lambda: ctx.encode(dense), r),
        "encrypt": median_time(lambda: ctx.encrypt(pt), r),
        "serialize_up": median_time(lambda: ctx.serialize(ct), r),
        "deserialize_up": median_time(lambda: srv.deserialize(up), r),
        "mul_plain": median_time(lambda: srv.mul_plain(sct, kt), r),
        "add": median_time(lambda: srv.add(prod, prod), r),
        "add_plain": median_time(lambda: srv.add_plain(prod, pt), r),
        "serialize_down": median_time(lambda: srv.serialize(prod), r),
        "decrypt": median_time(lambda: ctx.decrypt(ctx.deserialize(down)), r),
        "bytes_up": len(up),
        "bytes_down": len(down),
    }


def coef_model(program, cost) -> tuple[float, float, float, float]:
    """Predicted server s, client s, MB up, MB down of one coef run."""
    ops = program.op_counts()
    cts = program.ciphertexts()
    k = len(program.moduli)
    kernels = k * sum(s.pack.in_groups * s.pack.out_groups for s in program.segments)
    server = (
        ops["mul_plain"] * cost["mul_plain"]
        + (ops["add"] + ops["mul_scalar"]) * cost["add"]
        + ops["add_plain"] / 2 * (cost["add_plain"] + cost["encode"])
        + kernels * cost["encode"]
        + cts["to_server"] * cost["deserialize_up"]
        + cts["to_client"] * cost["serialize_down"]
    )
    client = (
        cts["to_server"] * (cost["encode"] + cost["encrypt"] + cost["serialize_up"])
        + cts["to_client"] * cost["decrypt"]
    )
    return (
        server,
        client,
        cts["to_server"] * cost["bytes_up"] / 2**20,
        cts["to_client"] * cost["bytes_down"] / 2**20,
    )


def run_coef(name, size, features, backend, cost, measure, masks="off") -> Row:
    fn, params, x = redcnn_lite(size, features=features)
    program = hejax.compile(
        fn, params, x, backend=backend, transform="coef", masks=masks
    )
    server, client, up, down = coef_model(program, cost)
    label = f"{name} ({masks} masks)" if masks != "off" else name
    row = Row(label, size, "coef", backend.name, server, client, up, down,
              len(program.segments), "extrapolated (op counts × primitive costs)",
              server)  # fmt: skip
    if not measure:
        return row
    c = hejax.Client(program)
    s = hejax.Server(program, c.public_bundle())
    out, tr = hejax.run(c, s, x)
    exact = np.array_equal(out, program.decode_output(program.reference(x)))
    return Row(label, size, "coef", backend.name, tr.total("server_seconds"),
               tr.total("client_seconds"), tr.total("bytes_to_server") / 2**20,
               tr.total("bytes_to_client") / 2**20, len(tr.rounds), "measured",
               server, "yes" if exact else "NO")  # fmt: skip


def rotation_rows(args) -> list[Row]:
    """Op-count predictions of the rotation transforms (64×64 lite compiled)."""
    import json

    profile = json.loads(Path(args.profile).read_text())[args.rot_backend][args.preset]
    fn, params, x = redcnn_lite(64)
    be = hejax.backends.get(args.rot_backend, preset=args.preset)
    best = None
    for transform in ("shift", "shift-out"):
        program = hejax.compile(fn, params, x, backend=be, transform=transform)
        cost = program.cost(profile)
        if best is None or cost < best[1]:
            best = (transform, cost, program)
    transform, cost, program = best
    cts_in = program.input.count
    bytes_ct = 2 * be.capabilities.ring_dim * 8 * (be.capabilities.max_depth + 1)
    enc = profile["encrypt"][0] if isinstance(profile["encrypt"], list) else 0.0
    rows = []
    for name, width_factor in (("RED-CNN-lite", 1), ("RED-CNN-paper (96 ch)", 36)):
        for size in (64, 512):
            f = width_factor * (size / 64) ** 2
            label = "predicted (op counts × primitives.json)"
            if f != 1:
                label = f"extrapolated: 64×64 lite prediction × {f:g} (pixels × width²)"
            rounds = 1 + sum(b.kind == "refresh" for b in program.boundaries)
            rows.append(
                Row(name, size, transform, f"{args.rot_backend} {args.preset}",
                    cost * f, cts_in * enc * (size / 64) ** 2,
                    cts_in * bytes_ct / 2**20 * (size / 64) ** 2, float("nan"),
                    rounds, label)
            )  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", default="openfhe-bfv")
    ap.add_argument("--rot-backend", default="openfhe")
    ap.add_argument("--preset", default="n16384", help="rotation backend preset")
    ap.add_argument("--profile", default=str(RESULTS / "primitives.json"))
    ap.add_argument("--quick", action="store_true", help="skip the 512×512 run")
    ap.add_argument(
        "--paper", action="store_true", help="also run the paper model at 64×64"
    )
    args = ap.parse_args()
    info = machine()
    be = hejax.backends.get(args.backend)
    cost = primitive_costs(be)
    rows = []
    plan = [
        ("RED-CNN-lite", 64, 16, True),
        ("RED-CNN-paper (96 ch)", 64, 96, args.paper),
        ("RED-CNN-lite", 512, 16, not args.quick),
        ("RED-CNN-paper (96 ch)", 512, 96, False),
    ]
    for name, size, features, measure in plan:
        start = time.perf_counter()
        rows.append(run_coef(name, size, features, be, cost, measure))
        print(f"{name} {size}: {time.perf_counter() - start:.0f} s", flush=True)
    rows.append(run_coef("RED-CNN-lite", 64, 16, be, cost, True, masks="channel"))
    rows += rotation_rows(args)
    write(rows, cost, info, args)


def _fmt(v):
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:.1f}" if v >= 10 else f"{v:.2f}"
    return str(v)


def write(rows, cost, info, args) -> None:
    header = ["model", "size", "transform", "backend", "server s", "client s",
              "MB up", "MB down", "rounds", "exact", "source",
              "coef model s"]  # fmt: skip
    body = [
        [r.model, f"{r.size}×{r.size}", r.transform, r.backend, _fmt(r.server_s),
         _fmt(r.client_s), _fmt(r.mb_up), _fmt(r.mb_down), r.rounds, r.exact,
         r.source,
         _fmt(r.predicted_server_s) if r.predicted_server_s is not None else ""]
        for r in rows
    ]  # fmt: skip
    ratios = []
    for size in (64, 512):
        for model in ("RED-CNN-lite", "RED-CNN-paper (96 ch)"):
            coef = [r for r in rows if r.transform == "coef" and r.model == model
                    and r.size == size]  # fmt: skip
            rot = [r for r in rows if r.transform != "coef" and r.model == model
                   and r.size == size]  # fmt: skip
            if coef and rot:
                ratios.append(
                    f"- {model}, {size}×{size}: rotation server / coef server = "
                    f"{rot[0].server_s / coef[0].server_s:,.0f}× ({coef[0].source})"
                )
    costs = [[k, f"{v * 1e3:.3f}" if not k.startswith("bytes") else f"{v:,}"]
             for k, v in cost.items()]  # fmt: skip
    text = [
        "# coef transform vs rotation transforms",
        "",
        *md_table(header, body),
        "",
        "Server-time ratio (aim: ≥ 50× at 512×512):",
        *ratios,
        "",
        f"Coef primitive costs on {args.backend} (ms; bytes per ciphertext), "
        "measured in this run:",
        "",
        *md_table(["primitive", "ms / bytes"], costs),
        "",
        "Notes. Weights are seeded random (linear variant, the last layer's zero "
        "kernel replaced by a random one), so every layer costs what a trained one "
        "would; coef uses masks='off' unless the row says otherwise. Client time "
        "of the rotation rows counts only encrypting the input (their ReLU and "
        "refresh rounds are not modelled). `coef model s` is the op-count "
        "prediction of the coef server time, shown next to measured rows to "
        "check the model used for the extrapolated ones.",
        "",
        *machine_md(info),
    ]
    out = RESULTS / "coef.md"
    out.write_text("\n".join(text) + "\n")
    print(out.read_text())


if __name__ == "__main__":
    main()
