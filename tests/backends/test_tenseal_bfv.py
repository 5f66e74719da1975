"""Tests of what is particular to the tenseal-bfv backend (SEAL BFV, coefficients).

The shared behaviour is checked by the coefficient conformance suite; here:
the plaintext codec, the modulus, and the two ways ciphertexts are made
smaller on the wire (seeded client encryptions, one data prime to the client).
"""

import numpy as np
import pytest
import tenseal.sealapi as seal
from hejax_tenseal import TenSEALBFVBackend, _io
from hejax_tenseal._bfv import COEFF_BITS

from hejax import _wire, errors
from hejax.ring import ring_mul


@pytest.fixture(scope="module")
def be():
    return TenSEALBFVBackend("toy", insecure=True)


@pytest.fixture(scope="module")
def client(be):
    return be.keygen()


@pytest.fixture(scope="module")
def server(be, client):
    return be.load_public(client.public_bundle())


def _seal_ct(be, blob):
    _, payload = _wire.unpack("ciphertext", blob)
    return _io.load(seal.Ciphertext(), payload, be.seal_context)


def test_plaintext_codec_round_trips_every_coefficient(be):
    t, n = be.capabilities.plain_modulus, be.capabilities.ring_dim
    values = np.random.default_rng(0).integers(0, t, n).astype(np.uint64)
    values[[0, -1]] = [t - 1, 0]
    pt = _io.plaintext(values, be.seal_context)
    assert pt.coeff_count() == n
    assert [pt.data(i) for i in (0, 1, n - 1)] == [t - 1, int(values[1]), 0]
    assert np.array_equal(_io.coefficients(pt), values)


def test_seal_refuses_a_coefficient_at_or_above_t(be):
    values = np.zeros(be.capabilities.ring_dim, dtype=np.uint64)
    values[3] = be.capabilities.plain_modulus
    with pytest.raises(errors.SerializationError, match="SEAL could not load"):
        _io.plaintext(values, be.seal_context)


@pytest.mark.parametrize("preset", ["n8192", "n16384"])
def test_secure_presets_use_the_three_prime_modulus(preset):
    be = TenSEALBFVBackend(preset)
    assert [m.bit_count() for m in be.parms.coeff_modulus()] == list(COEFF_BITS)
    assert be.capabilities.security_bits >= 128


def test_client_encryptions_travel_seeded_and_decrypt(be, client, server):
    n = be.capabilities.ring_dim
    values = np.arange(n) % 97
    blob = client.serialize(client.encrypt(client.encode(values)))
    full = 2 * 2 * n * 8  # two polynomials, two data primes, one word each
    assert len(blob) < 0.6 * full
    ct = _seal_ct(be, blob)
    assert (ct.size(), ct.coeff_modulus_size()) == (2, 2)
    assert np.array_equal(client.decrypt(server.deserialize(blob)), values)


def test_server_results_drop_to_one_data_prime(be, client, server):
    t, n = be.capabilities.plain_modulus, be.capabilities.ring_dim
    rng = np.random.default_rng(1)
    x, k = rng.integers(0, t, n), rng.integers(0, t, n)
    ct = server.deserialize(client.serialize(client.encrypt(client.encode(x))))
    blob = server.serialize(server.mul_plain(ct, server.encode(k)))
    assert _seal_ct(be, blob).coeff_modulus_size() == 1
    got = client.decrypt(client.deserialize(blob))
    assert np.array_equal(np.mod(got, t), ring_mul(x, k, t))
