"""Attack (a): recover the input image from what the server or the wire sees.

A model is trained on (ciphertext view, image) pairs of one key set (the
attacker may observe many sessions of one client) and tested on held-out
images: ridge regression (penalty chosen on held-out training images) and a
one-hidden-layer network (flax, optax) fitted to what ridge leaves.
Views: the ciphertext payload's bytes, and its 64-bit words as floats
(for OpenFHE these are the RNS coefficients of the ciphertext
polynomials; for the clear backend, the float64 slot values themselves).
The clear backend is the positive control: its "ciphertext" is the image.

Run: python examples/security/reconstruct.py [--n 600] [--backend openfhe]
"""

from __future__ import annotations

import argparse
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from _views import ciphertext_payloads, input_program

import hejax
from hejax.ldct import data, metrics


@dataclasses.dataclass
class Result:
    backend: str
    view: str
    features: int
    psnr: float
    ssim: float
    psnr_mean_image: float
    ssim_mean_image: float


def _words(payload: bytes, dtype: str) -> np.ndarray:
    if dtype == "<f8":
        return np.frombuffer(payload[: len(payload) // 8 * 8], "<f8")
    # Align to the 64-bit coefficients: most of them are below 2^60.
    best = max(
        range(8),
        key=lambda o: np.mean(
            np.frombuffer(payload[o : o + (len(payload) - o) // 8 * 8], "<u8") < 2**60
        ),
    )
    words = np.frombuffer(payload[best : best + (len(payload) - best) // 8 * 8], "<u8")
    return words.astype(np.float64) / 2.0**64


def observe(backend_name: str, images: np.ndarray, max_features: int):
    """Encrypt every image as a client would; return the views of the wire."""
    backend = hejax.backends.get(backend_name)
    size = images.shape[1]
    client = hejax.Client(input_program(backend, size))
    word_type = "<f8" if backend_name == "clear" else "<u8"
    views = {"bytes": [], "coefficients": []}
    for img in images:
        (payload,) = ciphertext_payloads(client.encrypt(img[None, :, :, None]))
        views["bytes"].append(np.frombuffer(payload, np.uint8)[:max_features] / 255.0)
        views["coefficients"].append(_words(payload, word_type)[:max_features])
    return {k: np.stack(v).astype(np.float32) for k, v in views.items()}


class _MLP(nn.Module):
    hidden: int
    out: int

    @nn.compact
    def __call__(self, x):
        hidden = nn.relu(nn.Dense(self.hidden)(x))
        return nn.Dense(self.out, kernel_init=nn.initializers.zeros)(hidden)


def _ridge(x, y, lam):
    """Dual-form ridge regression weights (cheap when features ≫ samples)."""
    gram = x @ x.T
    return x.T @ np.linalg.solve(gram + lam * np.eye(len(x)), y)


def _choose_lambda(x, y) -> float:
    """Pick the ridge penalty on a held-out fifth of the training set."""
    cut = len(x) // 5
    grid = [10.0**k * x.shape[1] for k in range(-6, 4)]
    errors = [
        np.mean((x[:cut] @ _ridge(x[cut:], y[cut:], lam) - y[:cut]) ** 2)
        for lam in grid
    ]
    return grid[int(np.argmin(errors))]


def fit_predict(x_train, y_train, x_test, hidden: int, steps: int, seed: int = 0):
    """Ridge regression, then an MLP (Adam, MSE) on its residual; predict."""
    mu, sd = x_train.mean(0), x_train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    xt = ((x_train - mu) / sd).astype(np.float64)
    xs = ((x_test - mu) / sd).astype(np.float64)
    base = y_train.mean(0)
    w = _ridge(xt, y_train - base, _choose_lambda(xt, y_train - base))
    linear_train, linear_test = xt @ w + base, xs @ w + base
    xt, xs = xt.astype(np.float32), xs.astype(np.float32)
    target = (y_train - linear_train).astype(np.float32)
    model = _MLP(hidden, y_train.shape[1])
    params = model.init(jax.random.key(seed), xt[:1])
    opt = optax.adamw(1e-3, weight_decay=1e-4)
    state = opt.init(params)

    @jax.jit
    def step(params, state):
        def loss(p):
            return jnp.mean((model.apply(p, xt) - target) ** 2)

        grads = jax.grad(loss)(params)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    for _ in range(steps):
        params, state = step(params, state)
    return linear_test + np.asarray(model.apply(params, xs))


def score(truth: np.ndarray, guess: np.ndarray) -> tuple[float, float]:
    guess = np.clip(guess, 0.0, 1.0)
    p = [metrics.psnr(t, g) for t, g in zip(truth, guess, strict=True)]
    s = [metrics.ssim(t, g) for t, g in zip(truth, guess, strict=True)]
    return float(np.mean(p)), float(np.mean(s))


def attack(
    backend_name: str,
    n: int = 600,
    size: int = 16,
    test_fraction: float = 0.2,
    max_features: int = 8192,
    hidden: int = 64,
    steps: int = 400,
) -> list[Result]:
    """Run the reconstruction attack for every view of one backend."""
    images = np.stack(
        [data.random_phantom(size, seed=1000 + i, units="unit") for i in range(n)]
    ).astype(np.float64)
    n_test = int(n * test_fraction)
    views = observe(backend_name, images, max_features)
    flat = images.reshape(n, -1).astype(np.float32)
    y_train, y_test = flat[n_test:], flat[:n_test]
    mean_guess = np.broadcast_to(y_train.mean(0), y_test.shape)
    truth = images[:n_test]
    base_p, base_s = score(truth, mean_guess.reshape(truth.shape))
    out = []
    for view, x in views.items():
        guess = fit_predict(x[n_test:], y_train, x[:n_test], hidden, steps)
        p, s = score(truth, guess.reshape(truth.shape))
        out.append(Result(backend_name, view, x.shape[1], p, s, base_p, base_s))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--backend", action="append")
    args = parser.parse_args()
    for name in args.backend or ["clear", "openfhe"]:
        for r in attack(name, n=args.n):
            print(r)


if __name__ == "__main__":
    main()
