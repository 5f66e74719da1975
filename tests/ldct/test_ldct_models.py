import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hejax.errors import InvalidInputError
from hejax.ldct import models

SHAPE = (1, 64, 64, 1)
ALLOWED = {
    "conv_general_dilated",
    "add",
    "reshape",
    "broadcast_in_dim",
    "max",
    "pjit",
    "custom_jvp_call",
}
RELUS = {"linear": 0, "last-relu": 1, "all-relu": 10}


def _jaxpr(model, params):
    x = jnp.zeros(SHAPE, jnp.float32)
    return jax.make_jaxpr(lambda p, x: model.apply({"params": p}, x))(params, x)


def _random_params(params, seed=0):
    keys = iter(jax.random.split(jax.random.key(seed), 64))
    return jax.tree.map(
        lambda a: 0.05 * jax.random.normal(next(keys), a.shape, a.dtype), params
    )


@pytest.mark.parametrize("variant", sorted(models.VARIANTS))
def test_variants_run_and_keep_shape(variant):
    model = models.make_model("lite", variant)
    params = _random_params(models.init_params(model, SHAPE, seed=0))
    x = jax.random.uniform(jax.random.key(1), SHAPE, jnp.float32)
    y = model.apply({"params": params}, x)
    assert y.shape == SHAPE and y.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(y)))


@pytest.mark.parametrize("variant", sorted(models.VARIANTS))
def test_jaxpr_holds_only_lowerable_primitives(variant, count_primitives):
    model = models.make_model("lite", variant)
    counts = count_primitives(_jaxpr(model, models.init_params(model, SHAPE)))
    assert set(counts) <= ALLOWED, set(counts) - ALLOWED
    assert counts["conv_general_dilated"] == 10
    assert counts["max"] == RELUS[variant]


def test_relu_is_max_with_zero():
    model = models.make_model("lite", "last-relu")
    closed = _jaxpr(model, models.init_params(model, SHAPE))
    relu = next(e for e in closed.jaxpr.eqns if e.primitive.name == "custom_jvp_call")
    inner = relu.params["call_jaxpr"].jaxpr
    pjit = next(e for e in inner.eqns if e.primitive.name == "pjit")
    (eqn,) = pjit.params["jaxpr"].jaxpr.eqns
    assert eqn.primitive.name == "max"
    assert any(getattr(v, "val", None) == 0.0 for v in eqn.invars)


def test_parameters_are_conv_layers_with_bias():
    model = models.make_model("lite")
    params = models.init_params(model, SHAPE)
    names = [f"conv{i}" for i in range(1, 6)] + [f"tconv{i}" for i in range(1, 6)]
    assert sorted(params) == sorted(names)
    assert all(set(params[n]) == {"kernel", "bias"} for n in names)
    assert params["conv1"]["kernel"].shape == (5, 5, 1, 16)
    assert params["tconv5"]["kernel"].shape == (5, 5, 16, 1)
    assert sum(a.size for a in jax.tree.leaves(params)) == 52145


@pytest.mark.parametrize("variant", sorted(models.VARIANTS))
def test_untrained_model_is_identity_on_unit_images(variant):
    model = models.make_model("lite", variant)
    params = models.init_params(model, SHAPE, seed=3)
    x = jax.random.uniform(jax.random.key(0), SHAPE, jnp.float32)
    np.testing.assert_allclose(model.apply({"params": params}, x), x, atol=1e-6)


def test_presets_and_overrides():
    paper = models.make_model("paper")
    assert (paper.features, paper.kernel_size) == (96, 5)
    params = models.init_params(paper, (1, 24, 24, 1))
    assert params["conv2"]["kernel"].shape == (5, 5, 96, 96)

    small = models.make_model("lite", "linear", features=4, kernel_size=3)
    x = jnp.ones((2, 20, 20, 1), jnp.float32)
    params = models.init_params(small, x.shape)
    assert small.apply({"params": params}, x).shape == x.shape


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"preset": "huge"}, "preset"),
        ({"variant": "tanh"}, r"variant.*'all-relu', 'last-relu', 'linear'"),
        ({"depth": 3}, "override"),
        ({"features": 0}, "positive"),
        ({"kernel_size": 2.5}, "positive"),
    ],
)
def test_make_model_rejects_bad_settings(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        models.make_model(**kwargs)


@pytest.mark.parametrize("shape", [(64, 64, 1), (1, 64, 64, 3), (1, 16, 16, 1)])
def test_bad_input_shapes(shape):
    model = models.make_model("lite")
    params = models.init_params(model, SHAPE)
    with pytest.raises(InvalidInputError, match="RED-CNN"):
        model.apply({"params": params}, jnp.zeros(shape, jnp.float32))
