"""One conformance suite for every installed backend, checked against NumPy.

Each numeric assertion uses the precision the backend states in its
capabilities, so the suite checks that the guarantee holds.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hejax
from hejax import errors


def close(ctx, got, want, factor=1.0):
    err = np.max(np.abs(np.asarray(got) - np.asarray(want)))
    assert err <= factor * ctx.capabilities.precision, err


def test_every_expected_backend_imports():
    from tests.backends.conftest import EXPECTED

    status = hejax.backends.status()
    for name in EXPECTED:
        assert status.get(name) == "ok", (name, status.get(name))


def test_capabilities_are_sane(backend):
    caps = backend.capabilities
    assert caps.slots >= 2 and caps.slots & (caps.slots - 1) == 0
    assert caps.max_depth >= 1
    assert 0 < caps.precision < 1e-3
    assert caps.max_abs >= 1
    assert "slot" in caps.encodings
    if backend.name == "clear":
        return
    # A preset states its security honestly: 128 bits, or below only where
    # the suite asked for insecure parameters; the default is always 128-bit.
    assert caps.security_bits == 128 or (backend.insecure and caps.security_bits < 128)
    assert type(backend)().capabilities.security_bits == 128


def test_round_trip(ctx, vec):
    close(ctx, ctx.decrypt(ctx.encrypt(vec)), vec)


def test_short_vector_is_zero_padded(ctx):
    out = ctx.decrypt(ctx.encrypt([0.5, -0.25, 1.0]))
    assert out.shape == (ctx.slots,)
    close(ctx, out[:3], [0.5, -0.25, 1.0])
    close(ctx, out[3:], 0.0)


def test_add_sub_negate(ctx, vec, rng):
    other = rng.uniform(-1, 1, ctx.slots)
    a, b = ctx.encrypt(vec), ctx.encrypt(other)
    close(ctx, ctx.decrypt(ctx.add(a, b)), vec + other)
    close(ctx, ctx.decrypt(ctx.sub(a, b)), vec - other)
    close(ctx, ctx.decrypt(ctx.negate(a)), -vec)


def test_add_plain(ctx, vec, rng):
    other = rng.uniform(-1, 1, ctx.slots)
    ct = ctx.encrypt(vec)
    close(ctx, ctx.decrypt(ctx.add_plain(ct, other)), vec + other)
    pt = ctx.encode(other)
    close(ctx, ctx.decrypt(ctx.add_plain(ct, pt)), vec + other)


def test_mul_plain_then_rescale(ctx, vec, rng):
    w = rng.uniform(-1, 1, ctx.slots)
    prod = ctx.mul_plain(ctx.encrypt(vec), ctx.encode(w))
    assert (prod.level, prod.degree) == (0, 2)
    out = ctx.rescale(prod)
    assert (out.level, out.degree) == (1, 1)
    close(ctx, ctx.decrypt(out), vec * w)


def test_add_plain_to_unrescaled_product(ctx, vec, rng):
    w, b = rng.uniform(-1, 1, (2, ctx.slots))
    prod = ctx.mul_plain(ctx.encrypt(vec), w)
    summed = ctx.add_plain(prod, ctx.encode(b, degree=2))
    close(ctx, ctx.decrypt(ctx.rescale(summed)), vec * w + b)


def test_mul_scalar(ctx, vec):
    out = ctx.rescale(ctx.mul_scalar(ctx.encrypt(vec), -0.75))
    close(ctx, ctx.decrypt(out), -0.75 * vec)


def test_sum_of_products_rescaled_once(ctx, vec, rng):
    # The pattern of a convolution: many products summed before one rescale.
    ws = rng.uniform(-1, 1, (64, ctx.slots))
    ct = ctx.encrypt(vec)
    acc = ctx.mul_plain(ct, ws[0])
    for w in ws[1:]:
        acc = ctx.add(acc, ctx.mul_plain(ct, w))
    close(ctx, ctx.decrypt(ctx.rescale(acc)), vec * ws.sum(0), factor=4)


@pytest.mark.parametrize("k", [1, -1, 3, -5, 7, 64])
def test_rotate_equals_roll(ctx, vec, k):
    close(ctx, ctx.decrypt(ctx.rotate(ctx.encrypt(vec), k)), np.roll(vec, -k))


def test_rotate_by_zero_and_full_turn_is_identity(ctx, vec):
    ct = ctx.encrypt(vec)
    close(ctx, ctx.decrypt(ctx.rotate(ct, 0)), vec)
    close(ctx, ctx.decrypt(ctx.rotate(ct, ctx.slots + 1)), np.roll(vec, -1))


def test_rotate_many_equals_single_rotations(ctx, vec):
    steps = [1, -1, 3, 0, -5, 7, 64]
    ct = ctx.encrypt(vec)
    many = ctx.rotate_many(ct, steps)
    assert len(many) == len(steps)
    for k, got in zip(steps, many, strict=True):
        single = ctx.decrypt(ctx.rotate(ct, k))
        close(ctx, ctx.decrypt(got), single, factor=2)
        close(ctx, ctx.decrypt(got), np.roll(vec, -k))


def test_rotation_after_product_and_rescale(ctx, vec, rng):
    w = rng.uniform(-1, 1, ctx.slots)
    ct = ctx.rescale(ctx.mul_plain(ctx.encrypt(vec), w))
    close(ctx, ctx.decrypt(ctx.rotate(ct, -5)), np.roll(vec * w, 5))


def test_missing_rotation_key(ctx, vec):
    with pytest.raises(errors.MissingRotationKeyError, match="step 2"):
        ctx.rotate(ctx.encrypt(vec), 2)


def test_full_depth_then_clear_error(ctx, vec):
    depth = ctx.capabilities.max_depth
    ct = ctx.encrypt(vec)
    want = vec.copy()
    for _ in range(depth):
        ct = ctx.rescale(ctx.mul_scalar(ct, 0.9))
        want = want * 0.9
    assert ct.level == depth
    close(ctx, ctx.decrypt(ct), want)
    with pytest.raises(errors.DepthExhaustedError, match="last level"):
        ctx.mul_scalar(ct, 0.9)
    with pytest.raises(errors.DepthExhaustedError):
        ctx.encode(vec, level=depth + 1)


def test_product_of_unrescaled_is_refused(ctx, vec):
    prod = ctx.mul_scalar(ctx.encrypt(vec), 0.5)
    with pytest.raises(errors.LevelMismatchError, match="rescale"):
        ctx.mul_scalar(prod, 0.5)
    with pytest.raises(errors.LevelMismatchError):
        ctx.rescale(ctx.encrypt(vec))
    with pytest.raises(errors.LevelMismatchError):
        ctx.add(prod, ctx.encrypt(vec))


def test_add_across_levels_drops_the_higher_one(ctx, vec, rng):
    other = rng.uniform(-1, 1, ctx.slots)
    low = ctx.rescale(ctx.mul_scalar(ctx.encrypt(vec), 0.5))
    out = ctx.add(ctx.encrypt(other), low)
    assert out.level == 1
    close(ctx, ctx.decrypt(out), other + 0.5 * vec)
    dropped = ctx.drop_level(ctx.encrypt(other), ctx.capabilities.max_depth)
    close(ctx, ctx.decrypt(dropped), other)


def test_plaintext_level_must_match(ctx, vec):
    pt = ctx.encode(vec, level=1)
    with pytest.raises(errors.LevelMismatchError, match="level"):
        ctx.mul_plain(ctx.encrypt(vec), pt)


def test_ciphertext_serialization_round_trip(ctx, vec):
    ct = ctx.rescale(ctx.mul_scalar(ctx.encrypt(vec), 0.5))
    back = ctx.deserialize(ctx.serialize(ct))
    assert (back.level, back.degree) == (ct.level, ct.degree)
    close(ctx, ctx.decrypt(back), 0.5 * vec)


def test_bundle_holds_exactly_the_asked_rotation_keys(backend):
    client = backend.keygen(rotations=[2, -3])
    server = backend.load_public(client.public_bundle())
    assert not server.has_secret
    assert server.rotations == {2, backend.capabilities.slots - 3}
    ct = server.deserialize(client.serialize(client.encrypt([1.0, 2.0, 3.0])))
    server.rotate(ct, -3)
    with pytest.raises(errors.MissingRotationKeyError):
        server.rotate(ct, 1)
    if backend.capabilities.rotation_cost == "keyswitch":
        bare = len(backend.keygen().public_bundle())
        one = len(backend.keygen(rotations=[2]).public_bundle())
        assert bare < one < len(client.public_bundle())


def test_server_in_the_same_process_cannot_decrypt(backend, ctx, vec):
    server = backend.load_public(ctx.public_bundle())
    ct = server.deserialize(ctx.serialize(ctx.encrypt(vec)))
    out = server.rotate(server.add_plain(ct, np.ones(ctx.slots)), 1)
    with pytest.raises(errors.SecretKeyError, match="no secret key"):
        server.decrypt(out)
    close(
        ctx, ctx.decrypt(ctx.deserialize(server.serialize(out))), np.roll(vec + 1, -1)
    )


SERVER_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    import hejax
    from hejax import errors

    name, preset, folder, insecure = sys.argv[1:5]
    backend = hejax.backends.get(name, preset=preset, insecure=insecure == "1")
    read = lambda n: open(f"{folder}/{n}", "rb").read()
    server = backend.load_public(read("bundle"))
    ct = server.deserialize(read("ct"))
    w = np.linspace(-1, 1, server.slots)
    out = server.rescale(server.mul_plain(server.rotate(ct, 3), w))
    out = server.add(out, server.rotate(out, -1))
    try:
        server.decrypt(out)
        print("DECRYPTED")
    except errors.SecretKeyError:
        print("REFUSED")
    open(f"{folder}/out", "wb").write(server.serialize(out))
    """
)


def test_server_in_another_process(backend, ctx, vec, tmp_path):
    (tmp_path / "bundle").write_bytes(ctx.public_bundle())
    (tmp_path / "ct").write_bytes(ctx.serialize(ctx.encrypt(vec)))
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVER_SCRIPT,
            backend.name,
            backend.preset,
            tmp_path,
            "1" if backend.insecure else "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "REFUSED"
    out = ctx.decrypt(ctx.deserialize((tmp_path / "out").read_bytes()))
    y = np.roll(vec, -3) * np.linspace(-1, 1, ctx.slots)
    close(ctx, out, y + np.roll(y, 1), factor=2)


# -- bad input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(lambda n: np.zeros(n + 1), id="too-long"),
        pytest.param(lambda n: np.zeros((2, 4)), id="2-d"),
        pytest.param(lambda n: np.zeros(0), id="empty"),
        pytest.param(lambda n: 1.0, id="scalar"),
        pytest.param(lambda n: [1.0, np.nan], id="nan"),
        pytest.param(lambda n: [np.inf], id="inf"),
        pytest.param(lambda n: ["a", "b"], id="strings"),
        pytest.param(lambda n: [object()], id="object"),
        pytest.param(lambda n: [1 + 2j], id="complex"),
        pytest.param(lambda n: [1e300], id="huge"),
    ],
)
def test_bad_values_are_refused(ctx, values):
    with pytest.raises(errors.InvalidInputError):
        ctx.encrypt(values(ctx.slots))


def test_bad_arguments_are_refused(ctx, vec):
    ct = ctx.encrypt(vec)
    with pytest.raises(errors.InvalidInputError):
        ctx.add(ct, vec)
    with pytest.raises(errors.InvalidInputError):
        ctx.rotate(ct, 1.5)
    with pytest.raises(errors.InvalidInputError):
        ctx.mul_scalar(ct, float("nan"))
    with pytest.raises(errors.InvalidInputError):
        ctx.decrypt(b"not a ciphertext")


def test_ciphertext_of_another_key_set(backend, ctx, vec):
    other = backend.keygen(rotations=[1])
    foreign = other.encrypt(vec)
    for op in (ctx.decrypt, lambda c: ctx.add(ctx.encrypt(vec), c)):
        with pytest.raises(errors.KeyMismatchError, match="key set"):
            op(foreign)
    with pytest.raises(errors.KeyMismatchError):
        ctx.deserialize(other.serialize(foreign))


def test_ciphertext_of_another_backend(ctx, vec):
    clear = hejax.backends.get("clear", slots=ctx.slots)
    alien = clear.keygen()
    if ctx.backend.name == "clear":
        alien = hejax.backends.get("clear", slots=ctx.slots // 2).keygen()
    with pytest.raises(errors.KeyMismatchError):
        ctx.deserialize(alien.serialize(alien.encrypt(vec[: alien.slots])))


def test_bundle_of_other_parameters(backend, ctx):
    presets = [p for p in backend.presets if p != backend.preset]
    other = type(backend)(preset=presets[0], insecure=True)
    with pytest.raises(errors.KeyMismatchError, match="parameters"):
        other.load_public(ctx.public_bundle())


def corruptions(blob):
    mid = len(blob) // 2
    flipped = bytearray(blob)
    flipped[mid] ^= 0x40
    version = bytearray(blob)
    version[4] += 1
    return {
        "truncated": blob[:mid],
        "one-byte-short": blob[:-1],
        "flipped": bytes(flipped),
        "padded": blob + b"\0",
        "empty": b"",
        "version": bytes(version),
        "not-bytes": "hello",
    }


def test_corrupted_ciphertext_bytes(ctx, vec):
    blob = ctx.serialize(ctx.encrypt(vec))
    for what, bad in corruptions(blob).items():
        with pytest.raises(errors.SerializationError):
            ctx.deserialize(bad)
            pytest.fail(what)


def test_corrupted_bundle_bytes(backend, ctx):
    blob = ctx.public_bundle()
    for what, bad in corruptions(blob).items():
        with pytest.raises(errors.SerializationError):
            backend.load_public(bad)
            pytest.fail(what)
    with pytest.raises(errors.SerializationError, match="expected a bundle"):
        backend.load_public(ctx.serialize(ctx.encrypt([1.0])))


def test_insecure_parameters_need_the_flag(backend):
    if backend.name == "clear":
        assert backend.capabilities.security_bits == 0  # no encryption at all
        return
    with pytest.raises(errors.InsecureParametersError, match="insecure=True"):
        type(backend)(preset="toy")
    toy = type(backend)(preset="toy", insecure=True)
    assert toy.capabilities.security_bits == 0
    ctx = toy.keygen(rotations=[1])
    x = np.linspace(-1, 1, toy.capabilities.slots)
    err = np.max(np.abs(ctx.decrypt(ctx.rotate(ctx.encrypt(x), 1)) - np.roll(x, -1)))
    assert err <= toy.capabilities.precision


def test_unknown_preset_and_parameter(backend):
    with pytest.raises(errors.InvalidInputError, match="preset"):
        type(backend)(preset="no-such-preset")
    with pytest.raises(errors.InvalidInputError, match="parameter"):
        type(backend)(no_such_parameter=1)
