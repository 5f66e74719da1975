"""Compile your own Flax model: a small residual denoiser, written here.

Any JAX-traceable `fn(params, x)` made of convolutions, transposed
convolutions, dense layers, bias and residual adds, constant products and
ReLU compiles. This script defines one in Flax linen, shows the IR that
tracing gives, the HE program's summary and its predicted cost, then runs
it through the client/server protocol and checks it against the model.

    python examples/compile_your_own.py --backend openfhe --size 32
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import hejax


class TinyDenoiser(nn.Module):
    """conv → ReLU → strided conv → ReLU → transposed conv, plus a shortcut."""

    features: int = 4

    @nn.compact
    def __call__(self, x):
        h = nn.relu(nn.Conv(self.features, (3, 3), name="conv1")(x))
        h = nn.relu(nn.Conv(self.features, (3, 3), strides=2, name="down")(h))
        h = nn.ConvTranspose(1, (3, 3), strides=(2, 2), name="up")(h)
        return x - 0.5 * h


def measured_profile(backend: hejax.Backend) -> dict | None:
    """The primitive costs `bench/primitives.py` measured for `backend`."""
    path = Path(__file__).resolve().parents[1] / "bench/results/primitives.json"
    if not path.exists():
        return None
    return json.loads(path.read_text()).get(backend.name, {}).get(backend.preset)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="openfhe")
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--features", type=int, default=4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> float:
    args = parse_args(argv)
    model = TinyDenoiser(features=args.features)
    x = jax.random.uniform(jax.random.key(0), (1, args.size, args.size, 1))
    params = model.init(jax.random.key(1), x)

    # Tracing alone gives the tensor-level IR: read it before compiling.
    print(hejax.trace(model.apply, params, x))

    backend = hejax.backends.get(args.backend)
    program = hejax.compile(model.apply, params, x, backend=backend)
    print(program.summary())
    profile = measured_profile(backend)
    if profile is not None:
        print(f"predicted server time: {program.cost(profile):.2f} s")

    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle())
    encrypted, transcript = hejax.run(client, server, x)
    plain = np.asarray(model.apply(params, x))
    err = float(jnp.max(jnp.abs(encrypted - plain)))
    print(transcript)
    print(f"max |encrypted - plaintext| = {err:.2e}")
    return err


if __name__ == "__main__":
    main()
