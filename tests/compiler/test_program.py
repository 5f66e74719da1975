import flax.linen as nn
import jax
import numpy as np
import pytest

import hejax
from hejax import errors
from hejax.program import OP_KINDS
from tests.compiler.conftest import as_f64


class Net(nn.Module):
    relu: bool = False

    @nn.compact
    def __call__(self, x):
        h = nn.Conv(3, (3, 3))(x)
        if self.relu:
            h = nn.relu(h)
        return nn.Conv(1, (3, 3))(h) + x


def compile_net(relu=False, transform="auto", **kw):
    x = np.random.default_rng(0).uniform(0, 1, (1, 10, 10, 1))
    m = Net(relu)
    p = as_f64(m.init(jax.random.PRNGKey(0), x), np.random.default_rng(1))
    be = hejax.backends.get("clear", **kw)
    return hejax.compile(m.apply, p, x, backend=be, transform=transform), x


def test_rotation_keys_are_derived_from_the_program():
    program, x = compile_net()
    steps = set()
    for ins in program.instrs:
        if ins.op == "rotate":
            steps |= set(ins.attrs["steps"])
    assert set(program.rotations) == steps and steps
    be = program.options["backend"]
    full = be.keygen(rotations=program.rotations)
    assert hejax.execute(program, x, context=full).shape == (1, 10, 10, 1)
    short = be.keygen(rotations=program.rotations[1:])
    with pytest.raises(errors.MissingRotationKeyError):
        hejax.execute(program, x, context=short)


def test_summary_lists_every_layer_with_counts():
    program, _ = compile_net()
    text = program.summary()
    for node in program.graph.nodes:
        assert node.name in text
    assert "depth" in text and "rotation keys" in text
    rows = {r["layer"]: r for r in program.layers()}
    conv = rows["conv2d_1"]
    assert conv["rotations"] == 8  # 3x3 kernel, one input channel, hoisted
    assert conv["ciphertexts"] == 3
    assert conv["levels"] == (0, 1)
    assert conv["bytes"] > 0


def test_transforms_differ_in_rotation_count():
    shift, _ = compile_net(transform="shift")
    out, _ = compile_net(transform="shift-out")
    rot = lambda p: {r["layer"]: r["rotations"] for r in p.layers()}  # noqa: E731
    # conv2d_1 has C_in=1 < C_out=3: rotating inputs needs fewer rotations.
    assert rot(shift)["conv2d_1"] == 8 < rot(out)["conv2d_1"] == 24
    # conv2d_3 has C_in=3 > C_out=1: rotating output partial sums wins.
    assert rot(out)["conv2d_3"] == 8 < rot(shift)["conv2d_3"] == 24


def test_cost_is_counts_times_profile():
    program, _ = compile_net()
    profile = dict.fromkeys(OP_KINDS, 1.0)
    assert program.cost(profile) == pytest.approx(sum(program.op_counts().values()))
    profile["rotate"] = (2.0, 1.0)  # interpolated by level
    assert program.cost(profile) > 0
    del profile["rescale"]
    with pytest.raises(errors.ProgramError, match="rescale"):
        program.cost(profile)


def test_relu_program_needs_the_scheduler():
    program, x = compile_net(relu=True)
    assert [b.kind for b in program.boundaries] == ["relu"]
    assert "1 ReLU boundaries" in program.summary()
    with pytest.raises(errors.ProgramError, match="hejax.run"):
        hejax.execute(program, x)


def test_bad_inputs_to_execute():
    program, x = compile_net()
    with pytest.raises(errors.InvalidInputError, match="shape"):
        hejax.execute(program, np.zeros((1, 12, 12, 1)))
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(errors.InvalidInputError, match="NaN"):
        hejax.execute(program, bad)


def test_program_and_context_of_other_parameters():
    program, x = compile_net()
    other = hejax.backends.get("clear", slots=1024).keygen(rotations=program.rotations)
    with pytest.raises(errors.ProgramError, match="compiled for"):
        hejax.execute(program, x, context=other)


def test_unknown_transform_and_option():
    with pytest.raises(errors.InvalidInputError, match="unknown transform"):
        compile_net(transform="nope")
    x = np.zeros((1, 4, 4, 1))
    m = Net()
    p = m.init(jax.random.PRNGKey(0), x)
    with pytest.raises(errors.InvalidInputError, match="compile option"):
        hejax.compile(m.apply, p, x, backend="clear", tile=True)
    with pytest.raises(errors.BackendUnavailableError):
        hejax.compile(m.apply, p, x, backend="no-such-backend")


def test_compile_is_deterministic():
    a, _ = compile_net()
    b, _ = compile_net()
    assert a.digest == b.digest
