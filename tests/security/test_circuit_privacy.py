"""Server(rerandomize=True): fresh ciphertexts, correct results, weight-blind noise."""

import numpy as np
import pytest

import hejax
from hejax import errors, protocol


def conv_relu_conv(size=16):
    """Two 3x3 convs with a ReLU between: one ReLU round, then the output."""
    import flax.linen as nn
    import jax

    class Net(nn.Module):
        @nn.compact
        def __call__(self, v):
            v = nn.relu(nn.Conv(2, (3, 3), padding="SAME")(v))
            return nn.Conv(1, (3, 3), padding="SAME")(v)

    net = Net()
    x = np.random.default_rng(0).uniform(0, 1, (1, size, size, 1))
    params = net.init(jax.random.key(0), x)["params"]

    def fn(p, v):
        return net.apply({"params": p}, v)

    return fn, params, x, np.asarray(fn(params, x), np.float64)


HE = ("openfhe", "tenseal")


def error_std(name, weight, flood, repeats=2):
    backend = hejax.backends.get(name)
    client = backend.keygen()
    server = backend.load_public(client.public_bundle())
    x = np.random.default_rng(0).uniform(-1, 1, client.slots)
    errs = []
    for _ in range(repeats):
        ct = server.rescale(server.mul_scalar(server.encrypt(x), weight))
        ct = server.drop_level(ct, backend.capabilities.max_depth)
        ct = server.rerandomize(ct, flood)
        errs.append(client.decrypt(ct) - weight * x)
    return float(np.std(np.concatenate(errs))), backend


@pytest.mark.parametrize("name", HE)
def test_flooding_hides_the_weight_magnitude_in_the_noise(name):
    small, backend = error_std(name, 0.125, 0.0)
    large, _ = error_std(name, 8.0, 0.0)
    assert large > 4 * small  # without flooding the noise shows the weight
    flood = protocol.FLOOD_FRACTION * backend.capabilities.precision
    small, _ = error_std(name, 0.125, flood)
    large, _ = error_std(name, 8.0, flood)
    # With flooding both are the flooding std, within sampling error (~2%).
    assert abs(large / small - 1) < 0.06, (small, large)
    assert abs(small / flood - 1) < 0.06, (small, flood)


@pytest.mark.parametrize("name", HE)
def test_rerandomized_protocol_is_fresh_and_correct(name):
    fn, params, x, want = conv_relu_conv()
    program = hejax.compile(fn, params, x, backend=name)
    client = hejax.Client(program)
    bundle = client.public_bundle()
    server = hejax.Server(program, bundle, seed=1)
    flooded = hejax.Server(program, bundle, seed=1, rerandomize=True)
    message = client.encrypt(x)
    again = hejax.Server(program, bundle, seed=1)
    plain, noisy = server.start(message), flooded.start(message)
    # Same masks, same input: without it the server's bytes are reproducible
    # (its noise is a function of input and weights); with it they are fresh.
    assert plain == again.start(message)
    assert noisy != plain
    out_plain = hejax.run(client, server, x)[0]
    out = hejax.run(client, flooded, x)[0]
    assert np.max(np.abs(out_plain - want)) <= 1e-4
    flood = protocol.FLOOD_FRACTION * program.capabilities.precision
    assert np.max(np.abs(out - want)) <= 1e-4 + 64 * flood
    assert np.max(np.abs(out - want)) > np.max(np.abs(out_plain - want))


def test_rerandomize_checks_its_arguments():
    backend = hejax.backends.get("clear")
    ctx = backend.keygen()
    ct = ctx.encrypt(np.ones(4))
    assert np.array_equal(ctx.decrypt(ctx.rerandomize(ct)), ctx.decrypt(ct))
    with pytest.raises(errors.InvalidInputError, match="exact"):
        ctx.rerandomize(ct, 1e-13)
    with pytest.raises(errors.LevelMismatchError):
        ctx.rerandomize(ctx.mul_scalar(ct, 2.0))
    he = hejax.backends.get("tenseal").keygen()
    for bad in (-1.0, float("nan"), 1.0, "1e-6", True):
        with pytest.raises(errors.InvalidInputError, match="flood"):
            he.rerandomize(he.encrypt(np.ones(4)), bad)
