import numpy as np
import pytest
from skimage.metrics import (
    mean_squared_error,
    peak_signal_noise_ratio,
    structural_similarity,
)

from hejax.errors import InvalidInputError
from hejax.ldct import metrics


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.2, 0.8, (48, 40))
    return truth, truth + rng.normal(0, 0.02, truth.shape)


@pytest.mark.parametrize("data_range", [1.0, 3072.0])
def test_psnr_matches_skimage(pair, data_range):
    truth, noisy = (a * data_range for a in pair)
    expected = peak_signal_noise_ratio(truth, noisy, data_range=data_range)
    assert metrics.psnr(truth, noisy, data_range) == pytest.approx(expected)


def test_ssim_matches_skimage_gaussian_window(pair):
    truth, noisy = pair
    expected = structural_similarity(
        truth,
        noisy,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    assert metrics.ssim(truth, noisy) == pytest.approx(expected)
    # sigma 1.5 with scikit-image's truncation gives the 11x11 window
    assert 2 * int(3.5 * metrics.SSIM_SIGMA + 0.5) + 1 == metrics.SSIM_WINDOW


def test_rmse_matches_skimage(pair):
    truth, noisy = pair
    expected = np.sqrt(mean_squared_error(truth, noisy))
    assert metrics.rmse(truth, noisy) == pytest.approx(expected)


def test_known_values():
    assert metrics.psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)) == pytest.approx(20)
    assert metrics.rmse(np.zeros(3), np.full(3, 2.0)) == pytest.approx(2.0)
    same = np.linspace(0, 1, 256).reshape(16, 16)
    assert metrics.psnr(same, same) == float("inf")
    assert metrics.ssim(same, same) == pytest.approx(1.0)
    assert metrics.rmse(same, same) == 0.0


def test_singleton_axes_are_dropped(pair):
    truth, noisy = pair
    nhwc = (truth[None, ..., None], noisy[None, ..., None])
    assert metrics.ssim(*nhwc) == pytest.approx(metrics.ssim(truth, noisy))
    assert metrics.psnr(*nhwc) == pytest.approx(metrics.psnr(truth, noisy))


@pytest.mark.parametrize("metric", [metrics.psnr, metrics.ssim, metrics.rmse])
def test_shape_mismatch(metric):
    with pytest.raises(InvalidInputError, match=r"\(16, 16\) and \(16, 15\)"):
        metric(np.zeros((16, 16)), np.zeros((16, 15)))


@pytest.mark.parametrize("metric", [metrics.psnr, metrics.ssim, metrics.rmse])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite(metric, bad):
    image = np.zeros((16, 16))
    image[3, 4] = bad
    with pytest.raises(InvalidInputError, match="`image` holds NaN or inf"):
        metric(np.zeros((16, 16)), image)
    with pytest.raises(InvalidInputError, match="`reference` holds NaN or inf"):
        metric(image, np.zeros((16, 16)))


@pytest.mark.parametrize("data_range", [0.0, -1.0, np.nan])
def test_bad_data_range(data_range):
    with pytest.raises(InvalidInputError, match="data_range"):
        metrics.psnr(np.zeros((16, 16)), np.ones((16, 16)), data_range)


@pytest.mark.parametrize("shape", [(8, 8), (4, 16, 16)])
def test_ssim_needs_2d_images_as_large_as_the_window(shape):
    with pytest.raises(InvalidInputError, match="11x11"):
        metrics.ssim(np.zeros(shape), np.ones(shape))


def test_empty_and_non_numeric():
    with pytest.raises(InvalidInputError, match="empty"):
        metrics.rmse(np.zeros(0), np.zeros(0))
    with pytest.raises(InvalidInputError, match="numeric"):
        metrics.rmse(np.array(["a"]), np.array(["b"]))
