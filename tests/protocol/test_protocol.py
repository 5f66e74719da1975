"""Client and server through bytes: lossless, masked, and hostile input refused."""

import warnings

import jax
import numpy as np
import pytest

import hejax
from hejax import errors
from tests.protocol.conftest import redcnn_case

VARIANTS = ("linear", "last-relu", "all-relu")


def session(fn, params, x, backend, masks="element", **kw):
    with jax.experimental.enable_x64():
        program = hejax.compile(fn, params, x, backend=backend, **kw)
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle(), masks=masks)
    return program, client, server


def run(fn, params, x, backend, masks="element"):
    _, client, server = session(fn, params, x, backend, masks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hejax.run(client, server, x)


# -- lossless on the clear backend ------------------------------------------


@pytest.mark.parametrize("size", [64, 128])
@pytest.mark.parametrize("variant", VARIANTS)
def test_clear_equals_plaintext(variant, size):
    fn, params, x, want = redcnn_case(variant, size, 4, x64=True)
    backend = hejax.backends.get("clear", max_depth=4)
    for masks in ("element", "channel", "off"):
        out, transcript = run(fn, params, x, backend, masks)
        assert out.shape == want.shape
        assert np.max(np.abs(out - want)) <= 1e-9, masks
    rounds = {"linear": 1, "last-relu": 1, "all-relu": 10}[variant]
    assert len(transcript.rounds) >= rounds


def test_all_relu_has_a_round_per_hidden_relu():
    fn, params, x, _ = redcnn_case("all-relu", 32, 2, x64=True)
    program, _, server = session(fn, params, x, "clear")
    rounds = hejax.schedule(program)
    assert [r.ends for r in rounds] == ["relu"] * 9 + ["output"]
    assert server.rounds == rounds
    assert "9 ReLU" in program.summary() or "10 ReLU" in program.summary()


def test_round_depth_option_adds_refresh_rounds():
    fn, params, x, want = redcnn_case("linear", 32, 2, x64=True)
    backend = hejax.backends.get("clear", max_depth=16)
    with jax.experimental.enable_x64():
        one = hejax.compile(fn, params, x, backend=backend)
        capped = hejax.compile(fn, params, x, backend=backend, round_depth=4)
    assert len(hejax.schedule(one)) == 1
    rounds = hejax.schedule(capped)
    assert all(r.levels <= 4 for r in rounds)
    assert [r.ends for r in rounds][:-1] == ["refresh"] * (len(rounds) - 1)
    client = hejax.Client(capped)
    out, _ = hejax.run(client, hejax.Server(capped, client.public_bundle()), x)
    assert np.max(np.abs(out - want)) <= 1e-9


# -- lossless on HE backends --------------------------------------------------

HE = ("openfhe", "tenseal")


def psnr(out, want):
    return 10 * np.log10(np.max(np.abs(want)) ** 2 / np.mean((out - want) ** 2))


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", HE)
def test_he_matches_plaintext_64(name, variant):
    fn, params, x, want = redcnn_case(variant, 64, 2)
    backend = hejax.backends.get(name)
    outs = {}
    for masks in ("element", "off"):
        outs[masks], _ = run(fn, params, x, backend, masks)
        assert np.max(np.abs(outs[masks] - want)) <= 1e-4
        assert psnr(outs[masks], want) >= 80
    assert np.max(np.abs(outs["element"] - outs["off"])) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("name", HE)
def test_he_all_relu_128_with_tiles(name):
    fn, params, x, want = redcnn_case("all-relu", 128, 2)
    backend = hejax.backends.get(name)
    out, transcript = run(fn, params, x, backend, "element")
    assert np.max(np.abs(out - want)) <= 1e-4
    assert psnr(out, want) >= 80
    assert transcript.total("bytes_to_client") > 0


def test_server_holds_no_secret_key():
    fn, params, x, _ = redcnn_case("all-relu", 32, 2)
    for name in HE + ("clear",):
        _, client, server = session(fn, params, x, name)
        assert not server._ctx.has_secret
        ct = server._ctx.encrypt(np.ones(4))
        with pytest.raises(errors.SecretKeyError):
            server._ctx.decrypt(ct)


def test_client_keeps_no_weights():
    fn, params, x, _ = redcnn_case("all-relu", 32, 2)
    program, client, _ = session(fn, params, x, "clear")
    assert isinstance(client.view, hejax.ClientView)
    assert not hasattr(client, "program")
    for value in vars(client.view).values():
        assert value is not program.graph and value is not program.plaintexts


# -- masks --------------------------------------------------------------------


def count_calls(ctx, monkeypatch):
    counts = {}
    for op in ("mul_plain", "mul_scalar", "add", "add_plain", "rescale", "rotate_many"):
        real = getattr(ctx, op)

        def counted(*args, _real=real, _op=op, **kw):
            counts[_op] = counts.get(_op, 0) + 1
            return _real(*args, **kw)

        monkeypatch.setattr(ctx, op, counted)
    return counts


@pytest.mark.parametrize("masks", ["element", "channel"])
def test_unmasking_adds_no_he_operation(masks, monkeypatch):
    fn, params, x, _ = redcnn_case("all-relu", 32, 3, x64=True)
    counts = {}
    for mode in (masks, "off"):
        program, client, server = session(fn, params, x, "clear", mode)
        counts[mode] = count_calls(server._ctx, monkeypatch)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            hejax.run(client, server, x)
    on, off = counts[masks], counts["off"]
    get = lambda c, k: c.get(k, 0)  # noqa: E731
    n_mask = sum(1 for ins in program.instrs if ins.op == "mask")
    # The only extra work with masks on is the masking product itself.
    products = lambda c: get(c, "mul_plain") + get(c, "mul_scalar")  # noqa: E731
    assert products(on) == products(off) + n_mask
    assert get(on, "rescale") == get(off, "rescale") + n_mask
    for op in ("add", "add_plain", "rotate_many"):
        assert get(on, op) == get(off, op), op


def test_masks_off_warns():
    fn, params, x, _ = redcnn_case("all-relu", 32, 2)
    _, client, server = session(fn, params, x, "clear", "off")
    with pytest.warns(UserWarning, match="masks are off"):
        hejax.run(client, server, x)
    with pytest.raises(errors.InvalidInputError, match="mask mode"):
        _, client, server = session(fn, params, x, "clear", "sometimes")
        server.start(client.encrypt(x))


def client_view_of_round(fn, params, x, masks, seed=0):
    """What the client decrypts in the first ReLU round, and the truth."""
    program, client, server = session(fn, params, x, "clear", masks)
    server._seed = seed
    reply = server.start(client.encrypt(x))
    b = program.boundaries[0]
    header, cts = hejax.protocol._unpack(
        program.digest, reply, sender="server", session=client._session, round_=1
    )
    seen = [client._ctx.decrypt(client._ctx.deserialize(ct)) for ct in cts]
    seen = b.before.decode(seen)
    graph = program.graph
    first = next(n for n in graph.nodes if n.op == "relu").inputs[0]
    sub = hejax.ir.Graph(
        tuple(n for n in graph.nodes[: [n.name for n in graph.nodes].index(first) + 1]),
        first,
    )
    truth = hejax.ir.evaluate(sub, x)
    return seen, truth, server._plan.perm[0]


def test_client_sees_masked_values_with_the_true_sign_pattern():
    fn, params, x, _ = redcnn_case("all-relu", 32, 4, x64=True)
    seen, truth, perm = client_view_of_round(fn, params, x, "element")
    truth = truth[..., perm]  # the client receives channels permuted
    corr = np.corrcoef(seen.ravel(), truth.ravel())[0, 1]
    # Measured ≈ 0.55–0.7: the per-element mask hides magnitudes, not signs.
    assert corr < 0.8, corr
    assert np.array_equal(np.sign(seen), np.sign(truth))
    unmasked, truth_off, _ = client_view_of_round(fn, params, x, "off")
    assert np.corrcoef(unmasked.ravel(), truth_off.ravel())[0, 1] > 0.999


def test_masks_are_fresh_per_request():
    fn, params, x, _ = redcnn_case("all-relu", 32, 2)
    program, client, server = session(fn, params, x, "clear")
    first = server.start(client.encrypt(x))
    plan = server._plan
    second = server.start(client.encrypt(x))
    assert not np.allclose(plan.mult[0], server._plan.mult[0])
    assert first != second


# -- hostile and out-of-order messages ----------------------------------------


def live(fn=None):
    fn, params, x, want = redcnn_case("all-relu", 32, 2, x64=True)
    program, client, server = session(fn, params, x, "clear")
    return program, client, server, x, want


def finish(client, server, reply):
    while True:
        header, _ = hejax._wire.unpack("message", reply)
        if header["kind"] == "output":
            return client.decrypt_output(reply)
        reply = server.step(client.respond(reply))


def test_replayed_and_out_of_order_messages_are_refused():
    program, client, server, x, want = live()
    first = client.encrypt(x)
    reply1 = server.start(first)
    answer1 = client.respond(reply1)
    reply2 = server.step(answer1)
    with pytest.raises(errors.ProtocolError, match="out of order or replayed"):
        server.step(answer1)  # replay of the client's answer
    with pytest.raises(errors.ProtocolError, match="out of order or replayed"):
        client.respond(reply1)  # replay of the server's round
    # The session is not corrupted: it finishes with the right output.
    out = finish(client, server, reply2)
    assert np.max(np.abs(out - want)) <= 1e-9


def test_corrupted_truncated_and_foreign_messages(monkeypatch):
    program, client, server, x, want = live()
    reply = server.start(client.encrypt(x))
    answer = client.respond(reply)
    flipped = bytearray(answer)
    flipped[len(flipped) // 2] ^= 1
    version = bytearray(answer)
    version[4] += 1
    for bad in (bytes(flipped), answer[:-7], answer + b"x", b"", bytes(version)):
        with pytest.raises(errors.SerializationError):
            server.step(bad)
    with pytest.raises(errors.ProtocolError, match="from the client"):
        server.step(reply)  # the server's own message sent back
    other_program, other_client, other_server, _, _ = live()
    other_reply = other_server.start(other_client.encrypt(x))
    with pytest.raises(errors.ProtocolError, match="session"):
        server.step(other_client.respond(other_reply))
    out = finish(client, server, server.step(answer))
    assert np.max(np.abs(out - want)) <= 1e-9


def test_message_from_another_program():
    _, client, server, x, _ = live()
    fn, params, x2, _ = redcnn_case("linear", 32, 2, x64=True)
    _, other_client, _ = session(fn, params, x2, "clear")
    with pytest.raises(errors.ProtocolError, match="program"):
        server.start(other_client.encrypt(x2))


def test_wrong_count_and_bad_image():
    program, client, server, x, _ = live()
    with pytest.raises(errors.InvalidInputError, match="shape"):
        client.encrypt(np.zeros((1, 16, 16, 1)))
    with pytest.raises(errors.InvalidInputError, match="NaN"):
        client.encrypt(np.full((1, 32, 32, 1), np.nan))
    with pytest.raises(errors.ProtocolError, match="no session"):
        client.respond(b"")
    with pytest.raises(errors.ProtocolError, match="no session"):
        server.step(b"")
    msg = client.encrypt(x)
    header, payload = hejax._wire.unpack("message", msg)
    sections = hejax._wire.unpack_sections(payload)
    sections.pop(str(len(sections) - 1))
    header["count"] = len(sections)
    short = hejax._wire.pack("message", header, hejax._wire.pack_sections(sections))
    with pytest.raises(errors.ProtocolError, match="expected"):
        server.start(short)


def test_explicit_unmask_trades_one_product_for_fewer_encodings():
    fn, params, x, want = redcnn_case("all-relu", 32, 3, x64=True)
    results = {}
    for unmask in ("fold", "explicit"):
        program, client, server = session(fn, params, x, "clear", unmask=unmask)
        out, transcript = hejax.run(client, server, x)
        assert np.max(np.abs(out - want)) <= 1e-9
        results[unmask] = (program, transcript.encodings)
    fold_program, fold_enc = results["fold"]
    explicit_program, explicit_enc = results["explicit"]
    unmasks = [ins for ins in explicit_program.instrs if ins.op == "unmask"]
    relu_cts = sum(b.after.count for b in explicit_program.boundaries if not b.final)
    assert len(unmasks) == relu_cts
    assert explicit_enc < fold_enc / 10
    with pytest.raises(errors.InvalidInputError, match="unmask mode"):
        session(fn, params, x, "clear", unmask="later")


@pytest.mark.slow
def test_a_full_512_slice_compiles_and_runs():
    # A one-channel all-ReLU RED-CNN on a full slice: 76 tiles with halos.
    fn, params, x, want = redcnn_case("all-relu", 512, 1, x64=True)
    program, client, server = session(fn, params, x, "clear")
    assert program.input.grid.tiles > 16
    out, _ = hejax.run(client, server, x)
    assert np.max(np.abs(out - want)) <= 1e-9


def test_threads_are_refused_for_slot_programs():
    fn, params, x, _ = redcnn_case("linear", 22, 2)
    program = hejax.compile(fn, params, x, backend="clear")
    with pytest.raises(errors.InvalidInputError, match="coef programs only"):
        hejax.Client(program, workers=2)
    bundle = hejax.Client(program, workers=1).public_bundle()
    with pytest.raises(errors.InvalidInputError, match="coef programs only"):
        hejax.Server(program, bundle, workers=2)
