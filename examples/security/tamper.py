"""Attack (c): wrong keys, corrupted bytes and forged ciphertexts.

* Decrypting with another key set's secret key (bypassing hejax's owner
  check) gives noise: its correlation with the plaintext is reported.
* Random bit flips, truncations and another format version of a server
  message are detected by the framing (SerializationError).
* A forgery is not: the public bundle travels in the clear, so anyone on
  the wire can add an encryption of a chosen ``delta`` to every ciphertext
  of the output message and recompute the checksum. The client accepts it
  and decrypts the honest output plus ``delta``.

Run: python examples/security/tamper.py
"""

from __future__ import annotations

import dataclasses

import numpy as np

import hejax
from hejax import _wire
from hejax.errors import HejaxError, SerializationError


@dataclasses.dataclass
class Result:
    backend: str
    check: str
    value: str


def wrong_key_correlation(backend_name: str, seed: int = 0) -> str:
    """Correlation of a decryption under another secret key with the truth."""
    backend = hejax.backends.get(backend_name)
    alice, eve = backend.keygen(), backend.keygen()
    x = np.random.default_rng(seed).uniform(-1, 1, alice.slots)
    ct = alice.encrypt(x)
    try:
        wrong = eve._call("decrypt", eve._decrypt, ct.handle, ct.level, ct.degree)
    except HejaxError as exc:
        return f"refused ({type(exc).__name__}: {str(exc)[-60:].strip()})"
    wrong = np.asarray(wrong, np.float64)[: alice.slots]
    return f"corr = {np.corrcoef(wrong, x)[0, 1]:+.4f}"


def _linear_session(backend_name: str, size: int = 16):
    from _views import input_program

    program = input_program(hejax.backends.get(backend_name), size)
    client = hejax.Client(program)
    server = hejax.Server(program, client.public_bundle())
    return program, client, server


def detected_fraction(backend_name: str, trials: int = 200, seed: int = 0) -> str:
    """Share of random raw corruptions of a server reply that are refused."""
    rng = np.random.default_rng(seed)
    _, client, server = _linear_session(backend_name)
    x = rng.uniform(0, 1, (1, 16, 16, 1))
    reply = server.start(client.encrypt(x))
    refused = 0
    for t in range(trials):
        bad = bytearray(reply)
        if t % 3 == 0:
            bit = int(rng.integers(8 * len(bad)))
            bad[bit // 8] ^= 1 << (bit % 8)
        elif t % 3 == 1:
            bad = bad[: int(rng.integers(len(bad)))]
        else:
            bad[4] ^= 0xFF  # format version
        try:
            client.decrypt_output(bytes(bad))
        except SerializationError:
            refused += 1
    client.decrypt_output(reply)
    return f"{refused}/{trials} refused"


def forge_output(message: bytes, bundle: bytes, backend, delta: float) -> bytes:
    """What an active attacker with the public bundle can send instead."""
    eve = backend.load_public(bundle)
    header, payload = _wire.unpack("message", message)
    sections = _wire.unpack_sections(payload)
    for name, blob in sections.items():
        ct = eve.deserialize(blob)
        shifted = eve.add(ct, eve.encrypt(np.full(eve.slots, delta), level=ct.level))
        sections[name] = eve.serialize(shifted)
    return _wire.pack("message", header, _wire.pack_sections(sections))


def forgery_error(backend_name: str, delta: float = 0.25, seed: int = 0) -> float:
    """Max |forged output − (honest output + delta)|: small means undetected."""
    program, client, server = _linear_session(backend_name)
    x = np.random.default_rng(seed).uniform(0, 1, (1, 16, 16, 1))
    want = np.asarray(hejax.ir.evaluate(program.graph, x))
    reply = server.start(client.encrypt(x))
    forged = forge_output(
        reply, client.public_bundle(), program.options["backend"], delta
    )
    out = client.decrypt_output(forged)
    return float(np.max(np.abs(out - (want + delta))))


def attack(backends=("clear", "openfhe", "tenseal")) -> list[Result]:
    """All checks of attack (c) for each backend."""
    out = []
    for name in backends:
        out.append(
            Result(name, "decrypt with another key", wrong_key_correlation(name))
        )
        out.append(Result(name, "raw corruption of a reply", detected_fraction(name)))
        err = forgery_error(name)
        out.append(
            Result(
                name,
                "forged reply (+0.25, checksum redone)",
                f"accepted: max abs(out - (honest + 0.25)) = {err:.1e}",
            )
        )
    return out


def main() -> None:
    for r in attack():
        print(r)


if __name__ == "__main__":
    main()
