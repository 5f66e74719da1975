"""Tests specific to the OpenFHE backend (the shared suite is test_conformance).

They check what the conformance suite cannot see from outside: that
rotate_many hoists and agrees with EvalRotate, that key sets share
OpenFHE's process-wide key store without interfering, that the presets meet
128-bit security by hejax's count and by OpenFHE's, that the key-switching
primes are counted right, and that scales stay exact over all levels.
"""

import json
import math

import numpy as np
import openfhe
import pytest
from hejax_openfhe import OpenFHEBackend, _params

from hejax import errors
from hejax.security import MAX_LOG_Q_128


@pytest.fixture(scope="module")
def backend():
    return OpenFHEBackend()


@pytest.fixture(scope="module")
def ctx(backend):
    return backend.keygen(rotations=[1, 2, 5, -3])


@pytest.fixture
def vec(ctx):
    return np.random.default_rng(7).uniform(-1, 1, ctx.slots)


def max_err(got, want):
    return float(np.max(np.abs(np.asarray(got) - np.asarray(want))))


class CountingContext:
    """Wraps a crypto context and counts the calls of each method."""

    def __init__(self, cc):
        self.cc, self.calls = cc, {}

    def __getattr__(self, name):
        method = getattr(self.cc, name)

        def counted(*args):
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args)

        return counted


# -- rotations -----------------------------------------------------------------


def test_rotate_many_hoists_once(ctx, vec, monkeypatch):
    counting = CountingContext(ctx._cc)
    monkeypatch.setattr(ctx, "_cc", counting)
    outs = ctx.rotate_many(ctx.encrypt(vec), [1, 2, 5, -3])
    assert counting.calls["EvalFastRotationPrecompute"] == 1
    assert counting.calls["EvalFastRotation"] == 4
    assert "EvalRotate" not in counting.calls
    monkeypatch.undo()
    for k, out in zip([1, 2, 5, -3], outs, strict=True):
        assert max_err(ctx.decrypt(out), np.roll(vec, -k)) < 1e-6


def test_hoisted_rotation_equals_eval_rotate(backend, ctx, vec):
    ct = ctx.encrypt(vec)
    cc = backend.crypto_context
    for k, out in zip([1, 2, 5], ctx.rotate_many(ct, [1, 2, 5]), strict=True):
        plain = ctx.decrypt(ctx._like(ct, cc.EvalRotate(ct.handle, k)))
        assert max_err(ctx.decrypt(out), plain) < 1e-6


def test_negative_and_wrapped_steps_share_one_key(ctx, vec):
    ct = ctx.encrypt(vec)
    a, b = ctx.rotate_many(ct, [-3, ctx.slots - 3])
    assert max_err(ctx.decrypt(a), ctx.decrypt(b)) < 1e-6
    assert max_err(ctx.decrypt(a), np.roll(vec, 3)) < 1e-6


# -- OpenFHE's process-wide key store -------------------------------------------


def test_key_sets_in_one_process_do_not_interfere(backend, vec):
    first = backend.keygen(rotations=[1, 4])
    second = backend.keygen(rotations=[1, 6])
    assert first._tag != second._tag
    server = backend.load_public(first.public_bundle())
    ct1, ct2 = first.encrypt(vec), second.encrypt(-vec)
    assert max_err(first.decrypt(first.rotate(ct1, 4)), np.roll(vec, -4)) < 1e-6
    assert max_err(second.decrypt(second.rotate(ct2, 6)), np.roll(-vec, -6)) < 1e-6
    on_server = server.rotate(server.deserialize(first.serialize(ct1)), 1)
    back = first.deserialize(server.serialize(on_server))
    assert max_err(first.decrypt(back), np.roll(vec, -1)) < 1e-6
    with pytest.raises(errors.MissingRotationKeyError):
        second.rotate(ct2, 4)


def test_rotations_survive_a_cleared_key_store(backend, vec):
    client = backend.keygen(rotations=[2, 3])
    server = backend.load_public(client.public_bundle())
    openfhe.CryptoContext.ClearEvalAutomorphismKeys()
    ct = server.deserialize(client.serialize(client.encrypt(vec)))
    outs = server.rotate_many(ct, [2, 3])
    for k, out in zip([2, 3], outs, strict=True):
        back = client.deserialize(server.serialize(out))
        assert max_err(client.decrypt(back), np.roll(vec, -k)) < 1e-6
    openfhe.CryptoContext.ClearEvalAutomorphismKeys()
    assert max_err(client.decrypt(client.rotate(ct, 3)), np.roll(vec, -3)) < 1e-6


def test_ciphertext_of_another_openfhe_key_is_refused(backend, ctx, vec):
    other = backend.keygen()
    payload = other._serialize_ct(other.encrypt(vec).handle)
    with pytest.raises(errors.KeyMismatchError, match="another OpenFHE key"):
        ctx._deserialize_ct(payload, 0, 1)
    with pytest.raises(errors.SerializationError, match="header says"):
        other._deserialize_ct(payload, 1, 1)


# -- security ---------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["n8192", "n16384", "n32768"])
def test_presets_are_128_bit(preset):
    backend = OpenFHEBackend(preset)
    params = backend.params
    bits = _params.modulus_bits(backend.crypto_context, params)
    assert backend.capabilities.security_bits == 128
    assert bits <= MAX_LOG_Q_128[params["ring_dim"]]
    assert backend.capabilities.slots == params["ring_dim"] // 2
    assert backend.capabilities.max_depth == params["depth"]


@pytest.mark.parametrize(
    ("preset", "override"),
    [
        ("n8192", {"depth": 3, "num_large_digits": 4}),
        ("n8192", {"first_mod_bits": 60}),
        ("n8192", {"num_large_digits": 2}),
        ("n16384", {"depth": 7}),
        ("n32768", {"depth": 17}),
    ],
)
def test_one_step_past_a_preset_is_refused(preset, override):
    with pytest.raises(errors.InsecureParametersError, match="insecure=True"):
        OpenFHEBackend(preset, **override)
    assert (
        OpenFHEBackend(preset, insecure=True, **override).capabilities.security_bits
        == 0
    )


def test_openfhe_check_is_on_where_hejax_counts_128_bits(monkeypatch):
    # Were hejax's count of the key-switching primes too low, OpenFHE's own
    # HE-standard check must still refuse the parameters.
    monkeypatch.setattr(_params, "key_switch_primes", lambda params: 0)
    with pytest.raises(errors.InsecureParametersError, match="OpenFHE's 128-bit"):
        OpenFHEBackend(depth=3, num_large_digits=4)


def tower_moduli(blob):
    """Moduli of all RNS towers in an OpenFHE JSON serialization."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            m = node.get("m")
            if isinstance(node.get("v"), list) and isinstance(m, dict):
                found.add(int(m["v"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(blob))
    return found


@pytest.mark.parametrize("preset", ["toy", "n8192"])
def test_key_switching_primes_are_counted_right(preset):
    backend = OpenFHEBackend(preset, insecure=True)
    cc = backend.crypto_context
    client = backend.keygen(rotations=[1])
    moduli = tower_moduli(openfhe.Serialize(client._rotation_keys, openfhe.JSON))
    q = cc.GetElementParams().GetModulus()
    p_primes = [m for m in moduli if q % m]
    assert len(p_primes) == _params.key_switch_primes(backend.params)
    assert all(m < 2**_params.AUX_BITS for m in p_primes)
    log_qp = math.log2(q) + sum(math.log2(m) for m in p_primes)
    assert log_qp <= _params.modulus_bits(cc, backend.params)


# -- parameters ---------------------------------------------------------------------


def test_overrides_change_the_capabilities():
    caps = OpenFHEBackend(depth=1, num_large_digits=2).capabilities
    assert caps.max_depth == 1 and caps.security_bits == 128
    assert OpenFHEBackend("n16384").capabilities.slots == 8192


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ring_dim", 1000),
        ("ring_dim", 4096.0),
        ("depth", 0),
        ("scale_bits", "40"),
        ("first_mod_bits", 40),
        ("num_large_digits", 9),
        ("num_large_digits", 0),
    ],
)
def test_bad_parameter_values_are_named(name, value):
    with pytest.raises(errors.InvalidInputError, match=f"`{name}`"):
        OpenFHEBackend(insecure=True, **{name: value})


def test_max_abs_is_safe_at_the_last_level(ctx):
    # A constant vector puts all its weight in one coefficient: the worst case.
    top = np.full(ctx.slots, ctx.capabilities.max_abs)
    ct = ctx.encrypt(top)
    for _ in range(ctx.capabilities.max_depth):
        ct = ctx.rescale(ctx.mul_scalar(ct, 1.0))
    assert max_err(ctx.decrypt(ct), top) < ctx.capabilities.precision


# -- exact scales --------------------------------------------------------------------


@pytest.fixture(scope="module")
def deep():
    return OpenFHEBackend("n16384").keygen(rotations=[1])


def test_scales_stay_exact_over_all_levels(deep):
    # Plain FIXEDMANUAL drifts by about 4e-6 over these six levels.
    x = np.full(deep.slots, 0.5)
    ct = deep.encrypt(x)
    for level in range(deep.capabilities.max_depth):
        if level % 2:
            ct = deep.rescale(deep.mul_scalar(ct, 1.0))
        else:
            ct = deep.rescale(deep.mul_plain(ct, np.ones(deep.slots)))
    drift = abs(np.mean(deep.decrypt(ct)) / 0.5 - 1)
    assert drift < 1e-7


def test_unrescaled_products_at_every_level(deep):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, deep.slots)
    ct, want = deep.encrypt(x), x
    for level in range(deep.capabilities.max_depth):
        w, b = rng.uniform(-1, 1, (2, deep.slots))
        prod = deep.mul_plain(ct, w)
        assert max_err(deep.decrypt(prod), want * w) < 1e-6
        summed = deep.add_plain(prod, deep.encode(b, level=level, degree=2))
        assert max_err(deep.decrypt(summed), want * w + b) < 1e-6
        fresh = deep.encrypt(x, level=level + 1)
        ct, want = deep.add(deep.rescale(summed), fresh), want * w + b + x
    assert max_err(deep.decrypt(ct), want) < deep.capabilities.precision


def test_precision_holds_for_sums_of_rotated_products(ctx, vec):
    # The pattern the stated precision covers: products over all but the
    # last level, then one sum of 64 products of rotations, |w| <= 1.
    rng = np.random.default_rng(11)
    ct, want = ctx.encrypt(vec), vec
    for _ in range(ctx.capabilities.max_depth - 1):
        w = rng.choice([-1.0, 1.0], ctx.slots)
        ct, want = ctx.rescale(ctx.mul_plain(ct, w)), want * w
    steps = [0, 1, 2, 5]
    rotated = ctx.rotate_many(ct, steps) * 16
    acc, total = None, np.zeros(ctx.slots)
    for j, r in enumerate(rotated):
        w = rng.uniform(-1, 1, ctx.slots)
        term = ctx.mul_plain(r, w)
        acc = term if acc is None else ctx.add(acc, term)
        total += np.roll(want, -steps[j % 4]) * w
    assert max_err(ctx.decrypt(ctx.rescale(acc)), total) < ctx.capabilities.precision


def test_product_cannot_drop_to_the_last_level(ctx, vec):
    prod = ctx.mul_scalar(ctx.encrypt(vec), 0.5)
    with pytest.raises(errors.DepthExhaustedError, match="rescale it first"):
        ctx.drop_level(prod, ctx.capabilities.max_depth)
    moved = ctx.drop_level(prod, ctx.capabilities.max_depth - 1)
    assert max_err(ctx.decrypt(ctx.rescale(moved)), 0.5 * vec) < 1e-5
