"""Every script in examples/ runs, with fast settings, and does what it says."""

import json
import runpy
from pathlib import Path

import pytest

import hejax
from hejax.ldct import models, pretrained

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def example(name):
    return runpy.run_path(str(EXAMPLES / name), run_name="example")["main"]


@pytest.mark.parametrize("backend", ["clear", "openfhe", "tenseal"])
def test_compile_your_own_model_matches_plaintext(backend, capsys):
    err = example("compile_your_own.py")(["--backend", backend, "--size", "16"])
    assert err <= 1e-4  # CKKS bound for images in [0, 1]; float32 model on clear
    out = capsys.readouterr().out
    assert "conv_transpose2d" in out and "rounds (3)" in out


def test_denoise_example_gains_psnr_on_ciphertexts():
    result = example("denoise_ct.py")(["--backend", "clear", "--crop", "32"])
    assert result["max |enc - plain|"] <= 1e-5  # float32 model vs float64 slots
    assert result["encrypted PSNR"] > result["low-dose PSNR"] + 1.0
    assert result["rounds"] == 10 and result["MB to server"] > 0


def test_compare_backends_example_agrees_with_clear():
    # Paillier encrypts one value per slot (4096 at 128-bit): minutes, so it
    # is left to its own tests; every other slot backend runs here.
    names = "openfhe,tenseal"
    errors = example("compare_backends.py")(["--size", "32", "--backends", names])
    assert set(errors) == {"clear", "openfhe", "tenseal"}
    for name, err in errors.items():
        assert err <= hejax.backends.get(name).capabilities.precision, name


def test_train_example_writes_loadable_weights_and_manifest(tmp_path):
    example("train_redcnn.py")(
        ["--variant", "linear", "--steps", "2", "--n-images", "4"]
        + ["--batch-size", "2", "--out", str(tmp_path), "--no-progress"]
    )
    entry = json.loads((tmp_path / pretrained.MANIFEST).read_text())[
        "redcnn-lite-linear.msgpack"
    ]
    assert entry["train_config"]["steps"] == 2 and "evaluation" in entry
    blob = (tmp_path / "redcnn-lite-linear.msgpack").read_bytes()
    params = pretrained.load_params(models.make_model("lite", "linear"), blob)
    assert params["conv1"]["kernel"].shape == (5, 5, 1, 16)
    assert entry["command"].endswith("--out " + str(tmp_path) + " --no-progress")
