"""The coef transform end to end: client and server on every BFV backend.

Each run's integer output must equal the NumPy fixed-point reference bit for
bit (np.array_equal), and its float output must stay within the error bound
the compiler proves. The HE backends run at their toy ring (N = 1024,
insecure=True) to keep the suite fast; the 128-bit presets are exercised by
the conformance suite and bench/coef.py.
"""

import math

import jax
import numpy as np
import pytest

import hejax
from hejax import _wire, errors
from hejax.coefprotocol import CoefClient, CoefServer
from tests.backends.conftest import backends_with
from tests.protocol.conftest import redcnn_case, run_integers, toy

COEF = backends_with("coefficient")


def contractive(params):
    """Kernels scaled to l1 norm ≤ 1 per output channel.

    The compiler's error bound multiplies the layers' l1 norms; with random
    weights of larger norm it is valid but far from the measured error. With
    norms ≤ 1 it is a tight, meaningful bound.
    """

    def scale(path, a):
        if path[-1].key != "kernel":
            return a
        norm = np.abs(a).reshape(-1, a.shape[-1]).sum(axis=0).max()
        return a / max(norm, 1.0)

    return jax.tree_util.tree_map_with_path(scale, params)


def session(client, server, x):
    """One session by hand: the tensor the client reads each round, the output."""
    reply = server.start(client.encrypt(x))
    seen = []
    for seg in range(len(server.program.segments) - 1):
        _, cts = client._receive(reply)
        seen.append(client._read(seg, cts))
        reply = server.step(client.respond(reply))
    return seen, client.decrypt_integers(reply)


def channel_order(seen, truth):
    """``order`` with ``seen[..., j] == truth[..., order[j]]`` (None: no match)."""
    c = truth.shape[-1]
    assert len({truth[..., k].tobytes() for k in range(c)}) == c  # distinct maps
    return [
        next((k for k in range(c) if np.array_equal(seen[..., j], truth[..., k])), None)
        for j in range(c)
    ]


@pytest.fixture(scope="module")
def models():
    out = {}
    for variant in ("linear", "all-relu"):
        fn, params, x, _ = redcnn_case(variant, 22, 3, seed=2, x64=True)
        params = contractive(params)
        with jax.experimental.enable_x64():
            plain = np.asarray(fn(params, x))
        out[variant] = (fn, params, x, plain)
    return out


@pytest.mark.parametrize("masks", ["off", "channel"])
@pytest.mark.parametrize("variant", ["linear", "all-relu"])
@pytest.mark.parametrize("name", COEF)
def test_redcnn_is_exact_and_within_the_proven_bound(models, name, variant, masks):
    fn, params, x, plain = models[variant]
    program = hejax.compile(
        fn, params, x, backend=toy(name), transform="coef", masks=masks
    )
    ref = program.reference(x)
    assert np.array_equal(run_integers(program, x), ref)

    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle())
    out, transcript = hejax.run(client, server, x)
    assert np.array_equal(out, program.decode_output(ref))
    assert len(transcript.rounds) == 10
    # The proven bound for this input is tight enough to mean something
    # (measured errors are ~2e-3 at f = g = 8; the bound is ~4e-2).
    bound = program.error_bound_for(x)
    assert bound <= program.error_bound and bound < 0.06
    assert np.max(np.abs(out - plain)) <= bound


def test_masks_on_needs_more_plaintext_bits_and_off_rescales(models):
    fn, params, x, _ = models["all-relu"]
    be = toy("clear-bfv")
    off = hejax.compile(fn, params, x, backend=be, transform="coef", masks="off")
    on = hejax.compile(fn, params, x, backend=be, transform="coef", masks="channel")
    assert {s.tensor_scale for s in off.segments[:-1]} == {off.frac_bits}
    scales = [s.scale for s in on.segments]
    assert scales == [on.frac_bits + on.weight_bits * (i + 1) for i in range(10)]
    assert np.prod(on.moduli, dtype=object) > np.prod(off.moduli, dtype=object)


def test_channel_masks_scale_each_channel_and_randomise_the_rest(models):
    fn, params, x, _ = models["all-relu"]
    be = toy("clear-bfv")
    program = hejax.compile(
        fn, params, x, backend=be, transform="coef", masks="channel"
    )
    seen = []
    for seed in (1, 2):
        client = CoefClient(program)
        server = CoefServer(program, client.public_bundle(), seed=seed)
        reply = server.start(client.encrypt(x))
        _, cts = client._receive(reply)
        layout = program.segments[0].pack.output
        polys = np.stack([client._ctxs[0].decrypt(client._ctxs[0].deserialize(b))
                          for b in cts[: layout.count]])  # fmt: skip
        seen.append((client._read(0, cts), polys, layout.read_mask()))

    # The client's first tensor is the reference's up to one positive integer
    # factor per channel, and that factor changes with the server's seed.
    ref = _first_tensor(program, x)
    ratios = []
    for tensor, _, _ in seen:
        live = ref > 0
        r = tensor[live] / ref[live]
        chan = np.broadcast_to(np.arange(ref.shape[-1]), ref.shape)[live]
        per = [np.unique(r[chan == c]) for c in np.unique(chan)]  # live channels
        assert len(per) >= 2
        assert all(len(p) == 1 and p[0] >= 1 and p[0] == int(p[0]) for p in per)
        assert np.array_equal(tensor == 0, ref == 0)
        ratios.append([p[0] for p in per])
    assert ratios[0] != ratios[1] and any(r > 1 for r in ratios[0])

    # Coefficients the client does not read are uniform mod t, fresh per run.
    t = program.moduli[0]
    (_, p1, read), (_, p2, _) = seen
    spread = np.abs(p1[~read]).astype(float)
    assert spread.mean() > t / 8 and not np.array_equal(p1[~read], p2[~read])


def _first_tensor(program, x):
    """The first tensor the client holds, unmasked and in the model's order."""
    from hejax import fixedpoint as fx
    from hejax.program import check_input
    from hejax.transforms.coef import _int_conv

    s = program.segments[0]
    xin = program.quantize_input(check_input(program.graph.input.shape, x))
    y = _int_conv(s, xin, False) + s.bias
    if program.masks == "off":
        y = fx.rescale(y, program.weight_bits)
    return np.maximum(y, 0) if s.relu else y


def test_replayed_message_and_wrong_mask_mode_are_refused(models):
    fn, params, x, _ = models["linear"]
    be = toy("clear-bfv")
    program = hejax.compile(fn, params, x, backend=be, transform="coef", masks="off")
    client = CoefClient(program)
    with pytest.raises(errors.InvalidInputError, match="masks"):
        hejax.Server(program, client.public_bundle(), masks="channel")
    server = CoefServer(program, client.public_bundle())
    reply = server.start(client.encrypt(x))
    answer = client.respond(reply)
    with pytest.raises(errors.ProtocolError):
        client.respond(reply)
    server.step(answer)
    with pytest.raises(errors.ProtocolError):
        server.step(answer)


def test_input_beyond_the_compiled_bound_is_refused(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    with pytest.raises(errors.InvalidInputError, match="input_bound"):
        program.reference(x * 3)
    with pytest.raises(errors.InvalidInputError, match="bound"):
        CoefClient(program).encrypt(x * 3)


def test_client_view_holds_no_weights(models):
    from hejax.coefprotocol import CoefView

    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="channel"
    )
    view = CoefView.of(program)
    assert not any(isinstance(v, np.ndarray) and v.dtype.kind == "f"
                   for v in vars(view).values())  # fmt: skip
    client = hejax.Client(view)
    assert isinstance(client, CoefClient)


@pytest.mark.parametrize("masks", ["off", "channel"])
@pytest.mark.parametrize("name", COEF)
def test_permuted_channels_keep_the_output_exact(models, name, masks):
    fn, params, x, _ = models["all-relu"]
    program = hejax.compile(
        fn, params, x, backend=toy(name), transform="coef", masks=masks
    )
    ref = program.reference(x)
    assert np.array_equal(run_integers(program, x, permute=True), ref)

    # hejax.Server hands coef programs to CoefServer; it permutes when asked.
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle(), permute=True)
    assert isinstance(server, CoefServer) and server.permute
    out, _ = hejax.run(client, server, x)
    assert np.array_equal(out, program.decode_output(ref))


def test_generic_server_leaves_coef_channels_in_order_by_default(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    client = CoefClient(program)
    server = hejax.Server(program, client.public_bundle())
    assert isinstance(server, CoefServer) and not server.permute
    seen, _ = session(client, server, x)
    assert np.array_equal(seen[0], _first_tensor(program, x))


def test_first_round_holds_the_feature_maps_in_another_order(models):
    fn, params, x, _ = models["all-relu"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    client = CoefClient(program)
    server = CoefServer(program, client.public_bundle(), permute=True, seed=0)
    seen, _ = session(client, server, x)
    truth = _first_tensor(program, x)
    order = channel_order(seen[0], truth)
    c = truth.shape[-1]
    assert sorted(order) == list(range(c)) and order != list(range(c))
    assert np.array_equal(seen[0], truth[..., order])


def test_each_session_draws_fresh_permutations(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    ref = program.reference(x)
    client = CoefClient(program)
    truth, _ = session(client, CoefServer(program, client.public_bundle()), x)
    server = CoefServer(program, client.public_bundle(), permute=True)
    runs = [session(client, server, x) for _ in range(2)]
    orders = []
    for seen, out in runs:
        assert np.array_equal(out, ref)
        order = [channel_order(a, b) for a, b in zip(seen, truth, strict=True)]
        assert all(sorted(o) == list(range(len(o))) for o in order)
        orders.append(order)
    # Seven classes of three channels: equal draws have probability 6^-7.
    assert orders[0] != orders[1]


def test_shortcut_and_the_sum_it_joins_share_one_permutation(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    names = [s.output for s in program.segments[:-1]]
    joined = [
        (names.index(r), s.index)
        for s in program.segments
        for r, _ in s.residuals
        if program.perm_class[r] is not None
    ]
    assert len(joined) == 2  # RED-CNN: conv2 -> tconv3, conv4 -> tconv1

    client = CoefClient(program)
    truth, _ = session(client, CoefServer(program, client.public_bundle()), x)
    server = CoefServer(program, client.public_bundle(), permute=True, seed=0)
    seen, out = session(client, server, x)
    assert np.array_equal(out, program.reference(x))
    for r, s in joined:
        order = channel_order(seen[r], truth[r])
        assert order == channel_order(seen[s], truth[s])
        assert order != list(range(len(order)))


def test_kernels_are_kept_across_sessions_only_without_permutations(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    client = CoefClient(program)
    kernels = sum(s.pack.in_groups * s.pack.out_groups for s in program.segments)
    for permute, fresh in ((False, 0), (True, kernels)):
        server = CoefServer(program, client.public_bundle(), permute=permute)
        session(client, server, x)
        assert server.encodings == kernels
        session(client, server, x)
        assert server.encodings == fresh  # encoded again by the second session


def test_noise_flooding_is_refused_by_name(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    bundle = hejax.Client(program).public_bundle()
    with pytest.raises(errors.InvalidInputError, match="rerandomize"):
        hejax.Server(program, bundle, rerandomize=True)


@pytest.mark.parametrize("name", COEF)
def test_threads_compute_the_same_exact_output(models, name):
    fn, params, x, _ = models["all-relu"]
    program = hejax.compile(
        fn, params, x, backend=toy(name), transform="coef", masks="channel"
    )
    client = CoefClient(program, workers=2)
    server = CoefServer(program, client.public_bundle(), seed=5, workers=3)
    reply = server.start(client.encrypt(x))
    for _ in program.segments[:-1]:
        reply = server.step(client.respond(reply))
    assert np.array_equal(client.decrypt_integers(reply), program.reference(x))


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_workers_must_be_a_positive_int(models, workers):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    with pytest.raises(errors.InvalidInputError, match="workers"):
        CoefClient(program, workers=workers)
    bundle = CoefClient(program).public_bundle()
    with pytest.raises(errors.InvalidInputError, match="workers"):
        hejax.Server(program, bundle, workers=workers)


def test_schedule_lists_one_round_per_convolution(models):
    fn, params, x, _ = models["all-relu"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    rounds = hejax.schedule(program)
    assert [r.index for r in rounds] == list(range(len(program.segments)))
    assert rounds[-1].ends == "output" and rounds[0].ends == "relu"
    assert rounds == hejax.Server(program, CoefClient(program).public_bundle()).rounds


def test_early_rounds_use_fewer_moduli(models):
    fn, params, x, _ = models["all-relu"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="channel"
    )
    used = [s.moduli for s in program.segments]
    assert used == sorted(used) and used[0] < used[-1] == len(program.moduli)
    spread = (1 << program.mask_bits) - 1
    for s in program.segments:
        need = s.bound * (1 if s.final else spread)
        assert math.prod(program.moduli[: s.moduli]) > 2 * need + 1
        if s.moduli > 1:  # and one modulus fewer would not do
            assert math.prod(program.moduli[: s.moduli - 1]) <= 2 * need + 1
    assert [r.ciphertexts for r in hejax.schedule(program)] == [
        s.moduli * s.pack.output.count for s in program.segments
    ]
    client = CoefClient(program)
    server = CoefServer(program, client.public_bundle(), seed=2)
    first = server.start(client.encrypt(x))
    _, payload = _wire.unpack("message", first)
    count = used[0] * program.segments[0].pack.output.count
    assert len(_wire.unpack_sections(payload)) == count
    reply = first
    for _ in program.segments[:-1]:
        reply = server.step(client.respond(reply))
    assert np.array_equal(client.decrypt_integers(reply), program.reference(x))


def test_generic_parties_pass_their_options_on(models):
    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    client = hejax.Client(program, workers=3)
    assert isinstance(client, CoefClient) and client.workers == 3
    server = hejax.Server(program, client.public_bundle(), workers=2)
    assert isinstance(server, CoefServer) and server.workers == 2


def test_randomising_coefficients_come_from_the_os(models, monkeypatch):
    import os

    fn, params, x, _ = models["linear"]
    program = hejax.compile(
        fn, params, x, backend=toy("clear-bfv"), transform="coef", masks="off"
    )
    server = CoefServer(program, CoefClient(program).public_bundle())
    t = program.moduli[0]
    calls = []
    real = os.urandom

    def spy(n):
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", spy)
    a, b = server._noise((3, 1024), t), server._noise((3, 1024), t)
    assert calls == [8 * 3 * 1024] * 2
    assert a.shape == (3, 1024) and a.min() >= 0 and a.max() < t
    assert not np.array_equal(a, b)
    # Roughly uniform: each quarter of [0, t) holds about a quarter.
    quarters = np.bincount((a.ravel() * 4) // t, minlength=4) / a.size
    assert np.all(np.abs(quarters - 0.25) < 0.05)
