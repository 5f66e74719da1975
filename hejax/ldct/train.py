"""Training and evaluation of RED-CNN denoisers on simulated LDCT data.

A model learns, with Adam and a mean-squared-error loss, to map low-dose
patches to normal-dose ones; both come from random phantoms scanned by
:mod:`hejax.ldct.data`. Every step of the way is seeded: the same
:class:`TrainConfig` gives the same weights on the same machine (XLA may
still round differently on another CPU).

:func:`evaluate` reports how much a model raises PSNR and SSIM over the
low-dose input, against the normal-dose image.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from collections.abc import Callable, Iterable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from hejax.errors import InvalidInputError
from hejax.ldct import data, metrics
from hejax.ldct.models import init_params

__all__ = [
    "EVAL_I0",
    "HELDOUT_IMAGES",
    "HELDOUT_SEED",
    "TrainConfig",
    "TrainResult",
    "denoise",
    "evaluate",
    "fit",
    "make_optimizer",
    "make_train_step",
    "mse_loss",
    "train_model",
]

logger = logging.getLogger(__name__)

HELDOUT_SEED = 10_000
"""Root seed of the held-out phantoms; training runs use other seeds."""

HELDOUT_IMAGES = 16
"""Number of held-out phantoms the shipped weights are evaluated on."""

EVAL_I0 = (1e4, 2.5e4)
"""Low-dose incident counts the shipped weights are evaluated at."""

Params = dict
TrainStep = Callable[
    [Params, optax.OptState, jax.Array, jax.Array],
    tuple[Params, optax.OptState, jax.Array],
]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run.

    Attributes:
        steps: optimiser steps.
        batch_size: patches per step.
        patch_size: side of the square training patches.
        learning_rate: peak Adam learning rate; it warms up linearly over the
            first 5% of the steps, then follows a cosine decay to 1% of it.
        n_images: phantoms simulated for the training set.
        image_size: side of each phantom.
        i0_low_range: range of low-dose incident counts, drawn log-uniformly
            per phantom (see :func:`hejax.ldct.data.simulate_dataset`).
        seed: root seed of the phantoms, the noise, the patches and the
            initial weights.
    """

    steps: int = 1000
    batch_size: int = 8
    patch_size: int = 64
    learning_rate: float = 1e-3
    n_images: int = 256
    image_size: int = 128
    i0_low_range: tuple[float, float] = (1e4, 5e4)
    seed: int = 0

    def __post_init__(self) -> None:
        """Check the sizes."""
        sizes = ("steps", "batch_size", "patch_size", "n_images", "image_size")
        bad = {k: getattr(self, k) for k in sizes if getattr(self, k) < 1}
        if bad or not self.learning_rate > 0:
            bad["learning_rate"] = self.learning_rate
            raise InvalidInputError(f"TrainConfig fields must be positive: {bad}")
        if self.patch_size > self.image_size:
            raise InvalidInputError(
                f"`patch_size`={self.patch_size} exceeds `image_size`={self.image_size}"
            )


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a training run produced.

    Attributes:
        params: the trained parameters.
        losses: the training loss of every step.
        seconds: wall time of the optimisation, without data simulation.
    """

    params: Params
    losses: np.ndarray
    seconds: float


def mse_loss(
    model: nn.Module, params: Params, low: jax.Array, normal: jax.Array
) -> jax.Array:
    """Mean squared error between the denoised ``low`` and ``normal``.

    Args:
        model: the denoiser.
        params: its parameters.
        low: low-dose input batch, NHWC.
        normal: normal-dose target batch, same shape.

    Returns:
        The scalar loss.
    """
    return jnp.mean((model.apply({"params": params}, low) - normal) ** 2)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam with linear warm-up and cosine decay, as set by ``config``.

    Args:
        config: the training settings.

    Returns:
        The optax optimiser.
    """
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=max(1, config.steps // 20),
        decay_steps=config.steps,
        end_value=config.learning_rate / 100,
    )
    return optax.adam(schedule)


def make_train_step(
    model: nn.Module, optimizer: optax.GradientTransformation
) -> TrainStep:
    """A jit-compiled optimisation step.

    Args:
        model: the denoiser.
        optimizer: the optax optimiser.

    Returns:
        ``step(params, opt_state, low, normal) -> (params, opt_state, loss)``.
    """

    @jax.jit
    def step(params, opt_state, low, normal):
        loss, grads = jax.value_and_grad(mse_loss, argnums=1)(
            model, params, low, normal
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step


def fit(
    model: nn.Module,
    params: Params,
    batches: Iterable[tuple[np.ndarray, np.ndarray]],
    steps: int,
    optimizer: optax.GradientTransformation,
    *,
    progress: bool = True,
) -> tuple[Params, np.ndarray]:
    """Run ``steps`` optimisation steps on ``batches``.

    Args:
        model: the denoiser.
        params: the initial parameters.
        batches: (low-dose, normal-dose) NHWC batches; at least ``steps``.
        steps: number of steps.
        optimizer: the optax optimiser.
        progress: show a tqdm progress bar with the running loss.

    Returns:
        ``(params, losses)``: the trained parameters and the loss of each
        step; if ``batches`` runs out first, a warning says so and only the
        steps done are returned.
    """
    step = make_train_step(model, optimizer)
    opt_state = optimizer.init(params)
    losses = np.empty(steps, np.float32)
    done = 0
    bar = tqdm(range(steps), desc="train", disable=not progress)
    for i, (low, normal) in zip(bar, batches, strict=False):
        params, opt_state, loss = step(params, opt_state, low, normal)
        losses[i] = loss
        done = i + 1
        if i % 50 == 0 or done == steps:
            bar.set_postfix(loss=f"{losses[i]:.3g}")
    bar.close()
    if done < steps:
        warnings.warn(f"`batches` ran out after {done} of {steps} steps", stacklevel=2)
    return params, losses[:done]


def train_model(
    model: nn.Module,
    config: TrainConfig = TrainConfig(),
    *,
    dose: data.DoseConfig | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train a denoiser from scratch on simulated phantom patches.

    Args:
        model: the denoiser, e.g. from :func:`hejax.ldct.make_model`.
        config: the training settings, including the seed.
        dose: the scanner parameters, :class:`~hejax.ldct.data.DoseConfig`
            by default; the normal dose is ``dose.i0_normal``, the low dose
            is drawn from ``config.i0_low_range``.
        progress: show a tqdm progress bar.

    Returns:
        The trained parameters, the losses and the optimisation time.
    """
    data_seed, patch_seed, init_seed = np.random.SeedSequence(config.seed).spawn(3)
    low, normal = data.simulate_dataset(
        config.n_images,
        int(data_seed.generate_state(1)[0]),
        image_size=config.image_size,
        config=dose or data.DoseConfig(),
        i0_low_range=config.i0_low_range,
    )
    batches = data.patch_batches(
        low,
        normal,
        batch_size=config.batch_size,
        patch_size=config.patch_size,
        seed=int(patch_seed.generate_state(1)[0]),
    )
    shape = (1, config.patch_size, config.patch_size, 1)
    params = init_params(model, shape, int(init_seed.generate_state(1)[0]))

    start = time.perf_counter()
    params, losses = fit(
        model, params, batches, config.steps, make_optimizer(config), progress=progress
    )
    seconds = time.perf_counter() - start
    logger.info(
        "trained %d steps in %.1f s, final loss %.3g", config.steps, seconds, losses[-1]
    )
    return TrainResult(params=params, losses=losses, seconds=seconds)


def denoise(model: nn.Module, params: Params, image_hu: np.ndarray) -> np.ndarray:
    """Denoise one HU image with a model that works in the unit scale.

    Args:
        model: the denoiser.
        params: its parameters.
        image_hu: a 2-D image in HU.

    Returns:
        The denoised float32 image in HU, same shape.
    """
    unit = data.hu_to_unit(np.asarray(image_hu, np.float32))
    out = model.apply({"params": params}, jnp.asarray(unit)[None, ..., None])
    return data.unit_to_hu(np.asarray(out)[0, ..., 0]).astype(np.float32)


def evaluate(
    model: nn.Module,
    params: Params,
    low_hu: np.ndarray,
    normal_hu: np.ndarray,
) -> dict[str, float]:
    """Mean PSNR and SSIM of the low-dose and the denoised images.

    Both are measured against the normal-dose images in the unit scale
    (data range 1).

    Args:
        model: the denoiser.
        params: its parameters.
        low_hu: low-dose images in HU, shape ``(n, H, W)`` or ``(H, W)``.
        normal_hu: the normal-dose images, same shape.

    Returns:
        ``psnr_low``, ``psnr_denoised``, ``psnr_gain`` (dB), ``ssim_low``,
        ``ssim_denoised`` and ``ssim_gain``.

    Raises:
        InvalidInputError: if the shapes differ.
    """
    low_hu = np.asarray(low_hu).reshape((-1, *np.shape(low_hu)[-2:]))
    normal_hu = np.asarray(normal_hu).reshape((-1, *np.shape(normal_hu)[-2:]))
    if low_hu.shape != normal_hu.shape:
        raise InvalidInputError(
            f"`low_hu` and `normal_hu` differ in shape: {low_hu.shape} and "
            f"{normal_hu.shape}"
        )
    scores = {k: [] for k in ("psnr_low", "psnr_denoised", "ssim_low", "ssim_denoised")}
    for low, normal in zip(low_hu, normal_hu, strict=True):
        truth = data.hu_to_unit(normal)
        candidates = {"low": low, "denoised": denoise(model, params, low)}
        for name, image in candidates.items():
            unit = data.hu_to_unit(image)
            scores[f"psnr_{name}"].append(metrics.psnr(truth, unit))
            scores[f"ssim_{name}"].append(metrics.ssim(truth, unit))
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    result["psnr_gain"] = result["psnr_denoised"] - result["psnr_low"]
    result["ssim_gain"] = result["ssim_denoised"] - result["ssim_low"]
    return result
