import jax
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def x64():
    # Exact comparisons (1e-9) need the JAX reference in float64.
    with jax.experimental.enable_x64():
        yield


def as_f64(params, rng=None, scale=0.1):
    """Parameters in float64, with random biases so that no term vanishes."""

    def conv(a):
        a = np.asarray(a, np.float64)
        return a + rng.normal(0, scale, a.shape) if rng is not None else a

    return jax.tree.map(conv, params)
