"""The `hejax` command: tables, figures, outputs, and one-line errors."""

import subprocess
import sys

import numpy as np
import pydicom
import pytest

from hejax import cli
from hejax.ldct import data


def hejax(*args, check=True, cwd=None):
    run = subprocess.run(
        [sys.executable, "-m", "hejax.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=cwd,
    )
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_info_lists_backends_and_models():
    out = hejax("info").stdout
    for name in ("clear", "openfhe", "tenseal"):
        assert f"{name}:" in out
    assert "128-bit" in out and "presets: n8192" in out
    assert "lite/all-relu" in out


def test_plain_denoise_prints_metrics_and_writes_figure(tmp_path):
    run = hejax(
        "denoise", "example", "--dose", "2.5e4", "--plain", "--out", tmp_path / "r.npy"
    )
    assert "low dose: PSNR / SSIM" in run.stdout
    assert "plaintext: PSNR / SSIM" in run.stdout
    assert (tmp_path / "r-figure.png").stat().st_size > 10_000
    assert np.load(tmp_path / "r.npy").shape == (128, 128)


@pytest.mark.slow
def test_encrypted_denoise_on_clear_writes_dicom_with_metadata(tmp_path):
    out = tmp_path / "r.dcm"
    run = hejax(
        "denoise", "example", "--dose", "2.5e4", "--backend", "clear", "--out", out
    )
    assert "encrypted: PSNR / SSIM" in run.stdout
    assert "max |enc - plain|" in run.stdout
    err = float(run.stdout.split("max |enc - plain|")[1].split()[0])
    assert err <= 1e-5  # float32 plaintext model against float64 slots
    src = pydicom.dcmread(data.example_slice_path())
    got = pydicom.dcmread(out)
    assert got.PatientName == src.PatientName and got.Rows == src.Rows
    assert got.SeriesDescription == "hejax denoised on ciphertexts"
    hu = data.load_image(out)
    assert -1100 < hu.min() and hu.max() < 3100


def test_dcm_output_needs_a_dicom_input(tmp_path):
    np.save(tmp_path / "x.npy", data.example_slice())
    run = hejax(
        "denoise",
        tmp_path / "x.npy",
        "--plain",
        "--out",
        tmp_path / "r.dcm",
        check=False,
    )
    assert run.returncode == 2 and "DICOM" in run.stderr


def bad_inputs(tmp_path):
    (tmp_path / "text.png").write_text("not an image")
    np.save(tmp_path / "small.npy", np.zeros((8, 8), np.float32))
    nan = np.zeros((64, 64), np.float32)
    nan[3, 3] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    return {
        "missing": ([tmp_path / "none.dcm"], "does not exist"),
        "not an image": ([tmp_path / "text.png"], "cannot read"),
        "too small": ([tmp_path / "small.npy"], "at least"),
        "non-finite": ([tmp_path / "nan.npy"], "NaN"),
        "backend": (["example", "--backend", "nope"], "not installed"),
        "model": (["example", "--model", "tiny"], "variant"),
        "out suffix": (["example", "--out", tmp_path / "r.gif"], "--out"),
    }


def test_bad_input_gives_one_line_and_exit_2(tmp_path):
    for what, (args, message) in bad_inputs(tmp_path).items():
        run = hejax("denoise", *args, "--plain", check=False, cwd=tmp_path)
        assert run.returncode == 2, what
        assert message in run.stderr, (what, run.stderr)
        assert "Traceback" not in run.stderr, what
        assert len(run.stderr.strip().splitlines()) == 1, (what, run.stderr)


def test_main_returns_exit_status_in_process(capsys):
    assert cli.main(["denoise", "/no/such/file.dcm", "--plain"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("bounds", ["calibrated", "proven"])
def test_coef_denoise_is_exact_on_clear_bfv(tmp_path, bounds):
    hu = data.load_image(data.example_slice_path())[40:72, 40:72]
    np.save(tmp_path / "in.npy", hu)
    run = hejax(
        "denoise", tmp_path / "in.npy", "--backend", "clear-bfv", "--preset",
        "small", "--transform", "coef", "--masks", "off", "--out", tmp_path / "r.npy",
        "--bounds", bounds, "--workers", "2",
    )  # fmt: skip
    exact = float(run.stdout.split("max |enc - fixed-point reference|")[1].split()[0])
    assert exact == 0.0
    err = float(run.stdout.split("max |enc - plain|")[1].split()[0])
    assert err < 0.05  # f = g = 8 fixed point against the float32 model
    assert "rounds" in run.stdout and np.load(tmp_path / "r.npy").shape == (32, 32)


def test_coef_needs_an_explicit_mask_mode_and_a_bfv_backend(tmp_path, capsys):
    np.save(tmp_path / "in.npy", np.zeros((24, 24)))
    args = ["denoise", str(tmp_path / "in.npy"), "--transform", "coef"]
    assert cli.main([*args, "--backend", "clear-bfv"]) == 2
    assert "masks" in capsys.readouterr().err
    assert cli.main([*args, "--backend", "clear", "--masks", "off"]) == 2
    assert "coefficient" in capsys.readouterr().err
    bad = [*args, "--backend", "clear-bfv", "--masks", "off", "--bounds", "loose"]
    assert cli.main(bad) == 2
    assert "--bounds must be" in capsys.readouterr().err


def test_compare_writes_one_row_per_backend_and_transform(tmp_path):
    out = tmp_path / "cmp" / "table.md"
    run = hejax(
        "compare", "example", "--crop", "24", "--backends", "clear",
        "--transforms", "shift,shift-out", "--out", out,
    )  # fmt: skip
    rows = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| backend | transform | rounds")
    body = [r.split(" | ") for r in rows[1:]]
    assert [(r[0], r[1]) for r in body] == [
        ("| clear", "shift"),
        ("| clear", "shift-out"),
    ]
    assert all(int(r[2]) == 10 and float(r[7]) <= 1e-5 for r in body)
    assert str(out) in run.stdout


def test_compare_refuses_unknown_names_and_plain(tmp_path):
    for args, message in [
        (["--backends", "nope"], "unknown backend nope"),
        (["--transforms", "rot"], "unknown transform rot"),
        (["--plain"], "drop --plain"),
    ]:
        run = hejax("compare", "example", *args, check=False, cwd=tmp_path)
        assert run.returncode == 2 and message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_crop_keeps_the_centre_and_is_checked(tmp_path):
    out = tmp_path / "r.dcm"
    hejax("denoise", "example", "--crop", "48", "--plain", "--out", out)
    assert pydicom.dcmread(out).pixel_array.shape == (48, 48)
    run = hejax("denoise", "example", "--crop", "500", "--plain", check=False)
    assert run.returncode == 2 and "--crop must be between 1" in run.stderr
