"""hejax demo: a smoothing convolution on an encrypted CT phantom, per backend.

Compiles a 5x5 Gaussian convolution (a plain JAX function) for each
installed backend, encrypts a 64x64 Shepp-Logan phantom, runs the
rotation-based program on the ciphertexts and compares the decrypted result
with the clear reference backend. Run it with
`.venv/bin/python examples/compare_backends.py [--size 64] [--backends a,b]`.
"""

import argparse
import time

import jax
import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

import hejax


def gaussian_kernel(size=5, sigma=1.0):
    ax = np.arange(size) - size // 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    return (g / g.sum())[:, :, None, None]


def smooth(params, x):
    return jax.lax.conv_general_dilated(
        x, params["w"], (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="phantom side")
    parser.add_argument(
        "--backends", default=None, help="comma-separated (default: every slot one)"
    )
    args = parser.parse_args(argv)
    size = args.size
    image = resize(shepp_logan_phantom(), (size, size), anti_aliasing=True)
    x = image[None, :, :, None].astype(np.float32)
    params = {"w": gaussian_kernel().astype(np.float32)}
    reference, errors = None, {}
    print(
        f"{'backend':>8} {'slots':>6} {'depth':>5} {'rot keys':>8} "
        f"{'time s':>7} {'max |err| vs clear':>19}"
    )
    slot = [
        b
        for b in hejax.backends.available()
        if b != "clear" and "slot" in hejax.backends.get(b).capabilities.encodings
    ]
    if args.backends is not None:
        slot = [b for b in args.backends.split(",") if b != "clear"]
    for name in ["clear", *slot]:
        backend = hejax.backends.get(name)
        program = hejax.compile(smooth, params, x, backend=backend)
        start = time.perf_counter()
        out = hejax.execute(program, x)
        seconds = time.perf_counter() - start
        reference = out if reference is None else reference
        caps = backend.capabilities
        err = errors[name] = float(np.max(np.abs(out - reference)))
        print(
            f"{name:>8} {caps.slots:>6} {program.depth:>5} "
            f"{len(program.rotations):>8} {seconds:>7.2f} {err:>19.2e}"
        )
    print("\n" + program.summary())
    return errors


if __name__ == "__main__":
    main()
