"""The coef transform's pieces: packing, fixed point, options and errors."""

import jax.numpy as jnp
import numpy as np
import pytest

import hejax
from hejax import errors
from hejax import fixedpoint as fx
from hejax.coeflayout import pack_conv
from hejax.ir import Node, _conv
from hejax.ring import centered, ring_mul

T = 4294967291


def _conv_by_products(attrs, x, out_shape, n):
    """Run a packed convolution with ring products; decode its output."""
    pack = pack_conv(attrs, x.shape, out_shape, n, "conv")
    polys = np.mod(pack.input.encode(x), T)
    kern = np.rint(pack.kernel).astype(np.int64)
    ones = np.ones(kern.shape[2:], dtype=np.int64)
    outs = np.zeros((pack.output.count, n), dtype=np.int64)
    for tile in range(pack.input.tiles):
        for go in range(pack.out_groups):
            acc = np.zeros(n, dtype=np.int64)
            for gi in range(pack.in_groups):
                ct = polys[tile * pack.in_groups + gi]
                acc = (
                    acc + ring_mul(ct, pack.kernel_poly(kern, gi, go, T, ones), T)
                ) % T
            outs[tile * pack.out_groups + go] = acc
    return pack, pack.output.decode(centered(outs, T))


GEOMETRIES = [
    # (h, w, cin, cout, k, padding, lhs, stride, rhs, N)
    (12, 12, 1, 4, 5, ((0, 0), (0, 0)), (1, 1), (1, 1), (1, 1), 1024),
    (12, 12, 3, 4, 5, ((4, 4), (4, 4)), (1, 1), (1, 1), (1, 1), 1024),  # tconv
    (40, 40, 3, 5, 3, ((1, 1), (1, 1)), (1, 1), (1, 1), (1, 1), 1024),  # tiles
    (20, 17, 4, 3, 3, ((1, 1), (1, 1)), (1, 1), (2, 2), (1, 1), 1024),  # stride
    (9, 9, 2, 3, 3, ((2, 2), (2, 2)), (2, 2), (1, 1), (1, 1), 1024),  # upsampling
    (16, 16, 2, 3, 3, ((2, 2), (2, 2)), (1, 1), (1, 1), (2, 2), 1024),  # dilation
    (10, 10, 6, 6, 3, ((0, 0), (0, 0)), (1, 1), (1, 1), (1, 1), 1024),  # packing
]


@pytest.mark.parametrize("geo", GEOMETRIES)
def test_one_product_per_group_pair_computes_the_convolution(geo):
    h, w, cin, cout, k, pad, lhs, stride, rhs, n = geo
    rng = np.random.default_rng(sum(geo[:5]))
    attrs = {
        "weight": rng.integers(-9, 10, (k, k, cin, cout)).astype(float),
        "stride": stride,
        "padding": pad,
        "lhs_dilation": lhs,
        "rhs_dilation": rhs,
        "groups": 1,
    }
    hd = (h - 1) * lhs[0] + 1 + sum(pad[0])
    wd = (w - 1) * lhs[1] + 1 + sum(pad[1])
    kd = (k - 1) * rhs[0] + 1
    out_shape = ((hd - kd) // stride[0] + 1, (wd - kd) // stride[1] + 1, cout)
    x = rng.integers(-99, 100, (h, w, cin))
    pack, got = _conv_by_products(attrs, x, out_shape, n)
    want = _conv(Node("c", "conv2d", ("x",), out_shape, attrs), x.astype(float))
    assert np.array_equal(got, want.astype(np.int64))
    assert pack.in_groups * pack.out_groups * pack.input.tiles == pack.products


def test_packing_puts_several_channels_in_one_polynomial():
    pack, _ = _conv_by_products(
        {
            "weight": np.ones((3, 3, 6, 6)),
            "stride": (1, 1),
            "padding": ((0, 0), (0, 0)),
            "lhs_dilation": (1, 1),
            "rhs_dilation": (1, 1),
            "groups": 1,
        },
        np.ones((10, 10, 6), dtype=np.int64),
        (8, 8, 6),
        1024,
    )
    assert pack.input.per_group * pack.output.per_group > 1
    assert pack.products < 36


def test_rescale_rounds_half_up_on_negatives_too():
    y = np.array([-384, -385, -383, -128, -129, 127, 128, 383, 384])
    assert fx.rescale(y, 8).tolist() == [-1, -2, -1, 0, -1, 0, 1, 1, 2]
    big = np.array([-(3 << 80) - (1 << 79), 5 << 80], dtype=object)
    assert fx.rescale(big, 80).tolist() == [-3, 5]


def test_quantize_is_exact_at_large_scales():
    q = fx.quantize(np.array([0.75, -1.5]), 90)
    assert q.dtype == object and q.tolist() == [3 << 88, -(3 << 89)]
    assert fx.quantize(np.array([0.5, -0.5, 0.49]), 0).tolist() == [1, 0, 0]


def test_crt_recombines_centred_integers():
    moduli = fx.primes_below(2**32, 3)
    rng = np.random.default_rng(3)
    values = np.array(
        [int(v) * 2**50 + int(u) for v, u in rng.integers(-(2**40), 2**40, (50, 2))],
        dtype=object,
    )
    parts = [fx.residues_of(values, t) for t in moduli]
    assert np.array_equal(fx.crt(parts, moduli), values)
    small = np.array([-5, 7, 0])
    assert np.array_equal(fx.crt([np.mod(small, 65537)], [65537]), small)


def _model():
    def fn(p, x):
        y = jnp.maximum(_conv2d(x, p["w1"]) + p["b"], 0)
        return _conv2d(y, p["w2"])

    rng = np.random.default_rng(0)
    params = {
        "w1": rng.normal(0, 0.3, (3, 3, 1, 2)),
        "b": rng.normal(0, 0.1, (2,)),
        "w2": rng.normal(0, 0.3, (3, 3, 2, 1)),
    }
    return fn, params, rng.uniform(0, 1, (1, 12, 12, 1))


def _conv2d(x, w):
    import jax

    return jax.lax.conv_general_dilated(
        x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def test_compile_options_and_backends_are_checked():
    fn, params, x = _model()
    be = hejax.backends.get("clear-bfv", preset="small")
    with pytest.raises(errors.InvalidInputError, match="masks"):
        hejax.compile(fn, params, x, backend=be, transform="coef")
    with pytest.raises(errors.InvalidInputError, match="unknown coef option"):
        hejax.compile(fn, params, x, backend=be, transform="coef", masks="off", z=1)
    with pytest.raises(errors.InvalidInputError, match="coefficient"):
        hejax.compile(fn, params, x, backend="clear", transform="coef", masks="off")
    with pytest.raises(errors.InvalidInputError, match="coef"):
        hejax.compile(fn, params, x, backend=be, transform="shift")
    with pytest.raises(errors.UnsupportedModelError, match="plaintext bits"):
        hejax.compile(
            fn, params, x, backend=be, transform="coef", masks="channel",
            frac_bits=24, weight_bits=24, mask_bits=24, input_bound=1e60,
        )  # fmt: skip


def test_same_padding_model_is_exact_and_lists_its_rounds():
    fn, params, x = _model()
    be = hejax.backends.get("clear-bfv", preset="small")
    program = hejax.compile(fn, params, x, backend=be, transform="coef", masks="off")
    assert "coef" in hejax.transforms.names()
    assert len(program.segments) == 2 and program.segments[0].relu
    assert "conv" in program.summary()
    client = hejax.Client(program)
    out, _ = hejax.run(client, hejax.Server(program, client.public_bundle()), x)
    assert np.array_equal(out, program.decode_output(program.reference(x)))
    assert np.max(np.abs(out - np.asarray(fn(params, x)))) <= program.error_bound_for(x)


def test_dense_layers_are_refused():
    def fn(p, x):
        return x.reshape(1, -1) @ p

    be = hejax.backends.get("clear-bfv", preset="small")
    with pytest.raises(errors.UnsupportedModelError, match="coef"):
        hejax.compile(
            fn, np.ones((16, 2)), np.ones((1, 4, 4, 1)), backend=be,
            transform="coef", masks="off",
        )  # fmt: skip
