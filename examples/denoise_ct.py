"""Denoise a low-dose CT slice on ciphertexts, with the library's own calls.

What `hejax denoise` does, written out: simulate a low dose on the CT slice
pydicom ships, compile the shipped RED-CNN-lite for a backend, let a client
(who holds the keys) and a server (who holds the weights) exchange bytes
round by round, and compare the decrypted result with the plaintext model.

    python examples/denoise_ct.py                      # OpenFHE, whole slice
    python examples/denoise_ct.py --backend tenseal --crop 48
"""

from __future__ import annotations

import argparse

import numpy as np

import hejax
from hejax.ldct import data, load_pretrained, metrics


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="openfhe")
    parser.add_argument("--model", default="all-relu")
    parser.add_argument("--dose", type=float, default=2.5e4, help="incident photons")
    parser.add_argument("--crop", type=int, default=None, help="keep the centre N x N")
    return parser.parse_args(argv)


def centre(image: np.ndarray, size: int | None) -> np.ndarray:
    if size is None:
        return image
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size]


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse_args(argv)
    low, normal = data.example_pair(seed=0, config=data.DoseConfig(i0_low=args.dose))
    normal, low = centre(normal, args.crop), centre(low, args.crop)
    x = data.hu_to_unit(low)[None, :, :, None].astype(np.float32)

    # The server's side: a trained model, compiled for the chosen backend.
    model, params = load_pretrained(args.model)

    def denoiser(p, image):
        return model.apply({"params": p}, image)

    program = hejax.compile(denoiser, params, x, backend=args.backend)
    print(program.summary())

    # Two parties that share only bytes; `run` carries the messages.
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle())
    encrypted, transcript = hejax.run(client, server, x)
    plain = np.asarray(denoiser(params, x))

    truth = data.hu_to_unit(normal)
    result = {
        "low-dose PSNR": metrics.psnr(truth, x[0, ..., 0]),
        "encrypted PSNR": metrics.psnr(truth, encrypted[0, ..., 0]),
        "plaintext PSNR": metrics.psnr(truth, plain[0, ..., 0]),
        "max |enc - plain|": float(np.max(np.abs(encrypted - plain))),
        "rounds": len(transcript.rounds),
        "MB to server": transcript.total("bytes_to_server") / 2**20,
        "MB to client": transcript.total("bytes_to_client") / 2**20,
        "server s": transcript.total("server_seconds"),
        "client s": transcript.total("client_seconds"),
    }
    for key, value in result.items():
        print(f"{key:>18}: {value:.4g}")
    return result


if __name__ == "__main__":
    main()
