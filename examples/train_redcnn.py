"""Train RED-CNN denoisers on simulated LDCT phantoms and ship their weights.

Each variant is trained from scratch with the given seed, evaluated on
held-out phantoms and on the real pydicom slice (both with simulated dose
reduction), written as ``redcnn-<preset>-<variant>.msgpack`` and recorded in
``manifest.json`` of the output folder (by default the package's
``hejax/ldct/weights``, which is what ``load_pretrained`` reads).

    python examples/train_redcnn.py --variant all --seed 0
    python examples/train_redcnn.py --variant linear --steps 50 --out /tmp/w
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shlex
import sys
import time
from pathlib import Path

from hejax.ldct import data, models, pretrained, train

WEIGHTS = Path(__file__).resolve().parents[1] / "hejax" / "ldct" / "weights"


def parse_args(argv: list[str]) -> argparse.Namespace:
    defaults = train.TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="all", choices=[*models.VARIANTS, "all"])
    parser.add_argument("--preset", default="lite", choices=list(models.PRESETS))
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--n-images", type=int, default=defaults.n_images)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--out", type=Path, default=WEIGHTS)
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def evaluate(model, params) -> dict[str, dict[str, float]]:
    """PSNR/SSIM gains on held-out phantoms and on the real slice."""
    results = {}
    for i0 in train.EVAL_I0:
        dose = data.DoseConfig(i0_low=i0)
        low, normal = data.simulate_dataset(
            train.HELDOUT_IMAGES, train.HELDOUT_SEED, config=dose
        )
        results[f"heldout_i0={i0:g}"] = train.evaluate(model, params, low, normal)
        low, normal = data.example_pair(train.HELDOUT_SEED, dose)
        results[f"real_slice_i0={i0:g}"] = train.evaluate(model, params, low, normal)
    return results


def record(out: Path, name: str, entry: dict) -> None:
    path = out / pretrained.MANIFEST
    book = json.loads(path.read_text()) if path.is_file() else {}
    book[name] = entry
    path.write_text(json.dumps(book, indent=2, sort_keys=True) + "\n")


def run_variant(args: argparse.Namespace, variant: str) -> None:
    model = models.make_model(args.preset, variant)
    config = train.TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        n_images=args.n_images,
        learning_rate=args.learning_rate,
        seed=args.seed,
    )
    start = time.perf_counter()
    result = train.train_model(model, config, progress=not args.no_progress)
    total = time.perf_counter() - start
    scores = evaluate(model, result.params)

    name = pretrained.weights_name(args.preset, variant)
    path = pretrained.save_params(result.params, args.out / name)
    record(
        args.out,
        name,
        {
            "preset": args.preset,
            "variant": variant,
            "features": model.features,
            "kernel_size": model.kernel_size,
            "command": "python examples/train_redcnn.py " + shlex.join(args.argv),
            "train_config": dataclasses.asdict(config),
            "dose_config": dataclasses.asdict(data.DoseConfig()),
            "train_seconds": round(result.seconds, 1),
            "total_seconds": round(total, 1),
            "final_loss": float(result.losses[-50:].mean()),
            "machine": f"{platform.machine()}, {platform.python_version()}",
            "evaluation": scores,
        },
    )
    print(f"{variant}: {path} ({path.stat().st_size} bytes), {total:.0f} s")
    for where, score in scores.items():
        print(
            f"  {where:<24} PSNR {score['psnr_low']:.2f} -> "
            f"{score['psnr_denoised']:.2f} dB (+{score['psnr_gain']:.2f}), "
            f"SSIM {score['ssim_low']:.3f} -> {score['ssim_denoised']:.3f}"
        )


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    args.argv = argv
    args.out.mkdir(parents=True, exist_ok=True)
    variants = list(models.VARIANTS) if args.variant == "all" else [args.variant]
    for variant in variants:
        run_variant(args, variant)


if __name__ == "__main__":
    main()
