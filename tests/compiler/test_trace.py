import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import hejax
from hejax import errors
from hejax.ir import Graph, Node, evaluate, validate


class Small(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(3, (3, 3))(x))
        return nn.ConvTranspose(1, (3, 3), padding="VALID")(h) * 2.0


def small():
    m = Small()
    x = jnp.ones((1, 8, 8, 1), jnp.float64)
    return m, m.init(jax.random.PRNGKey(0), x), x


def test_flax_linen_traces_to_ir():
    m, p, x = small()
    g = hejax.trace(m.apply, p, x)
    ops = [n.op for n in g.nodes]
    assert ops == [
        "input",
        "conv2d",
        "add_const",
        "relu",
        "conv2d",
        "add_const",
        "mul_const",
    ]
    assert g.nodes[1].attrs["weight"].shape == (3, 3, 1, 3)
    assert g.nodes[1].attrs["weight"].flags.writeable is False
    np.testing.assert_allclose(evaluate(g, x), m.apply(p, x)[0], atol=1e-12)


def test_ir_text_form_is_readable():
    m, p, x = small()
    text = str(hejax.trace(m.apply, p, x))
    assert "conv2d_1 = conv2d(input_0) {weight=f64[3, 3, 1, 3]" in text
    assert "relu_3 = relu(add_const_2) : 8x8x3" in text
    assert text.endswith("return mul_const_6")


def test_nested_jit_and_custom_jvp_are_inlined():
    w = np.ones((3, 3, 1, 2)) / 9

    @jax.jit
    def inner(x):
        return jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )

    def fn(params, x):
        return jax.nn.relu(inner(x)) - params["b"]

    g = hejax.trace(fn, {"b": np.float64(0.5)}, jnp.ones((1, 6, 6, 1)))
    assert [n.op for n in g.nodes] == ["input", "conv2d", "relu", "add_const"]


def test_nnx_module_traces():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.conv = nnx.Conv(1, 2, (3, 3), rngs=rngs)

        def __call__(self, x):
            return nnx.relu(self.conv(x))

    graphdef, state = nnx.split(Net(nnx.Rngs(0)))

    def fn(state, x):
        return nnx.merge(graphdef, state)(x)

    x = jnp.ones((1, 6, 6, 1))
    g = hejax.trace(fn, state, x)
    assert [n.op for n in g.nodes] == ["input", "conv2d", "add_const", "relu"]


def test_dense_on_pixels_is_a_1x1_conv():
    m = nn.Dense(3)
    x = jnp.ones((1, 4, 4, 2))
    g = hejax.trace(m.apply, m.init(jax.random.PRNGKey(0), x), x)
    assert g.nodes[1].op == "conv2d"
    assert g.nodes[1].attrs["weight"].shape == (1, 1, 2, 3)


@pytest.mark.parametrize(
    "fn, primitive",
    [
        (lambda p, x: jnp.tanh(x), "tanh"),
        (lambda p, x: x * x, "mul"),
        (lambda p, x: jnp.maximum(x, 1.0), "max"),
        (lambda p, x: jnp.exp(x), "exp"),
        (lambda p, x: x[:, :2], "slice"),
    ],
)
def test_unsupported_ops_name_primitive_and_source_line(fn, primitive):
    with pytest.raises(errors.UnsupportedModelError) as info:
        hejax.trace(fn, {}, jnp.ones((1, 4, 4, 1)))
    msg = str(info.value)
    assert f"`{primitive}`" in msg
    assert "test_trace.py" in msg


@pytest.mark.parametrize(
    "spec, match",
    [
        (jax.ShapeDtypeStruct((2, 8, 8, 1), jnp.float32), "batch size 2"),
        (jax.ShapeDtypeStruct((1, 8, 8, 1), jnp.int32), "dtype int32"),
        (jax.ShapeDtypeStruct((8, 8, 1), jnp.float32), "must be"),
        ("not a spec", "ShapeDtypeStruct"),
    ],
)
def test_bad_input_specs(spec, match):
    m, p, _ = small()
    with pytest.raises(errors.InvalidInputError, match=match):
        hejax.trace(m.apply, p, spec)


def test_function_that_ignores_the_input_is_refused():
    with pytest.raises(errors.UnsupportedModelError, match="depends on the input"):
        hejax.trace(lambda p, x: p["c"], {"c": jnp.ones(3)}, jnp.ones((1, 4, 4, 1)))


def test_validator_catches_malformed_graphs():
    inp = Node("x", "input", (), (4, 4, 1))
    with pytest.raises(errors.InternalError, match="not defined"):
        validate(Graph((inp, Node("r", "relu", ("y",), (4, 4, 1))), "r"))
    with pytest.raises(errors.InternalError, match="shapes differ"):
        validate(Graph((inp, Node("r", "relu", ("x",), (4, 4, 2))), "r"))
    with pytest.raises(errors.InternalError, match="unknown IR op"):
        validate(Graph((inp, Node("r", "tanh", ("x",), (4, 4, 1))), "r"))
