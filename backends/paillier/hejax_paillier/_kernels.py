"""Integer kernels of the paillier backend: lists of ciphertexts mod n².

Every function here takes plain data (the modulus ``n``, the primes, lists
of integers) and returns lists of ``gmpy2.mpz``, so that worker processes
can run it without hejax: it imports only ``phe`` and ``gmpy2``. Keys are
rebuilt once per process and modulus and cached.

Paillier with ``g = n + 1``: ``Enc(m) = (1 + n·m) · r^n mod n²``. Sums are
products of ciphertexts, a product by an integer ``k`` is ``c^k``, and
adding a known ``m`` multiplies by ``1 + n·m``. Encryption and decryption
are python-paillier's (``raw_encrypt``, and ``raw_decrypt`` with the CRT).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import gmpy2
from phe import paillier

mpz = gmpy2.mpz


@functools.lru_cache(maxsize=8)
def public_key(n: int) -> paillier.PaillierPublicKey:
    """The python-paillier public key of modulus `n` (cached per process)."""
    return paillier.PaillierPublicKey(int(n))


@functools.lru_cache(maxsize=8)
def private_key(n: int, p: int, q: int) -> paillier.PaillierPrivateKey:
    """The python-paillier private key of ``n = p·q`` (cached per process)."""
    return paillier.PaillierPrivateKey(public_key(n), int(p), int(q))


def encrypt(n: int, ms: Sequence[int]) -> list[gmpy2.mpz]:
    """Encrypt plaintexts in ``[0, n)``, each with fresh randomness."""
    pk = public_key(n)
    return [mpz(pk.raw_encrypt(int(m))) for m in ms]


def decrypt(n: int, p: int, q: int, cs: Sequence[gmpy2.mpz]) -> list[int]:
    """Decrypt ciphertexts to plaintexts in ``[0, n)``."""
    sk = private_key(n, p, q)
    return [sk.raw_decrypt(int(c)) for c in cs]


def mul(n2: gmpy2.mpz, cs: Sequence[gmpy2.mpz], ks: Sequence[int]) -> list[gmpy2.mpz]:
    """``c_i^k_i mod n²``: each ciphertext times its integer (any sign)."""
    one = mpz(1)
    return [
        one if k == 0 else c if k == 1 else gmpy2.powmod(c, k, n2)
        for c, k in zip(cs, ks, strict=True)
    ]


def mul_one(n2: gmpy2.mpz, k: int, cs: Sequence[gmpy2.mpz]) -> list[gmpy2.mpz]:
    """``c_i^k mod n²`` for one integer `k` (any sign)."""
    return mul(n2, cs, [k] * len(cs))


def add(n2: gmpy2.mpz, a: Sequence[gmpy2.mpz], b: Sequence[gmpy2.mpz]) -> list:
    """``a_i · b_i mod n²``: the encryption of the sums."""
    return [x * y % n2 for x, y in zip(a, b, strict=True)]


def add_plain(n: gmpy2.mpz, n2: gmpy2.mpz, cs: Sequence, ms: Sequence[int]) -> list:
    """Add known plaintexts ``m_i`` in ``[0, n)``: ``c_i · (1 + n·m_i)``."""
    return [c if m == 0 else c * (1 + n * m) % n2 for c, m in zip(cs, ms, strict=True)]


def negate(n2: gmpy2.mpz, cs: Sequence[gmpy2.mpz]) -> list[gmpy2.mpz]:
    """The encryption of ``-m_i``: the inverse mod n² of each ciphertext."""
    return [gmpy2.invert(c, n2) for c in cs]
