import jax
import numpy as np
import pytest

import hejax
from hejax.coefprotocol import CoefClient, CoefServer
from hejax.ldct import models


def toy(name):
    """A coefficient backend at its small test ring (N = 1024)."""
    if name == "clear-bfv":
        return hejax.backends.get(name, preset="small")
    return hejax.backends.get(name, preset="toy", insecure=True)


def run_integers(program, x, seed=5, **server_options):
    """Drive a coef client and server by hand; return the exact integer output."""
    client = CoefClient(program)
    server = CoefServer(program, client.public_bundle(), seed=seed, **server_options)
    reply = server.start(client.encrypt(x))
    for _ in program.segments[:-1]:
        reply = server.step(client.respond(reply))
    return client.decrypt_integers(reply)


def redcnn_case(variant, size, features, seed=0, x64=False):
    """A RED-CNN with random weights, its input in [0, 1] and the plain output."""
    model = models.make_model("lite", variant, features=features)
    rng = np.random.default_rng(seed)

    def fn(p, x):
        return model.apply({"params": p}, x)

    x = rng.uniform(0, 1, (1, size, size, 1))
    if x64:
        with jax.experimental.enable_x64():
            params = jax.tree.map(
                lambda a: np.asarray(a, np.float64) + rng.normal(0, 0.02, np.shape(a)),
                models.init_params(model, (1, size, size, 1), seed),
            )
            return fn, params, x, np.asarray(fn(params, x))
    params = jax.tree.map(
        lambda a: np.asarray(a) + rng.normal(0, 0.02, np.shape(a)).astype(np.float32),
        models.init_params(model, (1, size, size, 1), seed),
    )
    return fn, params, x, np.asarray(fn(params, x.astype(np.float32)), np.float64)


@pytest.fixture
def case():
    return redcnn_case
