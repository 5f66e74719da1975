"""Per-round server and client time and bytes of RED-CNN-lite (all-ReLU).

For each image size (64×64, 512×512) and HE backend (openfhe, tenseal) this
compiles the shipped RED-CNN-lite all-ReLU model, and records, round by
round, the server's time, the client's time (decrypt, ReLU, re-encrypt) and
the bytes each way.

- 64×64 runs in full through ``hejax.run``: a Client and a Server that
  share only bytes, masks per element with a permutation, as `hejax
  denoise` uses them. Its output is checked against the plaintext model.
- 512×512 would take hours per backend, so it is extrapolated, and the
  table says so: each round's server time is ``Program.cost(profile)`` of
  that round's instructions times the measured / predicted ratio of the
  64×64 run on the same backend; a prefix of the first round is run on
  ciphertexts at 512×512 to check that ratio. Client time and bytes are
  the ciphertext counts of each round times the per-ciphertext client time
  and bytes measured in the same round of the 64×64 run (the client's work
  is the same for every ciphertext of a round).

Writes ``bench/results/rounds.md`` and ``rounds.json``. Run
``bench/primitives.py`` first (for the cost profile), then, from the
repository root::

    OMP_NUM_THREADS=1 .venv/bin/python bench/rounds.py
    OMP_NUM_THREADS=1 .venv/bin/python bench/rounds.py --sizes 64 --quick
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common  # noqa: E402
import transforms as tbench  # noqa: E402

import hejax  # noqa: E402
from hejax.ldct import data, load_pretrained  # noqa: E402


@dataclasses.dataclass
class RoundRow:
    """One round of one configuration."""

    size: int
    backend: str
    index: int
    ends: str
    layer: str
    ciphertexts: int
    server_s: float
    client_s: float
    to_client: int
    to_server: int
    predicted_s: float
    extrapolated: bool


@dataclasses.dataclass
class Config:
    """What one (size, backend) run gave, besides its rounds."""

    size: int
    backend: str
    preset: str
    instrs: int
    compile_s: float
    rotation_keys: int
    tiles: int
    bundle_bytes: int | None
    max_err: float | None
    check: str = ""


def model_input(size: int, seed: int) -> tuple:
    """The shipped all-ReLU model and a low-dose input of `size`² pixels.

    64×64 is the centre of the real pydicom slice; 512×512 is a random
    ellipse phantom, both with a simulated dose of I0 = 2.5e4.
    """
    model, params = load_pretrained("all-relu")
    if size <= 128:
        low, _ = data.example_pair(seed)
        top = (low.shape[0] - size) // 2
        low = low[top : top + size, top : top + size]
    else:
        low = data.simulate_dose(data.random_phantom(size, seed), 2.5e4, seed)
    x = data.hu_to_unit(low)[None, :, :, None].astype(np.float32)

    def fn(p, img):
        return model.apply({"params": p}, img)

    return fn, params, x


def round_layer(program, r) -> str:
    return "output" if r.boundary is None else program.boundaries[r.boundary].layer


def round_cts(program, r) -> int:
    """Ciphertexts the round hands to the client."""
    if r.boundary is None:
        return program.output.count
    return program.boundaries[r.boundary].before.count


def predicted_rounds(program, profile) -> list[float]:
    """Predicted server seconds of each round (``Program.cost`` of its slice)."""
    return [
        dataclasses.replace(program, instrs=program.instrs[r.start : r.stop]).cost(
            profile
        )
        for r in hejax.schedule(program)
    ]


def describe(program, args, compile_s, bundle, err, check="") -> Config:
    """The facts of one compiled configuration."""
    side = program.graph.input.shape[0]
    return Config(
        side,
        program.backend,
        args.preset,
        len(program.instrs),
        compile_s,
        len(program.rotations),
        program.input.grid.tiles,
        bundle,
        err,
        check,
    )


def run_full(args, size, backend, model, bar) -> tuple[Config, list[RoundRow]]:
    """Run the whole protocol and record every round."""
    fn, params, x = model
    be = hejax.backends.get(backend, preset=args.preset)
    profile = tbench.load_profile(args.profile, backend, args.preset)
    start = time.perf_counter()
    program = hejax.compile(fn, params, x, backend=be, unmask=args.unmask)
    compile_s = time.perf_counter() - start
    predicted = predicted_rounds(program, profile)
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle(), masks=args.masks)
    bar.set_postfix_str(f"{size}² {backend}: running")
    out, transcript = hejax.run(client, server, x)
    err = float(np.max(np.abs(out - np.asarray(fn(params, x)))))
    rounds = hejax.schedule(program)
    rows = [
        RoundRow(
            size,
            backend,
            rec.index,
            rec.ends,
            round_layer(program, r),
            rec.ciphertexts,
            rec.server_seconds,
            rec.client_seconds,
            rec.bytes_to_client,
            rec.bytes_to_server,
            pred,
            False,
        )
        for rec, r, pred in zip(transcript.rounds, rounds, predicted, strict=True)
    ]
    return describe(program, args, compile_s, transcript.bundle_bytes, err), rows


def run_extrapolated(args, size, backend, model, measured, measured_tiles, bar):
    """Predict every round of `size`² from the measured 64×64 rounds."""
    fn, params, x = model
    be = hejax.backends.get(backend, preset=args.preset)
    profile = tbench.load_profile(args.profile, backend, args.preset)
    bar.set_postfix_str(f"{size}² {backend}: compiling")
    start = time.perf_counter()
    program = hejax.compile(fn, params, x, backend=be, unmask=args.unmask)
    compile_s = time.perf_counter() - start
    rounds = hejax.schedule(program)
    small = [r for r in measured if r.backend == backend]
    if [r.ends for r in small] != [r.ends for r in rounds]:
        raise SystemExit(f"{size}² and the measured run have different rounds")
    ratio = sum(r.server_s for r in small) / sum(r.predicted_s for r in small)
    predicted = predicted_rounds(program, profile)

    # Check the ratio on ciphertexts: a prefix of the first round at full size.
    first = dataclasses.replace(program, instrs=program.instrs[: rounds[0].stop])
    stop, layers = tbench.prefix_stop(first, profile, args.prefix_seconds)
    part = tbench.head(program, stop)
    bar.set_postfix_str(f"{size}² {backend}: timing {stop} instructions")
    seconds, _ = tbench.time_server(part, be, x, whole=False)
    prefix_ratio = seconds / part.cost(profile)
    check = (
        f"prefix of round 0 ({layers}, {stop:,} instructions) measured "
        f"{seconds:.1f} s = {prefix_ratio:.2f}× its prediction; the 64×64 "
        f"ratio used is {ratio:.2f}×"
    )
    # Every round hands over channels × tiles ciphertexts, the channels alike
    # at both sizes, so the client's time and bytes scale with the tiles.
    tiles = program.input.grid.tiles / measured_tiles[backend]
    rows = [
        RoundRow(
            size,
            backend,
            r.index,
            r.ends,
            round_layer(program, r),
            round_cts(program, r),
            pred * ratio,
            ref.client_s * tiles,
            int(ref.to_client * tiles),
            int(ref.to_server * tiles),
            pred,
            True,
        )
        for r, pred, ref in zip(rounds, predicted, small, strict=True)
    ]
    config = describe(program, args, compile_s, None, None, check)
    del program, first, part
    gc.collect()
    return config, rows


def mb(n: float) -> str:
    return f"{n / 2**20:,.1f}"


def write_md(path: Path, configs, rows, info, args, load_end) -> None:
    """The per-round tables, one per configuration, and how they were made."""
    lines = ["# RED-CNN-lite (all-ReLU): time and bytes per round", ""]
    head = ["size", "backend", "rounds", "server s", "client s", "MB to client"]
    head += ["MB to server", "tiles", "rotation keys", "max \\|enc − plain\\|"]
    summary = []
    for c in configs:
        mine = [r for r in rows if (r.size, r.backend) == (c.size, c.backend)]
        mark = " (extrapolated)" if mine and mine[0].extrapolated else ""
        summary.append(
            [
                f"{c.size}×{c.size}{mark}",
                c.backend,
                len(mine),
                f"{sum(r.server_s for r in mine):,.1f}",
                f"{sum(r.client_s for r in mine):,.1f}",
                mb(sum(r.to_client for r in mine)),
                mb(sum(r.to_server for r in mine)),
                c.tiles,
                c.rotation_keys,
                "—" if c.max_err is None else f"{c.max_err:.1e}",
            ]
        )
    lines += _common.md_table(head, summary)
    lines += [
        "",
        METHOD.format(preset=args.preset, masks=args.masks, unmask=args.unmask),
        "",
    ]
    for c in configs:
        mine = [r for r in rows if (r.size, r.backend) == (c.size, c.backend)]
        kind = "extrapolated" if mine and mine[0].extrapolated else "measured"
        lines += [f"## {c.size}×{c.size}, {c.backend} ({kind})", ""]
        facts = f"{c.instrs:,} instructions, compiled in {c.compile_s:.0f} s"
        if c.bundle_bytes is not None:
            facts += f"; public bundle {mb(c.bundle_bytes)} MB, sent once"
        lines += [facts + ".", ""]
        if c.check:
            lines += [f"Check: {c.check}.", ""]
        table = [
            [
                r.index,
                r.ends,
                r.layer,
                r.ciphertexts,
                f"{r.server_s:,.2f}",
                f"{r.predicted_s:,.2f}",
                f"{r.client_s:,.2f}",
                mb(r.to_client),
                mb(r.to_server),
            ]
            for r in mine
        ]
        lines += _common.md_table(
            [
                "round",
                "ends",
                "at",
                "cts",
                "server s",
                "predicted s",
                "client s",
                "MB to client",
                "MB to server",
            ],
            table,
        )
        lines.append("")
    lines += ["## Machine", ""] + _common.machine_md(info)
    lines += [f"| load average at end | {load_end} |", ""]
    path.write_text("\n".join(lines))


METHOD = """\
Each round: the server runs its instructions up to a ReLU boundary (or the
output) and sends the masked ciphertexts to the client; the client decrypts,
applies ReLU, re-encrypts and sends them back. *client s* of a round is the
client's work that started it (encrypting the image for round 0, answering
the previous round otherwise) plus, in the output round, decrypting the
output; *MB to server* is the message that started the round. Preset
{preset} for both backends, masks {masks!r} (per element, with a permutation
of ciphertexts), unmasking {unmask!r}. Times are wall-clock seconds of one
run on a shared 2-core host (`OMP_NUM_THREADS=1`): compare the backends by
their ratio rather than their absolute values.

*predicted s* is `Program.cost` of the round's instructions with the
primitive profile in `bench/results/primitives.json`. 512×512 rows are
extrapolated (a measured run would take hours): server time = predicted ×
the measured/predicted ratio of the 64×64 run on the same backend, checked
on ciphertexts on a prefix of the first round; client time and bytes = the
64×64 round's values × the number of tiles (each round sends channels ×
tiles ciphertexts, and the client's work per ciphertext does not depend on
the image size)."""


def parse(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="64,512")
    p.add_argument("--backends", default=",".join(_common.HE_BACKENDS))
    p.add_argument("--preset", default="n16384")
    p.add_argument("--masks", default="element")
    p.add_argument("--unmask", default="explicit")
    p.add_argument("--profile", type=Path, default=_common.RESULTS / "primitives.json")
    p.add_argument("--out", type=Path, default=_common.RESULTS)
    p.add_argument(
        "--prefix-seconds",
        type=float,
        default=60.0,
        help="predicted time of the 512×512 prefix run on ciphertexts",
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.backends = args.backends.split(",")
    if args.sizes[0] > 128:
        raise SystemExit("the smallest size must be measured in full (≤ 128)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    for backend in args.backends:
        tbench.load_profile(args.profile, backend, args.preset)
    info = _common.machine()
    args.out.mkdir(parents=True, exist_ok=True)
    configs, rows, tiles = [], [], {}
    todo = [(s, b) for s in args.sizes for b in args.backends]
    with tqdm(total=len(todo), unit="config") as bar:
        for size, backend in todo:
            model = model_input(size, args.seed)
            if size == args.sizes[0]:
                config, mine = run_full(args, size, backend, model, bar)
                tiles[backend] = config.tiles
            else:
                measured = [r for r in rows if r.size == args.sizes[0]]
                config, mine = run_extrapolated(
                    args, size, backend, model, measured, tiles, bar
                )
            configs.append(config)
            rows += mine
            bar.write(
                f"{size}² {backend}: server {sum(r.server_s for r in mine):.1f} s, "
                f"client {sum(r.client_s for r in mine):.1f} s"
            )
            bar.update()
            save(args, configs, rows, info)
            gc.collect()
    print(f"wrote {args.out / 'rounds.md'} and rounds.json")


def save(args, configs, rows, info) -> None:
    """Write what has been measured so far (a crash keeps it)."""
    load_end = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    write_md(args.out / "rounds.md", configs, rows, info, args, load_end)
    blob = {
        "machine": info,
        "configs": [dataclasses.asdict(c) for c in configs],
        "rounds": [dataclasses.asdict(r) for r in rows],
    }
    (args.out / "rounds.json").write_text(json.dumps(blob, indent=1) + "\n")


if __name__ == "__main__":
    main()
