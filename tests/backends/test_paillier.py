"""Tests of what is particular to the paillier backend (python-paillier).

The shared behaviour is checked by the conformance suite; here: presets and
their security, exact fixed-point arithmetic, scale exponents behind levels,
worker processes, the checks on loaded bytes, and the same RED-CNN through
the ordinary compiler, the masked protocol and the ``hejax`` command. All of
it runs on the toy key (512 bits) to stay fast.
"""

import jax
import numpy as np
import pytest
from hejax_paillier import PaillierBackend
from hejax_paillier._backend import max_depth

import hejax
from hejax import _wire, cli, errors
from hejax.ldct import models


@pytest.fixture(scope="module")
def toy():
    return PaillierBackend("toy", insecure=True)


@pytest.fixture(scope="module")
def ctx(toy):
    return toy.keygen(rotations=[1, -3])


@pytest.fixture(scope="module")
def server(toy, ctx):
    return toy.load_public(ctx.public_bundle())


def dyadic(rng, size, bits=10):
    """Values k / 2^bits: every sum and product below is exact in float64."""
    return rng.integers(-(2**bits), 2**bits, size) / 2.0**bits


# -- presets and security ---------------------------------------------------


def test_default_is_3072_bit_and_128_bit_secure():
    backend = PaillierBackend()
    caps = backend.capabilities
    assert backend.preset == "k3072" and backend.params["key_bits"] == 3072
    assert caps.security_bits == 128
    assert (caps.scheme, caps.exact, caps.rotation_cost) == ("paillier", True, "free")
    assert caps.slots == 4096  # one 64x64 patch per channel
    assert caps.max_depth >= 16  # RED-CNN's ten layers and its masks, no refresh
    n = backend.load_public(backend.keygen().public_bundle())._n
    assert n.bit_length() == 3072


def test_2048_bit_baseline_needs_the_flag_and_says_why():
    with pytest.raises(errors.InsecureParametersError, match="112") as info:
        PaillierBackend("k2048")
    assert "insecure=True" in str(info.value) and "3072" in str(info.value)
    caps = PaillierBackend("k2048", insecure=True).capabilities
    assert caps.security_bits == 112 and caps.slots == 4096


def test_toy_needs_the_flag():
    with pytest.raises(errors.InsecureParametersError, match="insecure=True"):
        PaillierBackend("toy")
    with pytest.raises(errors.InsecureParametersError):
        PaillierBackend(key_bits=1024)


def test_depth_is_what_the_modulus_holds():
    # max_abs * 2^(f(D+1)) must fit in the signed range of n.
    for preset in PaillierBackend.presets:
        backend = PaillierBackend(preset, insecure=True)
        p, depth = backend.params, backend.capabilities.max_depth
        used = p["max_abs_bits"] + p["scale_bits"] * (depth + 1)
        assert used <= p["key_bits"] - 2 < used + p["scale_bits"]
    assert max_depth(512, 52, 32) == 8


@pytest.mark.parametrize(
    "params",
    [
        {"key_bits": 511},
        {"key_bits": 128},
        {"key_bits": 2048.0},
        {"slots": 48},
        {"scale_bits": 100},
        {"max_abs_bits": 0},
        {"workers": 0},
        {"min_parallel": True},
    ],
)
def test_bad_parameters_are_refused(params):
    with pytest.raises(errors.InvalidInputError, match="paillier"):
        PaillierBackend("toy", insecure=True, **params)


# -- exact arithmetic -------------------------------------------------------------


def test_dyadic_arithmetic_is_exact(ctx):
    rng = np.random.default_rng(0)
    x, w, b = (dyadic(rng, ctx.slots) for _ in range(3))
    ct = ctx.encrypt(x)
    acc = ctx.mul_plain(ct, w)
    for k in (1, -3):
        acc = ctx.add(acc, ctx.mul_scalar(ctx.rotate(ct, k), -0.375))
    out = ctx.rescale(ctx.add_plain(acc, ctx.encode(b, degree=2)))
    want = x * w - 0.375 * (np.roll(x, -1) + np.roll(x, 3)) + b
    assert np.array_equal(ctx.decrypt(out), want)
    assert np.array_equal(ctx.decrypt(ctx.sub(ctx.negate(out), out)), -2 * want)


def test_full_depth_chain_is_exact(ctx):
    x = dyadic(np.random.default_rng(1), ctx.slots, bits=4)
    ct, want = ctx.encrypt(x), x.copy()
    for _ in range(ctx.capabilities.max_depth):
        ct = ctx.rescale(ctx.mul_scalar(ct, 1.5))
        want = want * 1.5
    assert ct.handle.exponent == ctx.capabilities.max_depth + 1
    assert np.array_equal(ctx.decrypt(ct), want)


def test_rounding_is_once_at_encoding(ctx):
    # Non-dyadic values: the error is the 2^-53 rounding of each input.
    x = np.random.default_rng(2).uniform(-1, 1, ctx.slots)
    out = ctx.decrypt(ctx.rescale(ctx.mul_scalar(ctx.encrypt(x), 0.1)))
    assert np.max(np.abs(out - 0.1 * x)) <= 2 * 2.0**-53


def test_levels_are_bookkeeping_and_exponents_align_on_add(ctx):
    x = dyadic(np.random.default_rng(3), ctx.slots)
    fresh = ctx.encrypt(x)
    dropped = ctx.drop_level(fresh, ctx.capabilities.max_depth)
    assert dropped.handle is fresh.handle  # nothing to compute
    product = ctx.rescale(ctx.mul_scalar(fresh, 0.5))
    assert product.handle.exponent == 2
    out = ctx.add(fresh, product)
    assert (out.level, out.handle.exponent) == (1, 2)
    assert np.array_equal(ctx.decrypt(out), 1.5 * x)


def test_worker_processes_give_the_same_results(ctx):
    pooled = PaillierBackend("toy", insecure=True, workers=2, min_parallel=2)
    two = pooled.load_public(ctx.public_bundle())
    rng = np.random.default_rng(4)
    x, w = dyadic(rng, ctx.slots), dyadic(rng, ctx.slots)
    ct = two.deserialize(ctx.serialize(ctx.encrypt(x)))
    prod = two.rescale(two.mul_plain(two.negate(ct), w))
    assert np.array_equal(ctx.decrypt(ctx.deserialize(two.serialize(prod))), -x * w)


# -- keys and bytes -----------------------------------------------------------


def test_server_context_cannot_decrypt(server, ctx):
    ct = server.deserialize(ctx.serialize(ctx.encrypt([1.0, 2.0])))
    assert not server.has_secret
    with pytest.raises(errors.SecretKeyError, match="no secret key"):
        server.decrypt(server.add_plain(ct, np.ones(server.slots)))


def test_key_of_another_context_is_refused(toy, ctx, server):
    other = toy.keygen(rotations=[1])
    foreign = other.encrypt([0.5])
    with pytest.raises(errors.KeyMismatchError, match="key set"):
        server.add(server.deserialize(ctx.serialize(ctx.encrypt([1.0]))), foreign)
    with pytest.raises(errors.KeyMismatchError):
        server.deserialize(other.serialize(foreign))
    stranger = toy.load_public(other.public_bundle())
    with pytest.raises(errors.KeyMismatchError):
        stranger.deserialize(ctx.serialize(ctx.encrypt([1.0])))


def reframe(blob, kind, payload):
    """The same object with another payload and a valid checksum."""
    header, _ = _wire.unpack(kind, blob)
    return _wire.pack(kind, header, payload)


def test_corrupted_ciphertext_bytes(ctx):
    blob = ctx.serialize(ctx.encrypt(np.full(ctx.slots, 0.25)))
    _, payload = _wire.unpack("ciphertext", blob)
    width = (2 * 512 + 7) // 8
    too_big = payload[:6] + b"\xff" * width + payload[6 + width :]
    zero = payload[:6] + bytes(width) + payload[6 + width :]
    bad_exponent = (5).to_bytes(2, "little") + payload[2:]
    short = payload[:6] + payload[6 + width :]
    fewer = payload[:2] + (ctx.slots - 1).to_bytes(4, "little") + payload[6:-width]
    for bad in (payload[:-1], too_big, zero, bad_exponent, short, fewer, b"\0"):
        with pytest.raises(errors.SerializationError, match="paillier"):
            ctx.deserialize(reframe(blob, "ciphertext", bad))


def test_corrupted_bundle_bytes(toy, ctx):
    blob = ctx.public_bundle()
    n = int(ctx._n)
    for n_bad in (n + 1, n >> 1, n << 1):
        payload = _wire.pack_sections({"n": n_bad.to_bytes(130, "big")})
        with pytest.raises(errors.SerializationError, match="modulus"):
            toy.load_public(reframe(blob, "bundle", payload))
    extra = _wire.pack_sections({"n": n.to_bytes(64, "big"), "p": b"\1"})
    with pytest.raises(errors.SerializationError, match="sections"):
        toy.load_public(reframe(blob, "bundle", extra))
    with pytest.raises(errors.KeyMismatchError, match="parameters"):
        PaillierBackend("toy", insecure=True, slots=128).load_public(blob)


# -- the same models through the compiler and the protocol ----------------------


def tiny_redcnn(size=12, seed=0):
    """An all-ReLU RED-CNN of 2 channels and 3x3 kernels, float64 weights."""
    model = models.make_model("lite", "all-relu", features=2, kernel_size=3)
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (1, size, size, 1))
    with jax.experimental.enable_x64():
        params = jax.tree.map(
            lambda a: np.asarray(a, np.float64) + rng.normal(0, 0.2, np.shape(a)),
            models.init_params(model, x.shape, seed),
        )
    return model, params, x


@pytest.mark.parametrize("unmask", ["explicit", "fold"])
def test_redcnn_all_relu_with_element_masks_equals_float64(unmask):
    model, params, x = tiny_redcnn()

    def fn(p, img):
        return model.apply({"params": p}, img)

    backend = PaillierBackend("toy", insecure=True, slots=256)
    with jax.experimental.enable_x64():
        program = hejax.compile(fn, params, x, backend=backend, unmask=unmask)
        want = np.asarray(fn(params, x))
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle(), masks="element")
    out, transcript = hejax.run(client, server, x)
    ends = [r.ends for r in transcript.rounds]
    assert ends == [r.ends for r in hejax.schedule(program)]
    assert ends.count("relu") >= 9 and ends[-1] == "output"  # a round per ReLU
    assert 0 < np.mean(want > 0) < 1  # the last ReLU does clip
    assert np.max(np.abs(out - want)) <= 1e-9
    assert np.max(np.abs(out[0] - hejax.ir.evaluate(program.graph, x))) <= 1e-9


def test_denoise_command_on_a_small_patch(tmp_path, monkeypatch, capsys):
    # The shipped RED-CNN-lite needs 27 million Paillier products even on the
    # smallest patch it accepts (21x21), which is bench work; the command
    # runs here with the tiny model in its place, through the same code.
    model, params, x = tiny_redcnn()
    monkeypatch.setattr(hejax.ldct, "load_pretrained", lambda name: (model, params))
    np.save(tmp_path / "patch.npy", (x[0, ..., 0] * 3072 - 1024).astype(np.float32))
    argv = ["denoise", str(tmp_path / "patch.npy"), "--backend", "paillier"]
    argv += ["--preset", "toy", "--out", str(tmp_path / "r.npy")]
    assert cli.main(argv) == 2
    assert "insecure=True" in capsys.readouterr().err
    assert cli.main([*argv, "--insecure"]) == 0
    out = capsys.readouterr().out
    err = float(out.split("max |enc - plain|")[1].split()[0])
    assert err <= 1e-5  # the float32 plaintext model against exact slots
    assert np.load(tmp_path / "r.npy").shape == (12, 12)
