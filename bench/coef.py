"""Benchmark: the coef transform against the rotation transforms, side by side.

For RED-CNN-lite (16 channels) and RED-CNN-paper (96 channels) on 64×64 and
512×512 images it reports server time, client time, bytes each way and
rounds of ``transform="coef"`` on each BFV backend, next to the best rotation
transform on CKKS, all in one run. The coef programs are compiled with
calibrated bounds (``calibration=`` a second seeded image, the model owner's,
2 bits of headroom), which the client checks at run time; the lite model at
512×512 runs with 1 and with 2 threads per party. What cannot run in the
time budget is extrapolated, and labelled so:

* coef, not run: op counts of the compiled program × the coef backend's
  primitive costs, measured at the start of this run (the same model is
  checked against every configuration that did run);
* rotation transforms: the best of ``shift`` / ``shift-out`` by predicted
  cost is run in full on the 64×64 lite model (its server part, timed as in
  ``bench/transforms.py``); 512×512 is compiled (about 4 minutes and 9 GB)
  and its op-count prediction is corrected by the measured / predicted ratio
  at 64×64; the paper model scales the lite rows by the square of the width
  (a convolution's products and rotations grow with C_in·C_out).

Usage: ``python bench/coef.py [--quick] [--backends openfhe-bfv,tenseal-bfv]``;
writes ``bench/results/coef.md`` and ``coef.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
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
    redcnn_lite,
)
from transforms import time_server  # noqa: E402

import hejax  # noqa: E402
from hejax.coefprotocol import CoefClient, CoefServer  # noqa: E402


@dataclasses.dataclass
class Row:
    model: str
    size: int
    transform: str
    backend: str
    workers: int
    server_s: float
    client_s: float
    mb_up: float
    mb_down: float
    rounds: int
    moduli: int
    source: str
    predicted_server_s: float | None = None
    exact: str = ""

    @property
    def total_s(self) -> float:
        return self.server_s + self.client_s


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
    kernels = sum(
        s.moduli * s.pack.in_groups * s.pack.out_groups for s in program.segments
    )
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


def calibration_image(x: np.ndarray) -> np.ndarray:
    """The model owner's calibration image: another seeded image like `x`."""
    return np.random.default_rng(1).uniform(0.0, 1.0, x.shape)


def run_coef(name, size, features, backend, cost, measure, masks="off", workers=1):
    fn, params, x = redcnn_lite(size, features=features)
    program = hejax.compile(
        fn, params, x, backend=backend, transform="coef", masks=masks,
        calibration=calibration_image(x),
    )  # fmt: skip
    server, client, up, down = coef_model(program, cost)
    label = f"{name} ({masks} masks)" if masks != "off" else name
    k = len(program.moduli)
    row = Row(label, size, "coef", backend.name, workers, server, client, up, down,
              len(program.segments), k, "extrapolated (op counts × primitive costs)",
              server)  # fmt: skip
    if not measure:
        return row
    c = CoefClient(program, workers=workers)
    s = CoefServer(program, c.public_bundle(), workers=workers)
    out, tr = hejax.run(c, s, x)
    exact = np.array_equal(out, program.decode_output(program.reference(x)))
    return Row(label, size, "coef", backend.name, workers,
               tr.total("server_seconds"), tr.total("client_seconds"),
               tr.total("bytes_to_server") / 2**20, tr.total("bytes_to_client") / 2**20,
               len(tr.rounds), k, "measured", server,
               "yes" if exact else "NO")  # fmt: skip


def rotation_rows(args) -> list[Row]:
    """The best rotation transform, measured at 64×64 and scaled from there.

    64×64 lite runs in full. 512×512 lite is compiled (its op counts differ
    from 64 copies of the small one: tiles carry halos) and its predicted
    cost is corrected by the measured / predicted ratio at 64×64. The paper
    model scales the lite rows by the square of the width.
    """
    profile = json.loads(Path(args.profile).read_text())[args.rot_backend][args.preset]
    fn, params, x = redcnn_lite(64)
    be = hejax.backends.get(args.rot_backend, preset=args.preset)
    programs = {
        t: hejax.compile(fn, params, x, backend=be, transform=t)
        for t in ("shift", "shift-out")
    }
    transform = min(programs, key=lambda t: programs[t].cost(profile))
    program = programs[transform]
    seconds, out = time_server(program, be, x)
    err = float(np.max(np.abs(out - np.asarray(fn(params, x))[0])))
    factor = seconds / program.cost(profile)
    bytes_ct = 2 * be.capabilities.ring_dim * 8 * (be.capabilities.max_depth + 1)
    rounds = 1 + sum(b.kind == "refresh" for b in program.boundaries)
    lite = {
        64: (seconds, program.cost(profile), program.input.count,
             f"measured (max error {err:.1e})"),
    }  # fmt: skip
    if not args.quick:
        fn5, params5, x5 = redcnn_lite(512)
        big = hejax.compile(fn5, params5, x5, backend=be, transform=transform)
        predicted = big.cost(profile)
        lite[512] = (predicted * factor, predicted, big.input.count,
                     "compiled 512×512 op counts × primitives.json × "
                     f"{factor:.2f} (measured / predicted at 64×64)")  # fmt: skip
        del big
        gc.collect()
    rows = []
    enc = profile["encrypt"][0]
    for name, width_factor in (("RED-CNN-lite", 1), ("RED-CNN-paper (96 ch)", 36)):
        for size, (server, predicted, cts, label) in lite.items():
            if width_factor != 1:
                label = f"extrapolated: the lite row × {width_factor} (width²)"
            rows.append(
                Row(name, size, transform, f"{args.rot_backend} {args.preset}", 1,
                    server * width_factor, cts * enc, cts * bytes_ct / 2**20,
                    float("nan"), rounds, 0, label, predicted * width_factor)
            )  # fmt: skip
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default="openfhe-bfv,tenseal-bfv")
    ap.add_argument("--rot-backend", default="openfhe")
    ap.add_argument("--preset", default="n16384", help="rotation backend preset")
    ap.add_argument("--profile", default=str(RESULTS / "primitives.json"))
    ap.add_argument("--quick", action="store_true", help="skip the 512×512 runs")
    ap.add_argument(
        "--paper", action="store_true", help="also run the paper model at 64×64"
    )
    args = ap.parse_args()
    info = machine()
    rows, costs = [], {}
    for name in args.backends.split(","):
        be = hejax.backends.get(name)
        cost = costs[name] = primitive_costs(be)
        plan = [
            ("RED-CNN-lite", 64, 16, True, "off", 1),
            ("RED-CNN-lite", 64, 16, True, "channel", 1),
            ("RED-CNN-paper (96 ch)", 64, 96, args.paper, "off", 1),
            ("RED-CNN-lite", 512, 16, not args.quick, "off", 1),
            ("RED-CNN-lite", 512, 16, not args.quick, "off", 2),
            ("RED-CNN-paper (96 ch)", 512, 96, False, "off", 1),
        ]
        for model, size, features, measure, masks, workers in plan:
            start = time.perf_counter()
            rows.append(
                run_coef(model, size, features, be, cost, measure, masks, workers)
            )
            print(f"{name} {model} {size} {masks} x{workers}: "
                  f"{time.perf_counter() - start:.0f} s", flush=True)  # fmt: skip
    start = time.perf_counter()
    rows += rotation_rows(args)
    print(f"rotation: {time.perf_counter() - start:.0f} s", flush=True)
    write(rows, costs, info, args)


def _fmt(v):
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:,.1f}" if v >= 10 else f"{v:.2f}"
    return str(v)


def ratio_lines(rows: list[Row]) -> list[str]:
    """Rotation server time over the best single-thread coef server time."""
    out = []
    for size in (64, 512):
        for model in ("RED-CNN-lite", "RED-CNN-paper (96 ch)"):
            rot = [r for r in rows if r.transform != "coef" and r.model == model
                   and r.size == size]  # fmt: skip
            for backend in sorted({r.backend for r in rows if r.transform == "coef"}):
                coef = [r for r in rows if r.transform == "coef" and r.model == model
                        and r.size == size and r.backend == backend
                        and r.workers == 1]  # fmt: skip
                if coef and rot:
                    out.append(
                        f"- {model}, {size}×{size}, {backend}: rotation server / coef "
                        f"server = {rot[0].server_s / coef[0].server_s:,.0f}× (coef "
                        f"{coef[0].source}; rotation {rot[0].source})"
                    )
    return out


def end_to_end_lines(rows: list[Row]) -> list[str]:
    out = []
    for r in rows:
        if r.transform == "coef" and r.size == 512 and r.source == "measured":
            out.append(
                f"- {r.model}, {r.backend}, {r.workers} thread(s) per party: "
                f"{r.total_s:,.0f} s (server {r.server_s:,.0f} s + client "
                f"{r.client_s:,.0f} s), exact: {r.exact}"
            )
    return out


def write(rows, costs, info, args) -> None:
    header = ["model", "size", "transform", "backend", "threads", "server s",
              "client s", "MB up", "MB down", "rounds", "moduli", "exact", "source",
              "predicted server s"]  # fmt: skip
    body = [
        [r.model, f"{r.size}×{r.size}", r.transform, r.backend, r.workers,
         _fmt(r.server_s), _fmt(r.client_s), _fmt(r.mb_up), _fmt(r.mb_down),
         r.rounds, r.moduli or "", r.exact, r.source,
         _fmt(r.predicted_server_s) if r.predicted_server_s is not None else ""]
        for r in rows
    ]  # fmt: skip
    names = list(costs)
    prims = list(costs[names[0]])
    cost_rows = [
        [k, *(f"{costs[n][k] * 1e3:.3f}" if not k.startswith("bytes")
              else f"{costs[n][k]:,}" for n in names)]
        for k in prims
    ]  # fmt: skip
    text = [
        "# coef transform vs rotation transforms",
        "",
        *md_table(header, body),
        "",
        "Server-time ratio, one thread each (aim: ≥ 50× at 512×512):",
        *ratio_lines(rows),
        "",
        "RED-CNN-lite on a full 512×512 slice end to end (aim: < 30 s on 2 cores):",
        *end_to_end_lines(rows),
        "",
        "Coef primitive costs (ms; bytes per ciphertext), measured in this run:",
        "",
        *md_table(["primitive", *names], cost_rows),
        "",
        "Notes. Weights are seeded random (linear variant, the last layer's zero "
        "kernel replaced by a random one), so every layer costs what a trained one "
        "would; coef uses masks='off' unless the row says otherwise, and bounds "
        "calibrated on a second seeded image (the client checks them; both "
        "measured images stayed inside). Server and client seconds are wall "
        "time of each party's calls in one process, so with 2 threads per party "
        "both parties still take turns. Client time of the rotation rows counts "
        "only encrypting the input (their refresh rounds are not modelled). "
        "`predicted server s` is the op-count prediction (coef: this run's "
        "primitive costs; rotation: primitives.json), shown next to measured "
        "rows to check the model used for the extrapolated ones.",
        "",
        *machine_md(info),
    ]
    (RESULTS / "coef.md").write_text("\n".join(text) + "\n")
    (RESULTS / "coef.json").write_text(
        json.dumps([dataclasses.asdict(r) for r in rows], indent=1, default=str)
    )
    print((RESULTS / "coef.md").read_text())


if __name__ == "__main__":
    main()
