"""The linear RED-CNN on real HE backends matches the plaintext model.

Bound: max |enc − plain| ≤ 1e-4 for images in [0, 1] (CKKS is approximate;
the measured errors are near 1e-7, see bench/results/transforms.md).
"""

import jax
import numpy as np
import pytest

import hejax
from hejax.ldct import models
from tests.compiler.conftest import as_f64

BOUND = 1e-4
HE_BACKENDS = ("openfhe", "tenseal")


@pytest.fixture(scope="module")
def redcnn():
    with jax.experimental.enable_x64():
        model = models.make_model("lite", "linear", features=4)
        rng = np.random.default_rng(7)
        params = as_f64(models.init_params(model, (1, 64, 64, 1)), rng, 0.01)
        x = rng.uniform(0, 1, (1, 64, 64, 1))

        def fn(p, x):
            return model.apply({"params": p}, x)

        return fn, params, x, np.asarray(fn(params, x))


@pytest.mark.slow
@pytest.mark.parametrize("name", HE_BACKENDS)
def test_linear_redcnn_64(name, redcnn):
    fn, params, x, want = redcnn
    backend = hejax.backends.get(name)
    program = hejax.compile(fn, params, x, backend=backend, transform="auto")
    # The default preset is shallow: the program refreshes where depth ends.
    assert program.depth <= backend.capabilities.max_depth
    got = hejax.execute(program, x)
    err = np.max(np.abs(got - want))
    assert err <= BOUND, err
