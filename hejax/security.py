"""Security levels of RLWE parameters, after the Homomorphic Encryption Standard.

The table gives, for each ring dimension, the largest total modulus bit count
(ciphertext modulus plus key-switching primes) that still reaches 128-bit
classical security with a ternary secret (HomomorphicEncryption.org standard,
2018, table of `logq` bounds).
"""

from __future__ import annotations

from hejax.errors import InsecureParametersError

MAX_LOG_Q_128 = {
    1024: 27,
    2048: 54,
    4096: 109,
    8192: 218,
    16384: 438,
    32768: 881,
    65536: 1761,
}


def security_bits(ring_dim: int, log_q: int) -> int:
    """Return 128 if `(ring_dim, log_q)` meets 128-bit security, else 0."""
    bound = MAX_LOG_Q_128.get(ring_dim)
    return 128 if bound is not None and log_q <= bound else 0


def check_security(backend: str, ring_dim: int, log_q: int, insecure: bool) -> int:
    """Raise unless the parameters are 128-bit secure or `insecure` is set.

    Args:
        backend: name of the backend, for the message.
        ring_dim: polynomial ring dimension N.
        log_q: total bits of all moduli, key-switching primes included.
        insecure: the caller's explicit consent to toy parameters.

    Returns:
        The security level in bits (128, or 0 for accepted toy parameters).

    Raises:
        InsecureParametersError: if the parameters are below 128 bits and
            `insecure` is false.
    """
    bits = security_bits(ring_dim, log_q)
    if bits < 128 and not insecure:
        bound = MAX_LOG_Q_128.get(ring_dim)
        need = (
            f"at most {bound} modulus bits at N={ring_dim}"
            if bound
            else f"a ring dimension among {sorted(MAX_LOG_Q_128)}"
        )
        raise InsecureParametersError(
            f"{backend}: N={ring_dim} with {log_q} modulus bits is below 128-bit "
            f"security (the HE standard allows {need}). Pick a preset, or pass "
            "insecure=True for a toy size in a test."
        )
    return bits
