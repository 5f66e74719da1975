"""Calibrated bounds of the coef transform: fewer moduli, exact, or a refusal.

A program compiled with ``calibration=`` caps every feature map the client
sends at the calibration peak times 2^headroom_bits; the client checks the
cap before encrypting. Within the cap the output must still equal the NumPy
reference bit for bit; beyond it the client and the reference must refuse
with InvalidInputError, never return a wrapped value.
"""

import numpy as np
import pytest

import hejax
from hejax import errors
from hejax.coefprotocol import CoefClient, CoefServer
from tests.backends.conftest import backends_with
from tests.protocol.conftest import redcnn_case, run_integers, toy

COEF = backends_with("coefficient")


@pytest.fixture(scope="module")
def model():
    # Random weights (l1 norms > 1): proven bounds grow at every layer.
    fn, params, x, _ = redcnn_case("all-relu", 22, 3, seed=4, x64=True)
    return fn, params, x


def compile_coef(model, be, **options):
    fn, params, x = model
    return hejax.compile(fn, params, x, backend=be, transform="coef", **options)


@pytest.mark.parametrize("masks", ["off", "channel"])
@pytest.mark.parametrize("name", COEF)
def test_calibrated_bounds_need_fewer_moduli_and_stay_exact(model, name, masks):
    _, _, x = model
    be = toy(name)
    proven = compile_coef(model, be, masks=masks)
    calibrated = compile_coef(model, be, masks=masks, calibration=x)
    peak = max(s.bound for s in calibrated.segments)
    assert peak < max(s.bound for s in proven.segments) / 2**8
    if masks == "off":  # with channel masks the scale's growth dominates T
        assert len(calibrated.moduli) < len(proven.moduli)
    assert proven.limits == {} and proven.headroom_bits is None
    assert set(calibrated.limits) == {s.output for s in calibrated.segments[:-1]}
    # The calibration image itself, and another image inside the caps.
    for image in (x, 0.8 * x[:, ::-1]):
        ref = calibrated.reference(image)
        assert np.array_equal(run_integers(calibrated, image), ref)
        assert np.array_equal(
            calibrated.decode_output(ref), proven.decode_output(proven.reference(image))
        )


@pytest.mark.parametrize("masks", ["off", "channel"])
def test_a_feature_map_above_its_cap_is_refused_before_it_can_wrap(model, masks):
    _, _, x = model
    dim = 0.05 * x  # caps far below what x itself reaches
    program = compile_coef(
        model, toy("clear-bfv"), masks=masks, calibration=dim, headroom_bits=0
    )
    assert np.array_equal(run_integers(program, dim), program.reference(dim))
    with pytest.raises(errors.InvalidInputError, match="above the limit"):
        program.reference(x)
    client = CoefClient(program)
    server = CoefServer(program, client.public_bundle(), seed=1)
    reply = server.start(client.encrypt(x))
    with pytest.raises(errors.InvalidInputError, match="headroom_bits"):
        client.respond(reply)


def test_calibration_images_are_checked(model):
    fn, params, x = model
    be = toy("clear-bfv")
    batch = np.concatenate([x, 0.5 * x])
    assert compile_coef(model, be, masks="off", calibration=batch).limits
    assert compile_coef(model, be, masks="off", calibration=x[0]).limits
    bad = {
        "shape": x[:, :5],
        "finite": np.where(x > 0.5, np.nan, x),
        "empty": x[:0],
        "input_bound": 2 * x,
    }
    for match, images in bad.items():
        with pytest.raises(errors.InvalidInputError, match=match):
            compile_coef(model, be, masks="off", calibration=images)
    with pytest.raises(errors.InvalidInputError, match="headroom_bits"):
        compile_coef(model, be, masks="off", calibration=x, headroom_bits=-1)
