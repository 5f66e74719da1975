"""Helpers shared by the benchmark scripts: timing, machine facts, RED-CNN."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
HE_BACKENDS = ("openfhe", "tenseal")

# A sample should last at least this long; faster ops are looped inside it.
MIN_SAMPLE_S = 2e-3
# Ops slower than this get `SLOW_REPEATS` samples instead of the full count.
SLOW_OP_S = 0.05
SLOW_REPEATS = 5


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of one call of `fn` in seconds, after one warm-up.

    Calls faster than `MIN_SAMPLE_S` are repeated inside each sample and the
    sample is divided by the count, so the timer's resolution does not matter.
    """
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    inner = max(1, int(MIN_SAMPLE_S / max(first, 1e-7)))
    if first > SLOW_OP_S:
        repeats = min(repeats, SLOW_REPEATS)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def version(dist: str) -> str:
    """Installed version of a distribution, or ``"missing"``."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (or the platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    """Facts about the host and the software, for the results' header."""
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "unset"),
        "load average (1, 5, 15 min) at start": load,
        "python": platform.python_version(),
        "openfhe": version("openfhe"),
        "tenseal": version("tenseal"),
        "numpy": version("numpy"),
        "jax": version("jax"),
        "flax": version("flax"),
    }


def machine_md(info: dict[str, str]) -> list[str]:
    """The machine facts as a two-column markdown table."""
    lines = ["| | |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in info.items()]
    return lines


def md_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A markdown table from a header and rows of cells."""
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return lines


def redcnn_lite(size: int, seed: int = 0, features: int = 16):
    """RED-CNN-lite, linear variant, with seeded random weights (see `redcnn`)."""
    return redcnn(size, seed, features=features)


def redcnn(
    size: int,
    seed: int = 0,
    *,
    preset: str = "lite",
    variant: str = "linear",
    features: int | None = None,
):
    """A RED-CNN with seeded random weights and a seeded random input.

    Args:
        size: image side.
        seed: seed of the weights and of the image.
        preset: ``"lite"`` (16 channels) or ``"paper"`` (96).
        variant: ``"linear"``, ``"last-relu"`` or ``"all-relu"``.
        features: channels of the hidden layers, to replace the preset's.

    Returns:
        ``(fn, params, x)``: ``fn(params, x)`` applies the model, `x` is a
        seeded random image of shape ``(1, size, size, 1)`` in [0, 1].

    The untrained model's last transposed convolution starts at zero (so
    that the model is the identity); a zero kernel would make that layer
    free in HE, so it is replaced by a seeded random one of the same scale
    as the other layers.
    """
    import jax
    import numpy as np

    from hejax.ldct import models

    overrides = {} if features is None else {"features": features}
    model = models.make_model(preset, variant, **overrides)
    params = models.init_params(model, (1, size, size, 1), seed=seed)
    params = jax.tree_util.tree_map(np.asarray, params)
    rng = np.random.default_rng(seed)
    kernel = params["tconv5"]["kernel"]
    scale = float(np.std(params["tconv4"]["kernel"]))
    params["tconv5"]["kernel"] = (rng.standard_normal(kernel.shape) * scale).astype(
        kernel.dtype
    )
    x = rng.uniform(0.0, 1.0, (1, size, size, 1)).astype(np.float32)

    def fn(p, img):
        return model.apply({"params": p}, img)

    return fn, params, x
