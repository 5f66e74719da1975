"""Fixtures shared by the backend conformance suite."""

import functools

import numpy as np
import pytest

import hejax

# Every backend this machine is expected to have; the suite fails, rather than
# skips, when one of them does not import.
EXPECTED = (
    "clear",
    "clear-bfv",
    "openfhe",
    "openfhe-bfv",
    "paillier",
    "tenseal",
    "tenseal-bfv",
)

# Backends whose default parameters are too slow for the suite run it on
# their toy preset (below 128-bit security, so it needs insecure=True).
SUITE_PARAMS = {"paillier": {"preset": "toy", "insecure": True}}


def backend_names():
    return sorted(set(EXPECTED) | set(hejax.backends.names()))


@functools.cache
def _encodings(name):
    try:
        params = SUITE_PARAMS.get(name, {})
        return hejax.backends.get(name, **params).capabilities.encodings
    except hejax.errors.BackendUnavailableError:
        return ("slot",)  # let the suite fail loudly on a broken backend


def backends_with(encoding):
    """Installed backends whose default preset supports `encoding`."""
    return [n for n in backend_names() if encoding in _encodings(n)]


@pytest.fixture(params=backends_with("slot"), scope="module")
def backend(request):
    return hejax.backends.get(request.param, **SUITE_PARAMS.get(request.param, {}))


@pytest.fixture(scope="module")
def ctx(backend):
    return backend.keygen(rotations=[1, -1, 3, -5, 7, 64])


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def vec(ctx, rng):
    return rng.uniform(-1, 1, ctx.slots)
