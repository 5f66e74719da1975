"""Conformance of every coefficient-encoding backend, checked exactly.

Every backend whose capabilities list ``"coefficient"`` computes in
Z_t[X]/(X^N + 1) with no error at all, so each assertion is an exact
equality with the NumPy reference :func:`hejax.ring.ring_mul`.
"""

import numpy as np
import pytest

import hejax
from hejax import errors
from hejax.ring import centered, residues, ring_mul
from tests.backends.conftest import backends_with

COEF = backends_with("coefficient")


def test_every_bfv_backend_is_collected():
    assert {"clear-bfv", "openfhe-bfv", "tenseal-bfv"} <= set(COEF)


@pytest.fixture(params=COEF, scope="module")
def backend(request):
    return hejax.backends.get(request.param)


@pytest.fixture(scope="module")
def ctx(backend):
    return backend.keygen()


@pytest.fixture(scope="module")
def server(backend, ctx):
    return backend.load_public(ctx.public_bundle())


@pytest.fixture
def rng():
    return np.random.default_rng(99)


def _poly(ctx, rng, dense=True):
    t, n = ctx.modulus, ctx.slots
    if dense:
        return rng.integers(-(t // 2), t // 2, n, dtype=np.int64)
    out = np.zeros(n, dtype=np.int64)
    where = rng.choice(n, 40, replace=False)
    out[where] = rng.integers(-(t // 2), t // 2, 40)
    return out


def _ref_mul(ctx, a, b):
    t = ctx.modulus
    return centered(ring_mul(residues(a, t), residues(b, t), t), t)


def test_capabilities(backend):
    caps = backend.capabilities
    assert caps.encodings == ("coefficient",)
    assert caps.exact and caps.precision == 0.0
    assert not caps.rotations and caps.rotation_cost == "none"
    assert 3 <= caps.plain_modulus <= 2**32
    assert caps.slots == caps.ring_dim
    assert caps.max_abs == (caps.plain_modulus - 1) // 2
    if backend.name != "clear-bfv":
        assert caps.security_bits == 128


def test_ring_mul_reference_matches_schoolbook():
    rng = np.random.default_rng(0)
    t, n = 4294967291, 32
    a, b = rng.integers(0, t, n), rng.integers(0, t, n)
    want = [0] * n
    for i in range(n):
        for j in range(n):
            k, sign = (i + j, 1) if i + j < n else (i + j - n, -1)
            want[k] += sign * int(a[i]) * int(b[j])
    assert np.array_equal(ring_mul(a, b, t), [w % t for w in want])


def test_round_trip_is_exact(ctx, rng):
    a = _poly(ctx, rng)
    assert np.array_equal(ctx.decrypt(ctx.encrypt(a)), a)


def test_short_vector_is_zero_padded_and_residues_are_centred(ctx):
    t = ctx.modulus
    out = ctx.decrypt(ctx.encrypt([1, -2, t + 3]))
    assert out.dtype == np.int64 and out.shape == (ctx.slots,)
    assert np.array_equal(out[:3], [1, -2, 3]) and not out[3:].any()


def test_ring_product_matches_numpy_exactly(ctx, server, rng):
    a, b = _poly(ctx, rng), _poly(ctx, rng)
    ct = server.deserialize(ctx.serialize(ctx.encrypt(a)))
    out = ctx.deserialize(server.serialize(server.mul_plain(ct, server.encode(b))))
    assert np.array_equal(ctx.decrypt(out), _ref_mul(ctx, a, b))


def test_sum_of_sparse_products_is_exact(ctx, rng):
    # A convolution: several ciphertexts times sparse kernels, summed.
    terms = [(_poly(ctx, rng), _poly(ctx, rng, dense=False)) for _ in range(4)]
    acc, want = None, np.zeros(ctx.slots, dtype=np.int64)
    for a, k in terms:
        prod = ctx.mul_plain(ctx.encrypt(a), ctx.encode(k))
        acc = prod if acc is None else ctx.add(acc, prod)
        want = centered(residues(want + _ref_mul(ctx, a, k), ctx.modulus), ctx.modulus)
    assert np.array_equal(ctx.decrypt(acc), want)


def test_add_sub_negate_add_plain_mul_scalar(ctx, rng):
    t = ctx.modulus
    a, b, c = _poly(ctx, rng), _poly(ctx, rng), _poly(ctx, rng)
    ea, eb = ctx.encrypt(a), ctx.encrypt(b)

    def mod(x):
        return centered(residues(x, t), t)

    assert np.array_equal(ctx.decrypt(ctx.add(ea, eb)), mod(a + b))
    assert np.array_equal(ctx.decrypt(ctx.sub(ea, eb)), mod(a - b))
    assert np.array_equal(ctx.decrypt(ctx.negate(ea)), mod(-a))
    assert np.array_equal(ctx.decrypt(ctx.add_plain(ea, ctx.encode(c))), mod(a + c))
    got = ctx.decrypt(ctx.mul_scalar(ea, 12345))
    assert np.array_equal(got, mod(a.astype(object) * 12345).astype(np.int64))


def test_products_by_zero_and_self_difference_stay_encrypted(ctx, server, rng):
    a = _poly(ctx, rng)
    ea = server.deserialize(ctx.serialize(ctx.encrypt(a)))
    zero = server.mul_plain(ea, server.encode([0]))
    diff = server.sub(ea, ea)
    for ct in (zero, diff):
        assert not ctx.decrypt(ctx.deserialize(server.serialize(ct))).any()


def test_server_context_cannot_decrypt(ctx, server, rng):
    ct = server.deserialize(ctx.serialize(ctx.encrypt(_poly(ctx, rng))))
    assert not server.has_secret
    with pytest.raises(errors.SecretKeyError):
        server.decrypt(ct)


def test_other_key_set_is_refused(backend, ctx, rng):
    other = backend.keygen()
    data = other.serialize(other.encrypt(_poly(other, rng)))
    with pytest.raises(errors.KeyMismatchError):
        ctx.deserialize(data)
    with pytest.raises(errors.KeyMismatchError):
        ctx.add(ctx.encrypt([1]), other.encrypt([1]))


def test_corrupted_ciphertext_is_refused(ctx, rng):
    data = bytearray(ctx.serialize(ctx.encrypt(_poly(ctx, rng))))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(errors.SerializationError):
        ctx.deserialize(bytes(data))


def test_bad_values_and_slot_operations_are_refused(ctx):
    with pytest.raises(errors.InvalidInputError):
        ctx.encode([0.5, 1.0])
    with pytest.raises(errors.InvalidInputError):
        ctx.encode(np.zeros(ctx.slots + 1, dtype=np.int64))
    with pytest.raises(errors.InvalidInputError):
        ctx.mul_scalar(ctx.encrypt([1]), 0.5)
    with pytest.raises(errors.InvalidInputError):
        ctx.rescale(ctx.encrypt([1]))
    with pytest.raises(errors.InvalidInputError):
        ctx.backend.keygen(rotations=[1])


def test_parameters_are_checked(backend):
    with pytest.raises(errors.InvalidInputError):
        type(backend)(plain_modulus=2**33)
    with pytest.raises(errors.InvalidInputError):
        type(backend)(ring_dim=3000)
