"""Compile-and-run on the clear backend equals the JAX function within 1e-9."""

import re

import flax.linen as nn
import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import hejax
from hejax import errors
from hejax.ldct import models
from tests.compiler.conftest import as_f64

TOL = 1e-9
TRANSFORMS = ("shift", "shift-out", "auto")


def check(module, x, *, slots=4096, transform="auto", seed=0, depth=16):
    rng = np.random.default_rng(seed)
    params = as_f64(module.init(jax.random.PRNGKey(seed), x), rng)
    backend = hejax.backends.get("clear", slots=slots, max_depth=depth)
    program = hejax.compile(
        module.apply, params, x, backend=backend, transform=transform
    )
    got = hejax.execute(program, x)
    want = np.asarray(module.apply(params, x))
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOL
    return program


class Seq(nn.Module):
    layers: tuple

    @nn.compact
    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


PRIMITIVES = {
    "conv-same": nn.Conv(3, (3, 3)),
    "conv-valid": nn.Conv(2, (5, 5), padding="VALID"),
    "conv-stride2": nn.Conv(2, (3, 3), strides=2),
    "conv-explicit-pad": nn.Conv(2, (3, 3), padding=((2, 0), (1, 3))),
    "conv-rhs-dilation": nn.Conv(2, (3, 3), kernel_dilation=2),
    "conv-groups": nn.Conv(4, (3, 3), feature_group_count=2),
    "conv-no-bias": nn.Conv(2, (3, 3), use_bias=False),
    "conv-1x1": nn.Conv(3, (1, 1)),
    "tconv-valid": nn.ConvTranspose(2, (5, 5), padding="VALID"),
    "tconv-same": nn.ConvTranspose(2, (3, 3), padding="SAME"),
    "dense-per-pixel": nn.Dense(3),
}


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("name", sorted(PRIMITIVES))
def test_each_primitive_alone(name, transform):
    x = np.random.default_rng(1).uniform(0, 1, (1, 12, 12, 2))
    check(Seq((PRIMITIVES[name],)), x, transform=transform)


def test_strided_then_transposed_strided():
    x = np.random.default_rng(2).uniform(0, 1, (1, 12, 12, 1))
    layers = (
        nn.Conv(3, (3, 3), strides=2),
        nn.ConvTranspose(2, (3, 3), strides=(2, 2)),
    )
    check(Seq(layers), x)


def test_transposed_stride_on_full_resolution_is_refused():
    x = np.zeros((1, 8, 8, 1))
    with pytest.raises(errors.UnsupportedModelError, match="transposed convolution"):
        check(Seq((nn.ConvTranspose(1, (3, 3), strides=(2, 2)),)), x)


class Affine(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Conv(2, (3, 3))(x)
        h = h * np.array([0.5, -2.0]) - 0.25  # per-channel scale, constant shift
        h = h + np.linspace(-1, 1, 8 * 8 * 2).reshape(1, 8, 8, 2)  # full constant
        h = h * np.linspace(1, 2, 8 * 8 * 2).reshape(1, 8, 8, 2)  # full product
        return (h - nn.Conv(2, (1, 1))(x)) / 4.0


def test_constants_residual_and_difference():
    check(Affine(), np.random.default_rng(3).uniform(0, 1, (1, 8, 8, 1)))


class Head(nn.Module):
    @nn.compact
    def __call__(self, x):
        h = nn.Conv(2, (3, 3), padding="VALID")(x)
        return nn.Dense(5)(h.reshape((1, -1)))


@pytest.mark.parametrize("slots", [4096, 64])
def test_dense_after_flatten(slots):
    check(Head(), np.random.default_rng(4).uniform(0, 1, (1, 8, 8, 1)), slots=slots)


def test_dense_on_a_vector():
    check(
        Seq((nn.Dense(7), nn.Dense(3))),
        np.random.default_rng(5).uniform(-1, 1, (1, 10)),
    )


# -- random small conv nets ----------------------------------------------------


@st.composite
def conv_nets(draw):
    size = draw(st.sampled_from([8, 12, 16]))
    c_in = draw(st.integers(1, 3))
    layers, strided = [], 1
    side = size
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.sampled_from([1, 3, 5]))
        pad = draw(st.sampled_from(["SAME", "VALID"]))
        c = draw(st.integers(1, 8))
        stride = draw(st.sampled_from([1, 2])) if strided == 1 and size >= 12 else 1
        transposed = draw(st.booleans())
        if transposed and stride == 1 and strided > 1:
            layers.append(("tconv", c, k, "SAME", strided))
            side, strided = side * strided, 1
        elif transposed and stride == 1:
            layers.append(("tconv", c, k, pad, 1))
            side = side + k - 1 if pad == "VALID" else side
        else:
            if pad == "VALID" and side - k + 1 < 4:  # keep the map non-empty
                pad = "SAME"
            side = side - k + 1 if pad == "VALID" else side
            layers.append(("conv", c, k, pad, stride))
            side, strided = -(-side // stride), strided * stride
    residual = draw(st.booleans())
    return size, c_in, tuple(layers), residual


class RandomNet(nn.Module):
    spec: tuple
    residual: bool

    @nn.compact
    def __call__(self, x):
        h = x
        for kind, c, k, pad, stride in self.spec:
            if kind == "conv":
                h = nn.Conv(c, (k, k), strides=stride, padding=pad)(h)
            else:
                h = nn.ConvTranspose(c, (k, k), strides=(stride, stride), padding=pad)(
                    h
                )
        if self.residual:
            # A 1x1 projection back to the input's size, where shapes allow.
            if h.shape == x.shape:
                return h + x
            return h + nn.Conv(h.shape[-1], (1, 1))(h)
        return h


WIDE_NET = (  # sees 8 pixels around each output: no tile fits 256 slots
    12,
    1,
    (("tconv", 1, 5, "VALID", 1), ("conv", 1, 5, "SAME", 2), ("conv", 1, 5, "SAME", 1)),
    False,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(conv_nets(), st.sampled_from(TRANSFORMS), st.sampled_from([4096, 256]))
@example(WIDE_NET, "shift", 256)
def test_random_conv_nets(net, transform, slots):
    size, c_in, spec, residual = net
    x = np.random.default_rng(size).uniform(0, 1, (1, size, size, c_in))
    try:
        check(RandomNet(spec, residual), x, transform=transform, slots=slots)
    except errors.UnsupportedModelError as exc:
        # Some drawn nets see too far for 256 slots: a tile with halo h needs
        # (2h + 1)^2 slots. Only that refusal, and only when it is true, passes.
        found = re.match(r"a tile with halo (\d+) does not fit (\d+) slots", str(exc))
        assert found, exc
        halo, have = map(int, found.groups())
        assert have == slots and (2 * halo + 1) ** 2 > slots, exc
        assume(False)


# -- RED-CNN -----------------------------------------------------------------


def redcnn(features=4):
    model = models.make_model("lite", "linear", features=features)
    return model, lambda p, x: model.apply({"params": p}, x)


@pytest.mark.parametrize("size, slots", [(64, 4096), (128, 4096)])
def test_linear_redcnn(size, slots):
    model, fn = redcnn()
    rng = np.random.default_rng(size)
    params = as_f64(models.init_params(model, (1, size, size, 1)), rng, 0.01)
    x = rng.uniform(0, 1, (1, size, size, 1))
    be = hejax.backends.get("clear", slots=slots)
    program = hejax.compile(fn, params, x, backend=be)
    if size * size > slots:
        assert program.input.grid.tiles > 1
    got = hejax.execute(program, x)
    want = np.asarray(fn(params, x))
    assert np.max(np.abs(got - want)) <= TOL


def test_refresh_rounds_where_depth_runs_out():
    model, fn = redcnn(2)
    params = as_f64(models.init_params(model, (1, 32, 32, 1)), np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0, 1, (1, 32, 32, 1))
    deep = hejax.backends.get("clear", max_depth=16)
    shallow = hejax.backends.get("clear", max_depth=2)
    p_deep = hejax.compile(fn, params, x, backend=deep)
    p_shallow = hejax.compile(fn, params, x, backend=shallow)
    assert not p_deep.boundaries
    assert p_shallow.boundaries and all(
        b.kind == "refresh" for b in p_shallow.boundaries
    )
    assert p_shallow.depth <= 2
    want = np.asarray(fn(params, x))
    assert np.max(np.abs(hejax.execute(p_shallow, x) - want)) <= TOL
    with pytest.raises(errors.DepthExhaustedError, match="refresh=False"):
        hejax.compile(fn, params, x, backend=shallow, refresh=False)
