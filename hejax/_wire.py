"""Framing of the bytes hejax sends: a versioned header and a checksum.

Every serialized object (ciphertext, plaintext, public bundle, protocol
message) starts with the magic ``HEJX``, a format version, a kind tag and a
length-prefixed JSON header, followed by the payload and a SHA-256 digest
(first 16 bytes) of header and payload; SHA-256 runs on the CPU's SHA
instructions, about twice as fast as BLAKE2b here (format version 2; version
1 used BLAKE2b). Library deserializers only ever see payloads whose digest
matched, so corrupted bytes never reach C++ code.

The digest detects accidental corruption only: it is keyed by nothing, so
whoever changes the bytes can recompute it. It is not a MAC and gives no
integrity against an active attacker (see docs/security.md).

Every field has a size limit, checked before anything is allocated or
parsed: :data:`MAX_HEADER` bytes of JSON header, :data:`MAX_PAYLOAD` bytes
of payload, and in a sectioned payload at most :data:`MAX_SECTIONS`
sections with names of at most :data:`MAX_SECTION_NAME` bytes.
"""

from __future__ import annotations

import hashlib
import json
import struct
from typing import Any

from hejax.errors import SerializationError

MAGIC = b"HEJX"
FORMAT_VERSION = 2
_DIGEST = 16
_PREFIX = struct.Struct("<4sHB I Q")  # magic, version, kind, header len, payload
#: Largest JSON header (bytes).
MAX_HEADER = 1 << 16
#: Largest payload (bytes): a public bundle with many rotation keys at
#: N = 32768 stays far below it.
MAX_PAYLOAD = 1 << 34
#: Most sections in one payload (a message holds one per ciphertext).
MAX_SECTIONS = 1 << 20
#: Longest section name (bytes).
MAX_SECTION_NAME = 256

KINDS = {"ciphertext": 1, "plaintext": 2, "bundle": 3, "message": 4}
_KIND_NAMES = {v: k for k, v in KINDS.items()}


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()[:_DIGEST]


def pack(kind: str, header: dict[str, Any], payload: bytes) -> bytes:
    """Frame `payload` with a JSON `header` as an object of `kind`."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    if len(head) > MAX_HEADER or len(payload) > MAX_PAYLOAD:
        raise SerializationError(
            f"{kind} is too large to send: header {len(head)} bytes (limit "
            f"{MAX_HEADER}), payload {len(payload)} bytes (limit {MAX_PAYLOAD})"
        )
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, KINDS[kind], len(head), len(payload))
    body = prefix + head + payload
    return body + _digest(body)


def unpack(kind: str, data: Any) -> tuple[dict[str, Any], bytes]:
    """Check and split framed bytes into ``(header, payload)``.

    Raises:
        SerializationError: if `data` is not bytes, is truncated or corrupted,
            has another format version, or holds another kind of object.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SerializationError(
            f"expected bytes for a {kind}, got {type(data).__name__}"
        )
    data = bytes(data)
    if len(data) < _PREFIX.size + _DIGEST:
        raise SerializationError(
            f"{kind} bytes are truncated: {len(data)} bytes is shorter than "
            "any hejax header"
        )
    magic, version, tag, head_len, pay_len = _PREFIX.unpack_from(data)
    if magic != MAGIC:
        raise SerializationError(f"not hejax bytes: magic {magic!r} != {MAGIC!r}")
    if version != FORMAT_VERSION:
        raise SerializationError(
            f"format version {version} is not supported (this hejax reads "
            f"version {FORMAT_VERSION}); re-serialize with a matching hejax"
        )
    if _KIND_NAMES.get(tag) != kind:
        raise SerializationError(
            f"expected a {kind}, got a {_KIND_NAMES.get(tag, f'kind {tag}')}"
        )
    if head_len > MAX_HEADER:
        raise SerializationError(
            f"{kind} declares a {head_len}-byte header; the limit is {MAX_HEADER}"
        )
    if pay_len > MAX_PAYLOAD:
        raise SerializationError(
            f"{kind} declares a {pay_len}-byte payload; the limit is {MAX_PAYLOAD}"
        )
    end = _PREFIX.size + head_len + pay_len
    if len(data) != end + _DIGEST:
        raise SerializationError(
            f"{kind} bytes are truncated or padded: expected {end + _DIGEST} "
            f"bytes, got {len(data)}"
        )
    if data[end:] != _digest(data[:end]):
        raise SerializationError(f"{kind} bytes are corrupted: checksum mismatch")
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + head_len])
    except (ValueError, RecursionError) as exc:  # bad UTF-8, JSON, nesting, ints
        raise SerializationError(f"{kind} header is not valid JSON") from exc
    if not isinstance(header, dict):
        raise SerializationError(f"{kind} header is not a JSON object")
    return header, data[_PREFIX.size + head_len : end]


def pack_sections(sections: dict[str, bytes]) -> bytes:
    """Concatenate named byte sections into one payload.

    Raises:
        SerializationError: for more than :data:`MAX_SECTIONS` sections or a
            name longer than :data:`MAX_SECTION_NAME` bytes.
    """
    if len(sections) > MAX_SECTIONS:
        raise SerializationError(
            f"{len(sections)} sections exceed the limit of {MAX_SECTIONS}"
        )
    if any(len(name.encode()) > MAX_SECTION_NAME for name in sections):
        raise SerializationError(
            f"a section name is longer than {MAX_SECTION_NAME} bytes"
        )
    out = [struct.pack("<I", len(sections))]
    for name, blob in sections.items():
        key = name.encode()
        out += [struct.pack("<HQ", len(key), len(blob)), key, blob]
    return b"".join(out)


def unpack_sections(payload: bytes) -> dict[str, bytes]:
    """Invert :func:`pack_sections`; raise SerializationError on bad bytes."""
    try:
        (count,) = struct.unpack_from("<I", payload)
        if count > MAX_SECTIONS:
            raise SerializationError(
                f"payload declares {count} sections; the limit is {MAX_SECTIONS}"
            )
        pos, sections = 4, {}
        for _ in range(count):
            key_len, blob_len = struct.unpack_from("<HQ", payload, pos)
            pos += 10
            if key_len > MAX_SECTION_NAME:
                raise SerializationError(
                    f"section name of {key_len} bytes; the limit is {MAX_SECTION_NAME}"
                )
            key = payload[pos : pos + key_len].decode()
            pos += key_len
            if key in sections:
                raise SerializationError(f"section {key!r} appears twice")
            if pos + blob_len > len(payload):
                raise SerializationError("section runs past the payload")
            sections[key] = payload[pos : pos + blob_len]
            pos += blob_len
    except (struct.error, UnicodeDecodeError) as exc:
        raise SerializationError("malformed sections in payload") from exc
    if pos != len(payload):
        raise SerializationError("trailing bytes after the last section")
    return sections
