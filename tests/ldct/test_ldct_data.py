from pathlib import Path

import numpy as np
import pydicom
import pytest
import skimage.io
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydicom.data import data_manager

from hejax.errors import InvalidInputError
from hejax.ldct import data

SMALL = data.DoseConfig(n_angles=60)


@given(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(max_dims=3, max_side=5),
        elements=st.floats(-2000, 4000),
    )
)
def test_hu_unit_round_trip(hu):
    np.testing.assert_allclose(data.unit_to_hu(data.hu_to_unit(hu)), hu, atol=1e-9)


def test_hu_unit_anchors():
    np.testing.assert_allclose(data.hu_to_unit([-1024.0, 2048.0]), [0.0, 1.0])
    assert data.unit_to_hu(0.5) == pytest.approx(512.0)


def test_mu_round_trip_and_air():
    hu = np.array([-1000.0, 0.0, 1000.0])
    mu = data.hu_to_mu(hu, 0.02)
    np.testing.assert_allclose(mu, [0.0, 0.02, 0.04])
    np.testing.assert_allclose(data.mu_to_hu(mu, 0.02), hu)
    assert data.hu_to_mu(np.array([-1024.0]), 0.02)[0] == 0.0


def test_phantom_is_seeded():
    a = data.random_phantom(64, seed=3)
    assert a.shape == (64, 64) and a.dtype == np.float32
    np.testing.assert_array_equal(a, data.random_phantom(64, seed=3))
    assert not np.array_equal(a, data.random_phantom(64, seed=4))


def test_phantom_values_and_units():
    hu = data.random_phantom(64, seed=1)
    assert hu.min() >= -1000.0 and hu.max() <= 1400.0
    unit = data.random_phantom(64, seed=1, units="unit")
    np.testing.assert_allclose(unit, data.hu_to_unit(hu), rtol=1e-6)
    with pytest.raises(InvalidInputError, match="units"):
        data.random_phantom(64, units="kelvin")
    with pytest.raises(InvalidInputError, match="n_details"):
        data.random_phantom(64, n_details=(3, 1))
    with pytest.raises(InvalidInputError, match="size"):
        data.random_phantom(4)


def test_simulate_pair_is_seeded_and_low_dose_is_noisier():
    phantom = data.random_phantom(64, seed=0)
    low, normal = data.simulate_pair(phantom, seed=5, config=SMALL)
    low2, normal2 = data.simulate_pair(phantom, seed=5, config=SMALL)
    np.testing.assert_array_equal(low, low2)
    np.testing.assert_array_equal(normal, normal2)
    assert not np.array_equal(low, data.simulate_pair(phantom, 6, SMALL)[0])

    clean = data.reconstruct(data.project(phantom, SMALL), 64, SMALL)
    assert np.std(low - clean) > 1.5 * np.std(normal - clean)
    assert low.shape == phantom.shape and low.dtype == np.float32


def test_noise_free_scan_reproduces_phantom():
    phantom = data.random_phantom(64, seed=2)
    clean = data.reconstruct(data.project(phantom), 64)
    inside = np.abs(phantom - np.median(phantom)) < 1  # flat soft tissue
    assert np.median(np.abs(clean - phantom)[inside]) < 20.0


def test_simulate_dose_matches_noise_level():
    phantom = data.random_phantom(64, seed=2)
    clean = data.reconstruct(data.project(phantom, SMALL), 64, SMALL)
    noise = [
        np.std(data.simulate_dose(phantom, i0, 0, SMALL) - clean) for i0 in (1e4, 1e6)
    ]
    assert noise[0] > 5 * noise[1]
    with pytest.raises(InvalidInputError, match="i0"):
        data.simulate_dose(phantom, 0.0)


def test_simulate_dataset_is_seeded_prefix():
    low, normal = data.simulate_dataset(3, seed=1, image_size=32, config=SMALL)
    assert low.shape == normal.shape == (3, 32, 32)
    low2, _ = data.simulate_dataset(2, seed=1, image_size=32, config=SMALL)
    np.testing.assert_array_equal(low[:2], low2)
    other, _ = data.simulate_dataset(2, seed=2, image_size=32, config=SMALL)
    assert not np.array_equal(low[:2], other)
    ranged, _ = data.simulate_dataset(
        2, seed=1, image_size=32, config=SMALL, i0_low_range=(1e4, 5e4)
    )
    assert not np.array_equal(ranged, low2)
    with pytest.raises(InvalidInputError, match="i0_low_range"):
        data.simulate_dataset(1, i0_low_range=(5e4, 1e4))


def test_patch_batches_are_seeded_and_aligned():
    low, normal = data.simulate_dataset(2, seed=0, image_size=32, config=SMALL)
    first = next(data.patch_batches(low, normal, batch_size=5, patch_size=16, seed=1))
    again = next(data.patch_batches(low, normal, batch_size=5, patch_size=16, seed=1))
    other = next(data.patch_batches(low, normal, batch_size=5, patch_size=16, seed=2))
    assert first[0].shape == first[1].shape == (5, 16, 16, 1)
    assert first[0].dtype == np.float32
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])

    same = next(data.patch_batches(low, low, batch_size=5, patch_size=16, seed=1))
    np.testing.assert_array_equal(same[0], same[1])
    np.testing.assert_array_equal(same[0], first[0])
    with pytest.raises(InvalidInputError, match="patch_size"):
        next(data.patch_batches(low, normal, batch_size=1, patch_size=64))


def test_example_slice_is_packaged_and_in_hu(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("pydicom tried to download")

    monkeypatch.setattr(data_manager, "data_path_with_download", no_network)
    path = data.example_slice_path()
    assert path.is_file()
    assert Path(pydicom.__file__).parent in path.parents  # shipped, not downloaded

    hu = data.example_slice()
    assert hu.shape == (128, 128) and hu.dtype == np.float32
    raw = pydicom.dcmread(path).pixel_array
    np.testing.assert_array_equal(hu, raw - 1024.0)  # RescaleIntercept -1024
    assert -1024.0 <= hu.min() < -800.0  # lung, close to air
    assert -100.0 < np.median(hu) < 100.0  # soft tissue
    assert hu.max() > 700.0  # bone
    assert data.dicom_pixel_size(path) == pytest.approx(0.661468)


def test_read_dicom_applies_rescale(tmp_path):
    dataset = pydicom.dcmread(data.example_slice_path())
    dataset.RescaleSlope = 2
    dataset.RescaleIntercept = -2048
    dataset.save_as(tmp_path / "scaled.dcm")
    hu = data.load_image(tmp_path / "scaled.dcm")
    np.testing.assert_array_equal(hu, 2.0 * dataset.pixel_array - 2048.0)


def test_example_pair_uses_slice_pixel_size():
    low, normal = data.example_pair(seed=0, config=SMALL)
    again, _ = data.example_pair(seed=0, config=SMALL)
    np.testing.assert_array_equal(low, again)
    assert low.shape == normal.shape == (128, 128)
    assert np.std(low - normal) > 20.0


def test_png_and_npy_round_trip(tmp_path):
    hu = data.random_phantom(32, seed=0)
    unit16 = np.round(np.clip(data.hu_to_unit(hu), 0, 1) * 65535).astype(np.uint16)
    skimage.io.imsave(tmp_path / "slice.png", unit16, check_contrast=False)
    np.testing.assert_allclose(data.load_image(tmp_path / "slice.png"), hu, atol=0.1)

    grey = np.stack([unit16 // 257] * 3, axis=-1).astype(np.uint8)
    skimage.io.imsave(tmp_path / "rgb.png", grey, check_contrast=False)
    assert data.load_image(tmp_path / "rgb.png").shape == (32, 32)

    np.save(tmp_path / "slice.npy", hu)
    np.testing.assert_array_equal(data.load_image(tmp_path / "slice.npy"), hu)


def test_readers_registry_covers_suffixes():
    assert set(data.READERS) == {".dcm", ".dicom", ".png", ".npy"}


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("notes.dcm", b"not a dicom file", "cannot read"),
        ("notes.png", b"not a png file", "cannot read"),
        ("notes.npy", b"not an array", "cannot read"),
        ("notes.txt", b"hello", "no reader for suffix '.txt'"),
    ],
)
def test_load_image_rejects_unreadable_files(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InvalidInputError, match=match):
        data.load_image(tmp_path / name)


def test_load_image_rejects_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        data.load_image(tmp_path / "nowhere.dcm")


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "1 non-finite"),
        (np.full((2, 2), np.inf), "4 non-finite"),
        (np.zeros((2, 3, 4)), "2-D image"),
        (np.zeros(5), "2-D image"),
        (np.array([["a", "b"]]), "numeric"),
    ],
)
def test_load_image_rejects_bad_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(InvalidInputError, match=match):
        data.load_image(tmp_path / "bad.npy")


def test_load_image_refuses_pickles(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(InvalidInputError, match="cannot read"):
        data.load_image(tmp_path / "obj.npy")


def test_project_rejects_non_square():
    with pytest.raises(InvalidInputError, match="square"):
        data.project(np.zeros((8, 9)))


def test_dose_config_validates():
    with pytest.raises(InvalidInputError, match="n_angles"):
        data.DoseConfig(n_angles=0)
