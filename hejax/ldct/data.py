"""LDCT data: phantoms, low-dose simulation, image files and training patches.

Everything here is plain NumPy and scikit-image and is deterministic given a
seed: the same seed gives bit-identical arrays.

* Phantoms: :func:`random_phantom` draws a body ellipse filled with random
  inner ellipses of CT-like tissues (lung, fat, soft tissue, contrast, bone),
  in the spirit of the Shepp-Logan phantom.
* Dose simulation in the projection domain (:func:`simulate_dose`): HU are
  turned into linear attenuation, projected with a parallel-beam Radon
  transform, photon counts are drawn from a Poisson law at the incident count
  ``i0`` (a bin that counts no photon is given one, so that its log is
  finite), the noisy line integrals are reconstructed by filtered
  back-projection (ramp filter) and turned back into HU.
* The "normal-dose" image of a pair is simulated the same way at the high
  count :attr:`DoseConfig.i0_normal`, not taken from the phantom itself: both
  images then share the same geometry, sampling and FBP blur and differ only
  in their photon noise, as the low- and normal-dose scans of a patient do.
* Files: :func:`load_image` reads DICOM (HU from RescaleSlope and
  RescaleIntercept), PNG and ``.npy`` through the :data:`READERS` registry.
  :func:`example_slice` returns the real CT slice that pydicom ships.
* Training: :func:`simulate_dataset` simulates (low-dose, normal-dose) image
  pairs from phantoms and :func:`patch_batches` cuts random, randomly
  flipped and rotated patches from them.

Limitations: the scanner model is a 2-D parallel beam with a monochromatic
source, no electronic noise, no beam hardening and no scatter; real low-dose
noise is more structured than this.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib.image
import numpy as np
import pydicom
import pydicom.data
from pydicom.errors import InvalidDicomError
from skimage.morphology import isotropic_erosion
from skimage.transform import iradon, radon

from hejax.errors import HejaxError, InvalidInputError

__all__ = [
    "EXAMPLE_SLICE",
    "HU_OFFSET",
    "HU_RANGE",
    "READERS",
    "TISSUES",
    "DoseConfig",
    "dicom_pixel_size",
    "example_pair",
    "example_slice",
    "example_slice_path",
    "hu_to_mu",
    "hu_to_unit",
    "load_image",
    "mu_to_hu",
    "patch_batches",
    "project",
    "random_phantom",
    "read_dicom",
    "read_npy",
    "read_png",
    "reconstruct",
    "simulate_dataset",
    "simulate_dose",
    "simulate_pair",
    "unit_to_hu",
]

logger = logging.getLogger(__name__)

Seed = int | np.random.SeedSequence

HU_OFFSET = 1024.0
"""HU value mapped to 0 by :func:`hu_to_unit`."""

HU_RANGE = 3072.0
"""Width in HU of the [0, 1] unit scale: 1 is ``HU_RANGE - HU_OFFSET`` HU."""

EXAMPLE_SLICE = "CT_small.dcm"
"""Name of the CT slice among pydicom's packaged test files."""


# ---------------------------------------------------------------- intensities


def hu_to_unit(hu: np.ndarray) -> np.ndarray:
    """Map Hounsfield units to the unit scale, ``(HU + 1024) / 3072``.

    Args:
        hu: an array in HU.

    Returns:
        The array in the unit scale: -1024 HU is 0 and 2048 HU is 1. Values
        outside that window are not clipped.
    """
    return (np.asarray(hu) + HU_OFFSET) / HU_RANGE


def unit_to_hu(unit: np.ndarray) -> np.ndarray:
    """Map the unit scale back to Hounsfield units; inverse of :func:`hu_to_unit`.

    Args:
        unit: an array in the unit scale.

    Returns:
        The array in HU.
    """
    return np.asarray(unit) * HU_RANGE - HU_OFFSET


def hu_to_mu(hu: np.ndarray, mu_water: float) -> np.ndarray:
    """Linear attenuation, in the unit of ``mu_water``, of an HU image.

    Values below -1000 HU (less than air) are clipped to zero attenuation.

    Args:
        hu: an array in HU.
        mu_water: attenuation of water, e.g. 0.0192 per mm.

    Returns:
        ``mu_water * (1 + HU / 1000)``, at least 0.
    """
    return np.maximum(mu_water * (1.0 + np.asarray(hu) / 1000.0), 0.0)


def mu_to_hu(mu: np.ndarray, mu_water: float) -> np.ndarray:
    """Hounsfield units of a linear-attenuation image; inverse of :func:`hu_to_mu`.

    Args:
        mu: attenuation, in the unit of ``mu_water``.
        mu_water: attenuation of water.

    Returns:
        ``1000 * (mu - mu_water) / mu_water``.
    """
    return 1000.0 * (np.asarray(mu) - mu_water) / mu_water


_UNITS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hu": np.asarray,
    "unit": hu_to_unit,
}


def _convert_units(hu: np.ndarray, units: str) -> np.ndarray:
    try:
        convert = _UNITS[units]
    except KeyError:
        raise InvalidInputError(
            f"unknown `units` {units!r}; expected one of {sorted(_UNITS)}"
        ) from None
    return convert(hu).astype(np.float32)


# ------------------------------------------------------------------- phantoms

TISSUES: dict[str, tuple[float, float]] = {
    "lung": (-900.0, -650.0),
    "fat": (-130.0, -60.0),
    "soft": (-20.0, 80.0),
    "contrast": (100.0, 350.0),
    "bone": (400.0, 1400.0),
}
"""HU range of each tissue a phantom ellipse can be filled with."""


def _ellipse_mask(
    rng: np.random.Generator,
    grid: tuple[np.ndarray, np.ndarray],
    center_radius: float,
    axes: tuple[float, float],
) -> np.ndarray:
    """Mask of one ellipse, centre within ``center_radius`` of the origin."""
    y, x = grid
    r = center_radius * np.sqrt(rng.uniform())
    phi = rng.uniform(0.0, 2.0 * np.pi)
    cy, cx = r * np.sin(phi), r * np.cos(phi)
    a, b = np.exp(rng.uniform(np.log(axes[0]), np.log(axes[1]), size=2))
    theta = rng.uniform(0.0, np.pi)
    u = (x - cx) * np.cos(theta) + (y - cy) * np.sin(theta)
    v = -(x - cx) * np.sin(theta) + (y - cy) * np.cos(theta)
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def _tissue_value(rng: np.random.Generator) -> float:
    names = sorted(TISSUES)
    low, high = TISSUES[names[rng.integers(len(names))]]
    return float(rng.uniform(low, high))


def random_phantom(
    size: int = 128,
    seed: Seed = 0,
    *,
    n_ellipses: tuple[int, int] = (4, 12),
    n_details: tuple[int, int] = (0, 24),
    units: str = "hu",
) -> np.ndarray:
    """Draw a random-ellipse CT phantom.

    The phantom is air (-1000 HU) around a body ellipse of soft tissue with
    a shell of fat or bone; the body may overflow the image, as in a slice
    reconstructed on a small field of view. Inside the body sit
    ``n_ellipses`` ellipses of random tissues (see :data:`TISSUES`) and
    ``n_details`` small ones, like vessels or calcifications, painted in
    order.

    Args:
        size: side of the square image in pixels.
        seed: an integer or ``numpy.random.SeedSequence``.
        n_ellipses: inclusive range of the number of inner ellipses.
        n_details: inclusive range of the number of small ellipses.
        units: ``"hu"`` for Hounsfield units or ``"unit"`` for the [0, 1]
            scale of :func:`hu_to_unit`.

    Returns:
        A ``(size, size)`` float32 array.

    Raises:
        InvalidInputError: if ``size`` is below 8, a count range is not
            ordered and non-negative, or ``units`` is unknown.
    """
    if size < 8:
        raise InvalidInputError(f"phantom `size` must be at least 8, got {size}")
    for name, (low, high) in (("n_ellipses", n_ellipses), ("n_details", n_details)):
        if not 0 <= low <= high:
            raise InvalidInputError(
                f"`{name}` must be (low, high) with 0 <= low <= high, got {(low, high)}"
            )
    rng = np.random.default_rng(seed)
    coords = np.linspace(-1.0, 1.0, size)
    grid = tuple(np.meshgrid(coords, coords, indexing="ij"))
    image = np.full((size, size), -1000.0)

    body = _ellipse_mask(rng, grid, 0.05, (0.7, 1.3))
    shell = ("fat", "bone")[rng.integers(2)]
    image[body] = rng.uniform(*TISSUES[shell])
    width = int(rng.integers(1, max(2, size // 24) + 1))
    image[isotropic_erosion(body, width)] = rng.uniform(*TISSUES["soft"])

    count = rng.integers(n_ellipses[0], n_ellipses[1] + 1)
    for _ in range(count):
        image[_ellipse_mask(rng, grid, 0.55, (0.04, 0.35)) & body] = _tissue_value(rng)
    count = rng.integers(n_details[0], n_details[1] + 1)
    for _ in range(count):
        image[_ellipse_mask(rng, grid, 0.65, (0.01, 0.04)) & body] = _tissue_value(rng)
    return _convert_units(image, units)


# ------------------------------------------------------------ dose simulation


@dataclasses.dataclass(frozen=True)
class DoseConfig:
    """Scanner and dose parameters of the projection-domain simulation.

    Attributes:
        i0_low: incident photons per detector bin of the low-dose scan.
        i0_normal: incident photons per detector bin of the normal-dose scan.
        n_angles: number of projection angles, evenly spread over 180°.
        pixel_size_mm: pixel side in mm; sets how much the object attenuates.
        mu_water: linear attenuation of water in 1/mm (0.0192 at about 70 keV).
    """

    i0_low: float = 2.5e4
    i0_normal: float = 1e5
    n_angles: int = 180
    pixel_size_mm: float = 1.0
    mu_water: float = 0.0192

    def __post_init__(self) -> None:
        """Check that every field is positive."""
        bad = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if not getattr(self, f.name) > 0
        }
        if bad:
            raise InvalidInputError(f"DoseConfig fields must be positive: {bad}")


def _angles(config: DoseConfig) -> np.ndarray:
    return np.linspace(0.0, 180.0, config.n_angles, endpoint=False)


def project(image_hu: np.ndarray, config: DoseConfig = DoseConfig()) -> np.ndarray:
    """Noise-free line integrals of an HU image (its sinogram).

    Args:
        image_hu: a square 2-D image in HU; outside it is air.
        config: the scanner parameters.

    Returns:
        The sinogram, shape ``(detector bins, config.n_angles)``,
        dimensionless (attenuation times length).

    Raises:
        InvalidInputError: if the image is not square, 2-D and finite.
    """
    image = _check_image(image_hu, "image_hu")
    if image.shape[0] != image.shape[1]:
        raise InvalidInputError(
            f"`image_hu` must be square for the Radon transform, got {image.shape}"
        )
    mu_pixel = hu_to_mu(image, config.mu_water) * config.pixel_size_mm
    return radon(mu_pixel, theta=_angles(config), circle=False)


def _photon_noise(
    sinogram: np.ndarray, i0: float, rng: np.random.Generator
) -> np.ndarray:
    """Noisy line integrals: Poisson counts at ``i0``, at least one photon."""
    counts = rng.poisson(i0 * np.exp(-sinogram))
    return -np.log(np.maximum(counts, 1) / i0)


def reconstruct(
    sinogram: np.ndarray, size: int, config: DoseConfig = DoseConfig()
) -> np.ndarray:
    """Filtered back-projection (ramp filter) of line integrals, in HU.

    Args:
        sinogram: line integrals as returned by :func:`project`.
        size: side of the square image to reconstruct.
        config: the scanner parameters the sinogram was made with.

    Returns:
        The ``(size, size)`` float32 image in HU.
    """
    mu_pixel = iradon(
        sinogram,
        theta=_angles(config),
        output_size=size,
        filter_name="ramp",
        circle=False,
    )
    hu = mu_to_hu(mu_pixel / config.pixel_size_mm, config.mu_water)
    return hu.astype(np.float32)


def simulate_dose(
    image_hu: np.ndarray,
    i0: float,
    seed: Seed = 0,
    config: DoseConfig = DoseConfig(),
) -> np.ndarray:
    """Simulate a CT scan of an HU image at the incident count ``i0``.

    Args:
        image_hu: a square 2-D image in HU, the object to scan.
        i0: incident photons per detector bin; lower is noisier.
        seed: an integer or ``numpy.random.SeedSequence`` for the noise.
        config: the scanner parameters (its ``i0_*`` fields are not used).

    Returns:
        The reconstructed float32 image in HU, same shape as ``image_hu``.

    Raises:
        InvalidInputError: if the image is not square, 2-D and finite, or
            ``i0`` is not positive.
    """
    if not i0 > 0:
        raise InvalidInputError(f"`i0` must be positive, got {i0}")
    sinogram = project(image_hu, config)
    noisy = _photon_noise(sinogram, i0, np.random.default_rng(seed))
    return reconstruct(noisy, np.shape(image_hu)[0], config)


def simulate_pair(
    image_hu: np.ndarray,
    seed: Seed = 0,
    config: DoseConfig = DoseConfig(),
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate the low-dose and the normal-dose scan of one object.

    Both scans share one noise-free projection and draw independent noise,
    at ``config.i0_low`` and ``config.i0_normal``.

    Args:
        image_hu: a square 2-D image in HU.
        seed: an integer or ``numpy.random.SeedSequence`` for the noise.
        config: the scanner and dose parameters.

    Returns:
        ``(low_dose, normal_dose)``, float32 images in HU.

    Raises:
        InvalidInputError: if the image is not square, 2-D and finite.
    """
    sinogram = project(image_hu, config)
    low_rng, normal_rng = np.random.default_rng(seed).spawn(2)
    size = np.shape(image_hu)[0]
    low = reconstruct(_photon_noise(sinogram, config.i0_low, low_rng), size, config)
    normal = reconstruct(
        _photon_noise(sinogram, config.i0_normal, normal_rng), size, config
    )
    return low, normal


# --------------------------------------------------------------- training set


def simulate_dataset(
    n_images: int,
    seed: int = 0,
    *,
    image_size: int = 128,
    config: DoseConfig = DoseConfig(),
    i0_low_range: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulate (low-dose, normal-dose) pairs of random phantoms.

    Image ``k`` uses the ``k``-th child of ``numpy.random.SeedSequence(seed)``
    for its phantom, its dose and its noise, so a set is a prefix of any
    larger set with the same seed, and sets of different seeds share nothing.

    Args:
        n_images: number of phantoms.
        seed: the root seed.
        image_size: side of each phantom in pixels.
        config: the scanner and dose parameters.
        i0_low_range: if given, each low-dose scan draws its incident count
            log-uniformly from this ``(low, high)`` range instead of using
            ``config.i0_low``, so that a model sees several noise levels.

    Returns:
        ``(low_dose, normal_dose)``, float32 arrays of shape
        ``(n_images, image_size, image_size)`` in HU.

    Raises:
        InvalidInputError: if ``n_images`` is not positive or the range is
            not positive and ordered.
    """
    if n_images < 1:
        raise InvalidInputError(f"`n_images` must be positive, got {n_images}")
    if i0_low_range is not None and not 0 < i0_low_range[0] <= i0_low_range[1]:
        raise InvalidInputError(
            f"`i0_low_range` must be (low, high) with 0 < low <= high, "
            f"got {i0_low_range}"
        )
    pairs = [
        _simulate_one(child, image_size, config, i0_low_range)
        for child in np.random.SeedSequence(seed).spawn(n_images)
    ]
    logger.info("simulated %d phantom pairs of %d px", n_images, image_size)
    low, normal = zip(*pairs, strict=True)
    return np.stack(low), np.stack(normal)


def _simulate_one(
    seed: np.random.SeedSequence,
    image_size: int,
    config: DoseConfig,
    i0_low_range: tuple[float, float] | None,
) -> tuple[np.ndarray, np.ndarray]:
    phantom_seed, dose_seed, noise_seed = seed.spawn(3)
    if i0_low_range is not None:
        log_i0 = np.random.default_rng(dose_seed).uniform(*np.log(i0_low_range))
        config = dataclasses.replace(config, i0_low=float(np.exp(log_i0)))
    phantom = random_phantom(image_size, phantom_seed)
    return simulate_pair(phantom, noise_seed, config)


def _dihedral(patch: np.ndarray, k: int) -> np.ndarray:
    """One of the eight rotations and reflections of a square patch."""
    patch = np.rot90(patch, k % 4)
    return patch[:, ::-1] if k >= 4 else patch


def patch_batches(
    low_hu: np.ndarray,
    normal_hu: np.ndarray,
    *,
    batch_size: int,
    patch_size: int = 64,
    seed: int = 0,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield random (low-dose, normal-dose) patch batches, without end.

    Each patch is cut at a random place of a random image pair, the same
    place in both images, and both get the same random rotation or flip.

    Args:
        low_hu: low-dose images, shape ``(n, height, width)``, in HU.
        normal_hu: the matching normal-dose images, same shape.
        batch_size: patches per batch.
        patch_size: side of each square patch.
        seed: seed of the crops and flips.

    Yields:
        ``(low, normal)``, float32 arrays of shape
        ``(batch_size, patch_size, patch_size, 1)`` in the unit scale of
        :func:`hu_to_unit`, ready for a RED-CNN.

    Raises:
        InvalidInputError: if the image stacks differ in shape, are not 3-D
            or are smaller than ``patch_size``.
    """
    _check_stacks(low_hu, normal_hu, patch_size)
    rng = np.random.default_rng(seed)
    low_unit = hu_to_unit(low_hu).astype(np.float32)
    normal_unit = hu_to_unit(normal_hu).astype(np.float32)
    n, height, width = low_unit.shape
    while True:
        index = rng.integers(n, size=batch_size)
        top = rng.integers(height - patch_size + 1, size=batch_size)
        left = rng.integers(width - patch_size + 1, size=batch_size)
        flips = rng.integers(8, size=batch_size)
        crops = [
            (slice(t, t + patch_size), slice(u, u + patch_size))
            for t, u in zip(top, left, strict=True)
        ]
        yield tuple(
            np.stack(
                [
                    _dihedral(stack[i][crop], k)
                    for i, crop, k in zip(index, crops, flips, strict=True)
                ]
            )[..., None]
            for stack in (low_unit, normal_unit)
        )


def _check_stacks(low: np.ndarray, normal: np.ndarray, patch_size: int) -> None:
    if np.shape(low) != np.shape(normal) or np.ndim(low) != 3:
        raise InvalidInputError(
            "`low_hu` and `normal_hu` must be stacks of images of one shape "
            f"(n, height, width), got {np.shape(low)} and {np.shape(normal)}"
        )
    if min(np.shape(low)[1:]) < patch_size:
        raise InvalidInputError(
            f"images of shape {np.shape(low)[1:]} are smaller than "
            f"`patch_size`={patch_size}"
        )


# ---------------------------------------------------------------------- files


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    """A finite 2-D float32 copy of ``image``, or an InvalidInputError."""
    array = np.asarray(image)
    if array.ndim != 2:
        raise InvalidInputError(f"{what} must be a 2-D image, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidInputError(f"{what} must be numeric, got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise InvalidInputError(f"{what} has {bad} non-finite (NaN or inf) pixels")
    return array.astype(np.float32)


def read_dicom(path: str | Path) -> np.ndarray:
    """Read a single-frame DICOM image in Hounsfield units.

    Stored values are mapped to HU with RescaleSlope and RescaleIntercept
    (1 and 0 where the file has none).

    Args:
        path: the DICOM file.

    Returns:
        The image in HU, float64, as stored (not yet checked for shape).
    """
    dataset = pydicom.dcmread(path)
    slope = float(getattr(dataset, "RescaleSlope", 1.0))
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0))
    return dataset.pixel_array * slope + intercept


def dicom_pixel_size(path: str | Path) -> float:
    """Pixel side in mm of a DICOM image (the mean of its PixelSpacing).

    Args:
        path: the DICOM file.

    Returns:
        The pixel size in mm.

    Raises:
        InvalidInputError: if the file cannot be read or has no PixelSpacing.
    """
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        return float(np.mean([float(v) for v in dataset.PixelSpacing]))
    except (OSError, InvalidDicomError, AttributeError, ValueError) as err:
        raise InvalidInputError(f"no pixel size in DICOM file {path}: {err}") from err


def read_png(path: str | Path) -> np.ndarray:
    """Read a grayscale PNG whose intensities are the unit scale, in HU.

    8-bit and 16-bit values are divided by their maximum (255 or 65535) to
    give the unit scale of :func:`hu_to_unit`, then mapped to HU. An RGB or
    RGBA image whose colour channels are equal counts as grayscale.

    Args:
        path: the PNG file.

    Returns:
        The image in HU, float64 (not yet checked for shape).

    Raises:
        ValueError: if the file is not a PNG.
    """
    try:
        pixels = matplotlib.image.imread(path, format="png")
    except SyntaxError as err:  # Pillow's answer to a bad PNG signature
        raise ValueError(f"not a PNG file ({err})") from err
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):
        rgb = pixels[..., :3]
        if np.all(rgb == rgb[..., :1]):
            pixels = rgb[..., 0]
    return unit_to_hu(pixels.astype(np.float64))


def read_npy(path: str | Path) -> np.ndarray:
    """Read a NumPy ``.npy`` array whose values are HU.

    Args:
        path: the ``.npy`` file (pickled objects are refused).

    Returns:
        The stored array (not yet checked for shape).
    """
    return np.load(path, allow_pickle=False)


READERS: dict[str, Callable[[Path], np.ndarray]] = {
    ".dcm": read_dicom,
    ".dicom": read_dicom,
    ".png": read_png,
    ".npy": read_npy,
}
"""Reader of each file suffix (lower case); each returns an image in HU."""

_READ_ERRORS = (OSError, ValueError, TypeError, InvalidDicomError, AttributeError)


def load_image(path: str | Path) -> np.ndarray:
    """Read a CT image file in Hounsfield units.

    The reader is chosen by suffix from :data:`READERS`: DICOM (``.dcm``,
    ``.dicom``), PNG holding the unit scale (``.png``) and NumPy arrays of HU
    (``.npy``).

    Args:
        path: the image file.

    Returns:
        A 2-D float32 array in HU.

    Raises:
        InvalidInputError: if the file is missing, its suffix has no reader,
            it cannot be read, or its image is not 2-D, not numeric or holds
            NaN or inf.

    Example:
        >>> image = load_image(example_slice_path())
        >>> image.shape, image.dtype
        ((128, 128), dtype('float32'))
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"image file {str(path)!r} does not exist")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidInputError(
            f"no reader for suffix {path.suffix!r} of {str(path)!r}; "
            f"expected one of {sorted(READERS)}"
        )
    try:
        image = reader(path)
    except _READ_ERRORS as err:
        raise InvalidInputError(
            f"cannot read {str(path)!r} with {reader.__name__}: {err}"
        ) from err
    return _check_image(image, f"image {str(path)!r}")


def example_slice_path() -> Path:
    """Path of the real CT slice that pydicom ships with its test files.

    The file is looked up among pydicom's packaged data only; it is never
    downloaded.

    Returns:
        The path of ``CT_small.dcm`` (128x128 pixels of 0.66 mm, a chest
        slice through a vertebra with some lung).

    Raises:
        HejaxError: if the installed pydicom lacks the file.
    """
    found = pydicom.data.get_testdata_file(EXAMPLE_SLICE, download=False)
    if found is None:
        raise HejaxError(
            f"pydicom's packaged test file {EXAMPLE_SLICE} is missing; "
            "reinstall pydicom"
        )
    return Path(found)


def example_slice() -> np.ndarray:
    """The real CT slice that pydicom ships, in Hounsfield units.

    Returns:
        A 128x128 float32 array in HU; its pixel size is
        ``dicom_pixel_size(example_slice_path())``.
    """
    return load_image(example_slice_path())


def example_pair(
    seed: Seed = 0, config: DoseConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated low- and normal-dose scans of the real example slice.

    The slice is taken as the object to scan (air outside the image) at its
    own pixel size, so its attenuation, and hence its noise, is realistic.

    Args:
        seed: an integer or ``numpy.random.SeedSequence`` for the noise.
        config: the dose parameters; its ``pixel_size_mm`` is replaced by the
            slice's. Defaults to :class:`DoseConfig`.

    Returns:
        ``(low_dose, normal_dose)``, 128x128 float32 images in HU.
    """
    path = example_slice_path()
    config = dataclasses.replace(
        config or DoseConfig(), pixel_size_mm=dicom_pixel_size(path)
    )
    return simulate_pair(load_image(path), seed, config)
