"""Image-quality metrics of LDCT denoising: PSNR, SSIM and RMSE.

The metrics compare a test image with a reference (the normal-dose truth,
or the plaintext output when judging an encrypted run). They are thin,
checked wrappers of scikit-image: inputs must have one shape and be finite,
and singleton axes (a ``(1, H, W, 1)`` model output) are dropped, so a model
output and a 2-D reference can be compared directly once shapes agree.

SSIM follows the LDCT literature: an 11x11 Gaussian window of σ = 1.5 and
population (not sample) covariances, as in Wang et al. (2004).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import (
    mean_squared_error,
    peak_signal_noise_ratio,
    structural_similarity,
)

from hejax.errors import InvalidInputError

__all__ = ["SSIM_SIGMA", "SSIM_WINDOW", "psnr", "rmse", "ssim"]

SSIM_SIGMA = 1.5
"""Standard deviation of the Gaussian SSIM window, in pixels."""

SSIM_WINDOW = 11
"""Side of the SSIM window that ``SSIM_SIGMA`` gives in scikit-image."""


def _pair(reference: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 arrays without singleton axes, checked."""
    ref, img = np.asarray(reference), np.asarray(image)
    if ref.shape != img.shape:
        raise InvalidInputError(
            f"`reference` and `image` must have one shape, got {ref.shape} "
            f"and {img.shape}"
        )
    if ref.size == 0:
        raise InvalidInputError("`reference` and `image` are empty")
    for name, array in (("reference", ref), ("image", img)):
        if not np.issubdtype(array.dtype, np.number):
            raise InvalidInputError(
                f"`{name}` must be numeric, got dtype {array.dtype}"
            )
        if not np.all(np.isfinite(array)):
            raise InvalidInputError(f"`{name}` holds NaN or inf values")
    return np.squeeze(ref).astype(np.float64), np.squeeze(img).astype(np.float64)


def _check_range(data_range: float) -> float:
    if not np.isfinite(data_range) or data_range <= 0:
        raise InvalidInputError(
            f"`data_range` must be a positive number, got {data_range}"
        )
    return float(data_range)


def psnr(reference: np.ndarray, image: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``image`` against ``reference``, in dB.

    Args:
        reference: the ground truth.
        image: the image to judge, same shape as ``reference``.
        data_range: the peak value: 1 for the unit scale of
            :func:`hejax.ldct.data.hu_to_unit`, 3072 for HU images.

    Returns:
        ``10 log10(data_range**2 / MSE)``; ``inf`` if the images are equal.

    Raises:
        InvalidInputError: if shapes differ, a value is NaN or inf, or
            ``data_range`` is not positive.

    Example:
        >>> round(psnr(np.zeros(4), np.full(4, 0.1)), 6)
        20.0
    """
    ref, img = _pair(reference, image)
    data_range = _check_range(data_range)
    if np.array_equal(ref, img):
        return float("inf")
    return float(peak_signal_noise_ratio(ref, img, data_range=data_range))


def ssim(reference: np.ndarray, image: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity of ``image`` to ``reference`` (Gaussian window).

    Args:
        reference: the ground truth, 2-D after dropping singleton axes.
        image: the image to judge, same shape as ``reference``.
        data_range: the dynamic range, as for :func:`psnr`.

    Returns:
        The mean SSIM, at most 1.

    Raises:
        InvalidInputError: if shapes differ, a value is NaN or inf, the
            images are not 2-D or are smaller than the 11x11 window, or
            ``data_range`` is not positive.
    """
    ref, img = _pair(reference, image)
    data_range = _check_range(data_range)
    if ref.ndim != 2 or min(ref.shape) < SSIM_WINDOW:
        raise InvalidInputError(
            f"SSIM needs 2-D images of at least {SSIM_WINDOW}x{SSIM_WINDOW} "
            f"pixels, got shape {np.shape(reference)}"
        )
    return float(
        structural_similarity(
            ref,
            img,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=data_range,
        )
    )


def rmse(reference: np.ndarray, image: np.ndarray) -> float:
    """Root-mean-square error of ``image`` against ``reference``.

    Args:
        reference: the ground truth.
        image: the image to judge, same shape as ``reference``.

    Returns:
        The RMSE, in the unit of the images.

    Raises:
        InvalidInputError: if shapes differ or a value is NaN or inf.
    """
    ref, img = _pair(reference, image)
    return float(np.sqrt(mean_squared_error(ref, img)))
