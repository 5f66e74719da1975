import jax
import numpy as np
import optax
import pytest

from hejax.errors import InvalidInputError
from hejax.ldct import data, metrics, models, train

TINY = train.TrainConfig(
    steps=6, batch_size=2, patch_size=24, n_images=2, image_size=32, seed=7
)


@pytest.fixture(scope="module")
def tiny_set():
    low, normal = data.simulate_dataset(
        2, seed=1, image_size=32, config=data.DoseConfig(i0_low=5e3, n_angles=60)
    )
    return low, normal


def test_training_steps_lower_the_loss(tiny_set):
    model = models.make_model("lite", "all-relu", features=4)
    params = models.init_params(model, (1, 24, 24, 1), seed=0)
    batch = next(data.patch_batches(*tiny_set, batch_size=4, patch_size=24, seed=0))
    before = float(train.mse_loss(model, params, *batch))

    trained, losses = train.fit(
        model, params, [batch] * 20, 20, optax.adam(3e-3), progress=False
    )
    after = float(train.mse_loss(model, trained, *batch))
    assert losses.shape == (20,)
    assert losses[0] == pytest.approx(before, rel=1e-5)
    assert after < 0.9 * before


def test_fit_warns_when_batches_run_out(tiny_set):
    model = models.make_model("lite", "linear", features=2)
    params = models.init_params(model, (1, 24, 24, 1))
    batch = next(data.patch_batches(*tiny_set, batch_size=2, patch_size=24))
    with pytest.warns(UserWarning, match="ran out after 2 of 5 steps"):
        _, losses = train.fit(
            model, params, [batch] * 2, 5, optax.adam(1e-3), progress=False
        )
    assert losses.shape == (2,)


def test_train_model_is_seeded():
    model = models.make_model("lite", "linear", features=2)
    first = train.train_model(model, TINY, progress=False)
    again = train.train_model(model, TINY, progress=False)
    assert first.losses.shape == (TINY.steps,)
    assert np.all(np.isfinite(first.losses)) and first.seconds > 0
    jax.tree.map(np.testing.assert_array_equal, first.params, again.params)


def test_denoise_clamps_like_the_final_relu(tiny_set):
    model = models.make_model("lite", "last-relu", features=2)
    params = models.init_params(model, (1, 32, 32, 1))
    low = tiny_set[0][0]
    out = train.denoise(model, params, low)
    assert out.shape == low.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, np.maximum(low, -1024.0), atol=0.05)


def test_evaluate_scores_against_normal_dose(tiny_set):
    model = models.make_model("lite", "linear", features=2)
    params = models.init_params(model, (1, 32, 32, 1))
    low, normal = tiny_set
    scores = train.evaluate(model, params, low, normal)
    expected = np.mean(
        [
            metrics.psnr(data.hu_to_unit(n), data.hu_to_unit(lo))
            for n, lo in zip(normal, low, strict=True)
        ]
    )
    assert scores["psnr_low"] == pytest.approx(expected)
    assert scores["psnr_gain"] == pytest.approx(0.0, abs=1e-3)  # identity
    assert scores["ssim_gain"] == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(InvalidInputError, match="differ in shape"):
        train.evaluate(model, params, low, normal[:1])


def test_optimizer_schedule_warms_up_and_decays():
    config = train.TrainConfig(steps=100, learning_rate=1e-3)
    schedule = optax.warmup_cosine_decay_schedule(0.0, 1e-3, 5, 100, 1e-5)
    assert float(schedule(0)) == 0.0 and float(schedule(5)) == pytest.approx(1e-3)
    assert isinstance(train.make_optimizer(config), optax.GradientTransformation)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"patch_size": 256}, "exceeds"),
    ],
)
def test_train_config_validates(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        train.TrainConfig(**kwargs)
