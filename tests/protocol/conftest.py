import jax
import numpy as np
import pytest

from hejax.ldct import models


def redcnn_case(variant, size, features, seed=0, x64=False):
    """A RED-CNN with random weights, its input in [0, 1] and the plain output."""
    model = models.make_model("lite", variant, features=features)
    rng = np.random.default_rng(seed)

    def fn(p, x):
        return model.apply({"params": p}, x)

    x = rng.uniform(0, 1, (1, size, size, 1))
    if x64:
        with jax.experimental.enable_x64():
            params = jax.tree.map(
                lambda a: np.asarray(a, np.float64) + rng.normal(0, 0.02, np.shape(a)),
                models.init_params(model, (1, size, size, 1), seed),
            )
            return fn, params, x, np.asarray(fn(params, x))
    params = jax.tree.map(
        lambda a: np.asarray(a) + rng.normal(0, 0.02, np.shape(a)).astype(np.float32),
        models.init_params(model, (1, size, size, 1), seed),
    )
    return fn, params, x, np.asarray(fn(params, x.astype(np.float32)), np.float64)


@pytest.fixture
def case():
    return redcnn_case
