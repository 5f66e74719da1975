"""What each party of a hejax session holds, extracted for the attack scripts.

The server and an eavesdropper hold the bytes of the client's input message;
the client holds what it decrypts in the first ReLU round. These helpers run
the real protocol (hejax.Client, hejax.Server) and hand back those views.
"""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax
import numpy as np

import hejax
from hejax import _wire, protocol
from hejax.ldct import models


def ciphertext_payloads(message: bytes) -> list[bytes]:
    """The backend payloads of the ciphertexts in a protocol message."""
    _, payload = _wire.unpack("message", message)
    sections = _wire.unpack_sections(payload)
    return [
        _wire.unpack("ciphertext", sections[str(i)])[1] for i in range(len(sections))
    ]


def input_program(backend, size: int):
    """A one-round program (one 3×3 conv) whose client encodes a ``size``² image."""
    conv = nn.Conv(1, (3, 3), padding="SAME")
    params = conv.init(jax.random.key(0), np.zeros((1, size, size, 1)))["params"]

    def fn(p, v):
        return conv.apply({"params": p}, v)

    return hejax.compile(fn, params, np.zeros((1, size, size, 1)), backend=backend)


def redcnn(features: int, size: int, seed: int = 0):
    """A small all-ReLU RED-CNN in float64 with random weights: (fn, params)."""
    model = models.make_model("lite", "all-relu", features=features)
    rng = np.random.default_rng(seed)
    with jax.experimental.enable_x64():
        params = jax.tree.map(
            lambda a: np.asarray(a, np.float64) + rng.normal(0, 0.05, np.shape(a)),
            models.init_params(model, (1, size, size, 1), seed),
        )

    def fn(p, v):
        return model.apply({"params": p}, v)

    return fn, params


def first_relu_round(program, x, masks: str, permute: bool, seed=None) -> np.ndarray:
    """What the client decrypts in round 1: NHWC masked pre-activations."""
    client = hejax.Client(program)
    server = hejax.Server(
        program, client.public_bundle(), masks=masks, permute=permute, seed=seed
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # masks="off" warns, as it should
        reply = server.start(client.encrypt(x))
    _, cts = protocol._unpack(
        program.digest, reply, sender="server", session=client._session, round_=1
    )
    values = [client._ctx.decrypt(client._ctx.deserialize(ct)) for ct in cts]
    return program.boundaries[0].before.decode(values)
