"""Attack (b): the client estimates the first conv layer from round 1.

The client knows its inputs and decrypts, in the first ReLU round, the
masked pre-activations ``P·D·(W * x + b)``. For each output channel it
fits the 5×5 filter and bias by least squares on the masked values, and
separately on their signs alone (which per-element masks keep exactly).
Each request is fitted alone; with permuted channels its estimates are
aligned to the first request's by the Hungarian algorithm on their cosine
similarity (no truth needed); the aligned requests are then combined (see
:func:`estimate`).
Scores: cosine similarity of each estimated filter with the true one,
matched up to permutation, averaged over channels.

Run: python examples/security/extract.py [--requests 8]
"""

from __future__ import annotations

import argparse
import dataclasses

import jax
import numpy as np
from _views import first_relu_round, redcnn
from scipy.optimize import linear_sum_assignment

import hejax

MODES = {
    "off": ("off", False),
    "channel": ("channel", False),
    "channel + permutation": ("channel", True),
    "element": ("element", False),
    "element + permutation": ("element", True),
}


@dataclasses.dataclass
class Result:
    backend: str
    mode: str
    requests: int
    cosine_values: float
    cosine_signs: float


def patches(x: np.ndarray, k: int) -> np.ndarray:
    """VALID k×k patches of a (1, H, W, 1) image with a bias column."""
    img = x[0, :, :, 0]
    h, w = img.shape[0] - k + 1, img.shape[1] - k + 1
    rows = [img[i : i + h, j : j + w].reshape(-1) for i in range(k) for j in range(k)]
    return np.column_stack([*rows, np.ones(h * w)])


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=0, keepdims=True)
    b = b / np.linalg.norm(b, axis=0, keepdims=True)
    return a.T @ b


def _fit(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(a, y, rcond=None)[0]


def estimate(designs, seen, use_signs: bool) -> np.ndarray:
    """Filters (k²+1, C) from per-request designs and observed NHWC values.

    Each request is fitted on its own and its channels aligned to the first
    request's. If the fits are exact (masks off or per channel: the values
    are affine in the patches up to one factor per channel), the unit-norm
    estimates are averaged; otherwise (per-element masks) one least-squares
    fit on all requests' aligned data averages the masks out. The rule needs
    no truth: the client sees the residual.
    """
    ys = [s.reshape(-1, s.shape[-1]) for s in seen]
    ys = [np.sign(y) if use_signs else y for y in ys]
    fits = [_fit(a, y) for a, y in zip(designs, ys, strict=True)]
    exact = all(
        np.linalg.norm(a @ t - y) <= 1e-6 * np.linalg.norm(y)
        for a, t, y in zip(designs, fits, ys, strict=True)
    )
    units, aligned = [], []
    for theta, y in zip(fits, ys, strict=True):
        rows, cols = linear_sum_assignment(-_cos(fits[0][:-1], theta[:-1]))
        order = cols[np.argsort(rows)]
        units.append(theta[:, order] / np.linalg.norm(theta[:, order], axis=0))
        aligned.append(y[:, order])
    if exact:
        return np.mean(units, axis=0)
    return _fit(np.vstack(designs), np.vstack(aligned))


def score(theta: np.ndarray, kernel: np.ndarray) -> float:
    """Mean cosine of filters with the true ones, best matching."""
    true = kernel.reshape(-1, kernel.shape[-1])
    sim = _cos(theta[:-1], true)
    rows, cols = linear_sum_assignment(-sim)
    return float(sim[rows, cols].mean())


def attack(
    backend_name: str = "clear",
    modes=tuple(MODES),
    requests: int = 8,
    size: int = 32,
    features: int = 4,
    seed: int = 0,
    mask_seed: int | None = None,
) -> list[Result]:
    """Run the extraction for each mask mode; the client picks random inputs.

    Masks are fresh from the OS per request unless `mask_seed` is given
    (tests), which seeds request ``r``'s masks with ``mask_seed + r``.
    """
    fn, params = redcnn(features, size, seed)
    kernel = np.asarray(params["conv1"]["kernel"])[:, :, 0, :]
    rng = np.random.default_rng(seed + 1)
    xs = [rng.uniform(0, 1, (1, size, size, 1)) for _ in range(requests)]
    with jax.experimental.enable_x64():
        program = hejax.compile(fn, params, xs[0], backend=backend_name)
    designs = [patches(x, kernel.shape[0]) for x in xs]
    out = []
    for name in modes:
        masks, permute = MODES[name]
        seen = [
            first_relu_round(
                program, x, masks, permute, None if mask_seed is None else mask_seed + r
            )
            for r, x in enumerate(xs)
        ]
        values = score(estimate(designs, seen, False), kernel)
        signs = score(estimate(designs, seen, True), kernel)
        out.append(Result(backend_name, name, requests, values, signs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8)
    args = parser.parse_args()
    for r in attack(requests=args.requests):
        print(r)


if __name__ == "__main__":
    main()
