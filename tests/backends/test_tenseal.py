"""Tests of what is particular to the tenseal backend (SEAL CKKS).

The shared behaviour is checked by the conformance suite; here: presets and
their security, exact scales across levels, Galois elements, zero results,
compression and the checks on loaded bytes. Most tests use the toy preset
(N=2048) to stay fast.
"""

import numpy as np
import pytest
import tenseal.sealapi as seal
from hejax_tenseal import TenSEALBackend, _io
from hejax_tenseal._chain import galois_element

from hejax import _wire, errors
from hejax.security import MAX_LOG_Q_128

SECURE = ("n8192", "n16384", "n32768")


@pytest.fixture(scope="module")
def toy():
    return TenSEALBackend("toy", insecure=True)


@pytest.fixture(scope="module")
def ctx(toy):
    return toy.keygen(rotations=[1, -3, 5])


@pytest.fixture
def vec(ctx):
    return np.random.default_rng(7).uniform(-1, 1, ctx.slots)


def scale(ct):
    return ct.handle.scale


@pytest.mark.parametrize("preset", SECURE)
def test_presets_are_128_bit_and_fill_the_bound(preset):
    backend = TenSEALBackend(preset)
    caps, spec = backend.capabilities, backend._spec
    bound = MAX_LOG_Q_128[caps.ring_dim]
    assert caps.security_bits == 128
    assert spec.total_bits <= bound < spec.total_bits + spec.scale_bits
    assert caps.slots == caps.ring_dim // 2
    assert (caps.scheme, caps.exact, caps.hoisting) == ("ckks", False, False)
    assert caps.encodings == ("slot",)
    assert 0 < caps.precision < 1e-3 and caps.max_abs >= 64


def test_default_preset_builds_a_context_seal_calls_128_bit():
    backend = TenSEALBackend()
    assert backend.preset == "n8192"
    assert backend.capabilities.max_depth == 3
    assert backend.chain.context.parameters_set()
    assert seal.CoeffModulus.MaxBitCount(8192, seal.SEC_LEVEL_TYPE.TC128) >= sum(
        m.bit_count() for m in backend.chain.parms.coeff_modulus()
    )


def test_toy_needs_the_flag():
    with pytest.raises(errors.InsecureParametersError, match="insecure=True"):
        TenSEALBackend("toy")
    assert TenSEALBackend("toy", insecure=True).capabilities.security_bits == 0


def test_overrides():
    assert TenSEALBackend("n8192", depth=2).capabilities.max_depth == 2
    with pytest.raises(errors.InsecureParametersError):
        TenSEALBackend("n8192", depth=4)
    assert TenSEALBackend("n8192", depth=np.int64(1)).capabilities.max_depth == 1
    bad_params = (
        {"ring_dim": 1000},
        {"ring_dim": 8192.0},
        {"depth": -1},
        {"depth": True},
        {"scale_bits": 70},
    )
    for bad in bad_params:
        with pytest.raises(errors.InvalidInputError, match=next(iter(bad))):
            TenSEALBackend("n8192", **bad)
    with pytest.raises(errors.InvalidInputError, match="first_mod_bits"):
        TenSEALBackend("n8192", first_mod_bits=40)


def test_scales_stay_exact_across_levels(toy, ctx, vec):
    chain = toy.chain
    base = chain.base_scale
    ct = ctx.encrypt(vec)
    for level in range(toy.capabilities.max_depth):
        q = chain.dropped_prime(level)
        assert ct.level == level and scale(ct) == base
        assert scale(ctx.encrypt(vec, level=level)) == base
        prod = ctx.mul_plain(ct, vec)
        assert scale(prod) == base * q
        assert scale(ctx.mul_scalar(ct, 0.5)) == base * q
        assert scale(ctx.add_plain(prod, ctx.encode(vec, level=level, degree=2))) == (
            base * q
        )
        ct = ctx.rescale(prod)
    assert scale(ct) == base


def test_degree_2_drop_gets_the_scale_of_its_new_level(ctx, vec):
    near = ctx.mul_scalar(ctx.encrypt(vec), 0.5)
    far = ctx.mul_scalar(ctx.rescale(ctx.mul_scalar(ctx.encrypt(vec), 0.5)), 0.5)
    dropped = ctx.drop_level(near, 1)
    assert (dropped.level, dropped.degree) == (1, 2)
    assert scale(dropped) == scale(far)
    total = ctx.rescale(ctx.add(near, far))
    err = np.abs(ctx.decrypt(total) - (0.5 * vec + 0.25 * vec)).max()
    assert err <= ctx.capabilities.precision


def test_no_degree_2_at_the_last_level(ctx, vec):
    last = ctx.capabilities.max_depth
    with pytest.raises(errors.DepthExhaustedError, match="last level"):
        ctx.encode(vec, level=last, degree=2)
    with pytest.raises(errors.DepthExhaustedError, match="last level"):
        ctx.drop_level(ctx.mul_scalar(ctx.encrypt(vec), 0.5), last)


@pytest.mark.parametrize("k", [1, 2, 3, 7, 100])
def test_galois_element_of_a_negative_step(k):
    n = 2048
    assert galois_element(-k, n) == galois_element(n // 2 - k, n)
    assert galois_element(k, n) == pow(3, k, 2 * n)


def test_keys_are_the_ones_seal_looks_up_for_signed_steps(toy, ctx, vec):
    keys = ctx._galois_keys
    slots = ctx.slots
    assert keys.size() == 3
    ct = ctx.encrypt(vec)
    for step in (1, -3, 5):
        assert keys.has_key(galois_element(step, toy.capabilities.ring_dim))
        out = seal.Ciphertext()
        toy.chain.evaluator.rotate_vector(ct.handle, step, keys, out)  # SEAL's mapping
        got = ctx.decrypt(type(ct)(out, ct.owner, 0, 1))
        assert np.abs(got - np.roll(vec, -step)).max() <= ctx.capabilities.precision
    assert ctx.rotations == {1, slots - 3, 5}


def test_zero_results_are_fresh_encryptions(ctx, vec):
    ct = ctx.encrypt(vec)
    zeros = [
        ctx.mul_plain(ct, np.zeros(ctx.slots)),
        ctx.mul_scalar(ct, 0.0),
        ctx.sub(ct, ct),
        ctx.add(ct, ctx.negate(ct)),
    ]
    for z in zeros:
        assert not z.handle.is_transparent()
        assert np.abs(ctx.decrypt(z)).max() <= ctx.capabilities.precision
    out = ctx.rescale(ctx.add(zeros[0], ctx.mul_plain(ct, vec)))
    assert np.abs(ctx.decrypt(out) - vec * vec).max() <= ctx.capabilities.precision


def test_ciphertexts_are_compressed(toy, ctx, vec):
    seal_header = _io.dump(ctx.encrypt(vec).handle)[:16]
    assert seal_header[5] == seal.COMPR_MODE_TYPE.ZSTD.value
    n, primes = toy.capabilities.ring_dim, toy.capabilities.max_depth + 1
    raw = 2 * n * primes * 8
    assert ctx.nbytes(ctx.encrypt(vec)) < 0.85 * raw
    last = ctx.drop_level(ctx.encrypt(vec), toy.capabilities.max_depth)
    assert ctx.nbytes(last) < 0.4 * ctx.nbytes(ctx.encrypt(vec))


def test_deserialize_checks_level_and_scale(ctx, vec):
    blob = ctx.serialize(ctx.encrypt(vec))
    header, payload = _wire.unpack("ciphertext", blob)
    for lie, match in (({"level": 1}, "level 1"), ({"degree": 2}, "scale")):
        forged = _wire.pack("ciphertext", {**header, **lie}, payload)
        with pytest.raises(errors.SerializationError, match=match):
            ctx.deserialize(forged)


def test_server_holds_no_secret_and_checks_its_bundle(toy, ctx, vec):
    server = toy.load_public(ctx.public_bundle())
    assert server._decryptor is None and not server.has_secret
    sections = _wire.unpack_sections(_wire.unpack("bundle", ctx.public_bundle())[1])
    assert set(sections) == {"parms", "public_key", "galois_keys"}
    with pytest.raises(errors.SerializationError, match="rotation keys"):
        toy._load_public(ctx.owner, [1, 5], _wire.pack_sections(sections))
    other = TenSEALBackend("toy", insecure=True, special_mod_bits=50)
    with pytest.raises(errors.KeyMismatchError, match="modulus chain"):
        other._load_public(
            ctx.owner, sorted(ctx.rotations), _wire.pack_sections(sections)
        )


def test_server_evaluates_like_the_client(toy, ctx, vec):
    server = toy.load_public(ctx.public_bundle())
    ct = server.deserialize(ctx.serialize(ctx.encrypt(vec)))
    out = server.rescale(server.mul_plain(server.rotate(ct, -3), vec))
    got = ctx.decrypt(ctx.deserialize(server.serialize(out)))
    assert np.abs(got - np.roll(vec, 3) * vec).max() <= ctx.capabilities.precision


def test_unrescaled_products_decrypt_at_every_level(toy, ctx, vec):
    ct = ctx.encrypt(vec)
    want = vec
    for _ in range(toy.capabilities.max_depth):
        prod = ctx.mul_plain(ct, vec)
        got = ctx.decrypt(prod)
        assert np.abs(got - want * vec).max() <= ctx.capabilities.precision
        ct, want = ctx.rescale(prod), want * vec
