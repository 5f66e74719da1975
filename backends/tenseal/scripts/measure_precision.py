"""Measure the error of the tenseal backend after the hejax precision definition.

The definition (``Capabilities.precision``): one encrypt, up to `max_depth`
rounds of 64-term sums of products by weights of magnitude ≤ 1, each round
followed by a rescale, and decrypt, for inputs of magnitude ≤ 1.

Each round here turns 8 ciphertexts into 8 new ones; every new one sums 64
products ``w ⊙ rot(c, r)`` over the 8 ciphertexts ``c`` and 8 rotations
``r`` (0 included), so rotation noise is part of every term. Two weight
laws are run: ``full`` draws weights uniformly from [-1, 1] for one round
(values then grow about 4.6 times, so more rounds would leave the safe
range), ``unit`` scales them by √3/8 so the values keep their size over all
rounds. The script prints the largest error of each and the bound the
backend states; run it after changing presets:

    python backends/tenseal/scripts/measure_precision.py --preset n8192
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from hejax_tenseal import TenSEALBackend

ROTATIONS = (0, 1, 2, 3, 4, -1, -2, -3)
WIDTH = 8


def run_rounds(ctx, rng, rounds: int, gain: float) -> float:
    """Run `rounds` 64-term rounds; return the largest error over all rounds."""
    slots = ctx.slots
    xs = [rng.uniform(-1, 1, slots) for _ in range(WIDTH)]
    cts = [ctx.encrypt(x) for x in xs]
    worst = max(np.abs(ctx.decrypt(c) - x).max() for c, x in zip(cts, xs, strict=True))
    for _ in range(rounds):
        rolled = [[ctx.rotate(c, r) for r in ROTATIONS] for c in cts]
        plain = [[np.roll(x, -r) for r in ROTATIONS] for x in xs]
        new_cts, new_xs = [], []
        for _ in range(WIDTH):
            acc, ref = None, np.zeros(slots)
            for row_ct, row_x in zip(rolled, plain, strict=True):
                for c, x in zip(row_ct, row_x, strict=True):
                    w = gain * rng.uniform(-1, 1, slots)
                    term = ctx.mul_plain(c, w)
                    acc = term if acc is None else ctx.add(acc, term)
                    ref += w * x
            new_cts.append(ctx.rescale(acc))
            new_xs.append(ref)
        cts, xs = new_cts, new_xs
        errs = [np.abs(ctx.decrypt(c) - x).max() for c, x in zip(cts, xs, strict=True)]
        worst = max(worst, *errs)
    return float(worst)


def main() -> None:
    """Measure one preset and print the errors next to the stated bound."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="n8192")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--insecure", action="store_true")
    args = parser.parse_args()

    backend = TenSEALBackend(args.preset, insecure=args.insecure)
    caps = backend.capabilities
    ctx = backend.keygen(rotations=[r for r in ROTATIONS if r])
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    full = max(run_rounds(ctx, rng, 1, 1.0) for _ in range(args.trials))
    unit = max(
        run_rounds(ctx, rng, caps.max_depth, np.sqrt(3) / 8) for _ in range(args.trials)
    )
    print(
        f"{args.preset}: depth {caps.max_depth}, full round {full:.3g}, "
        f"unit rounds {unit:.3g}, stated {caps.precision:.3g} "
        f"(margin {caps.precision / max(full, unit):.1f}), "
        f"{time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
