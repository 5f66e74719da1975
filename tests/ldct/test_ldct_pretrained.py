import importlib.resources

import flax.serialization
import jax
import numpy as np
import pytest

from hejax.errors import InvalidInputError, SerializationError
from hejax.ldct import data, models, pretrained, train

VARIANTS = sorted(models.VARIANTS)


def test_lite_weights_ship_for_every_variant():
    assert pretrained.available() == [("lite", v) for v in VARIANTS]
    folder = importlib.resources.files("hejax.ldct") / "weights"
    for variant in VARIANTS:
        blob = folder / pretrained.weights_name("lite", variant)
        assert blob.is_file()
        assert len(blob.read_bytes()) < 400_000


@pytest.mark.parametrize("variant", VARIANTS)
def test_manifest_records_how_weights_were_made(variant):
    entry = pretrained.manifest()[pretrained.weights_name("lite", variant)]
    assert entry["variant"] == variant and entry["preset"] == "lite"
    assert entry["command"].startswith("python examples/train_redcnn.py")
    assert entry["train_config"]["seed"] != train.HELDOUT_SEED
    assert set(entry["evaluation"]) == {
        f"{where}_i0={i0:g}"
        for where in ("heldout", "real_slice")
        for i0 in train.EVAL_I0
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_load_pretrained(variant):
    model, params = pretrained.load_pretrained(variant)
    assert isinstance(model, models.REDCNN) and model.variant == variant
    x = np.full((1, 32, 32, 1), 0.3, np.float32)
    assert model.apply({"params": params}, x).shape == x.shape


def test_unknown_weights_list_what_ships():
    with pytest.raises(InvalidInputError, match=r"available.*'lite', 'linear'"):
        pretrained.load_pretrained("all-relu", preset="paper")
    with pytest.raises(InvalidInputError, match="variant='tanh'"):
        pretrained.load_pretrained("tanh")


def test_save_and_load_round_trip(tmp_path):
    model = models.make_model("lite", "linear", features=3)
    params = models.init_params(model, (1, 32, 32, 1), seed=5)
    path = pretrained.save_params(params, tmp_path / "w.msgpack")
    restored = pretrained.load_params(model, path.read_bytes())
    jax.tree.map(np.testing.assert_array_equal, params, restored)


def test_load_params_rejects_bad_bytes():
    model = models.make_model("lite", "linear")
    with pytest.raises(SerializationError):
        pretrained.load_params(model, b"\x00garbage")
    other = models.init_params(models.make_model("lite", features=8), (1, 32, 32, 1))
    with pytest.raises(SerializationError, match="do not fit"):
        pretrained.load_params(model, flax.serialization.to_bytes(other))


@pytest.fixture(scope="module")
def all_relu():
    return pretrained.load_pretrained("all-relu")


def test_all_relu_gains_2db_on_heldout_phantoms(all_relu):
    # quarter dose (2.5e4 against 1e5 photons), the harder of EVAL_I0
    low, normal = data.simulate_dataset(8, train.HELDOUT_SEED)
    scores = train.evaluate(*all_relu, low, normal)
    assert scores["psnr_gain"] >= 2.0, scores
    assert scores["ssim_gain"] > 0.0, scores


@pytest.mark.parametrize("i0", train.EVAL_I0)
def test_all_relu_gains_2db_on_real_slice(all_relu, i0):
    low, normal = data.example_pair(seed=1, config=data.DoseConfig(i0_low=i0))
    scores = train.evaluate(*all_relu, low, normal)
    assert scores["psnr_gain"] >= 2.0, scores
    assert scores["ssim_gain"] > 0.0, scores
