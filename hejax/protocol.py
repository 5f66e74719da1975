"""The two-party protocol: a Client and a Server that share nothing but bytes.

The client owns the keys. It sends the public bundle once, then for each
image an input message; the server answers with one message per round; the
client answers ReLU rounds (decrypt, ReLU, clear unused slots, re-encrypt)
and refresh rounds (decrypt, re-encrypt) and finally decrypts the output.

Every message has a versioned header — format version, program digest,
session id, round index, sender, kind, ciphertext count — and a checksum over
header and payload (see :mod:`hejax._wire`). A message that is corrupted, out
of order, replayed, from another program or session, or of another version
is rejected with :class:`~hejax.errors.ProtocolError` (or
:class:`~hejax.errors.SerializationError` for bytes that are not a hejax
message at all) before any state changes, so the session goes on.

The client is given the program but keeps only its weightless
:class:`ClientView`: layouts, rotation steps and the backend parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from hejax import _wire
from hejax._threads import check_workers
from hejax.backend import Backend, Ciphertext, Context
from hejax.errors import HejaxError, InvalidInputError, ProgramError, ProtocolError
from hejax.program import Boundary, Program, Runner, TensorLayout, check_input
from hejax.schedule import draw_masks, fold, schedule

__all__ = ["Client", "ClientView", "Server", "Transcript", "run"]

log = logging.getLogger(__name__)

#: Largest ciphertext a message may carry (bytes).
MAX_CIPHERTEXT_BYTES = 1 << 28
#: With ``rerandomize=True``, flooding noise has std ``precision / 16``:
#: its largest value over many slots, about ``4 std``, stays below a quarter
#: of the backend's stated precision.
FLOOD_FRACTION = 1 / 16


# -- what the client may know --------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class ClientView:
    """What the client needs of a program: layouts and keys, no weights."""

    digest: str
    backend: Backend
    rotations: tuple[int, ...]
    input: TensorLayout
    output: TensorLayout
    boundaries: tuple[Boundary, ...]
    output_shape: tuple[int, ...]

    @classmethod
    def of(cls, program: Program) -> ClientView:
        """The client's view of `program`."""
        return cls(
            digest=program.digest,
            backend=program.options["backend"],
            rotations=program.rotations,
            input=program.input,
            output=program.output,
            boundaries=program.boundaries,
            output_shape=program.graph.by_name[program.graph.output].shape,
        )


# -- messages ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Message:
    session: str
    round: int
    sender: str
    kind: str
    cts: list[bytes]


def _pack(digest: str, msg: _Message, **extra: Any) -> bytes:
    header = {
        "program": digest,
        "session": msg.session,
        "round": msg.round,
        "from": msg.sender,
        "kind": msg.kind,
        "count": len(msg.cts),
        **extra,
    }
    payload = _wire.pack_sections({str(i): ct for i, ct in enumerate(msg.cts)})
    return _wire.pack("message", header, payload)


def _unpack(digest: str, data: Any, *, sender: str, session: str | None, round_: int):
    header, payload = _wire.unpack("message", data)
    if header.get("program") != digest:
        raise ProtocolError(
            f"message is for program {header.get('program')!r}, this party runs "
            f"{digest!r}; both parties must use the same compiled program"
        )
    if header.get("from") != sender:
        raise ProtocolError(
            f"expected a message from the {sender}, got one from {header.get('from')!r}"
        )
    if session is not None and header.get("session") != session:
        raise ProtocolError(
            f"message belongs to session {str(header.get('session'))[:12]}, not to "
            f"the current session {session[:12]}"
        )
    if header.get("round") != round_:
        raise ProtocolError(
            f"message of round {header.get('round')!r} arrived when round {round_} "
            "was expected (out of order or replayed)"
        )
    sections = _wire.unpack_sections(payload)
    count = header.get("count")
    if not isinstance(count, int) or count != len(sections):
        raise ProtocolError("message ciphertext count does not match its payload")
    cts = [sections.get(str(i)) for i in range(count)]
    if any(ct is None or len(ct) > MAX_CIPHERTEXT_BYTES for ct in cts):
        raise ProtocolError("message holds a missing or oversized ciphertext")
    return header, cts


def _expect_count(cts: Sequence[bytes], want: int, what: str) -> None:
    if len(cts) != want:
        raise ProtocolError(f"{what}: expected {want} ciphertexts, got {len(cts)}")


def _load(ctx: Context, blob: bytes) -> Ciphertext:
    """Deserialize a ciphertext of a message; unreadable bytes are a ProtocolError."""
    try:
        return ctx.deserialize(blob)
    except HejaxError as exc:
        raise ProtocolError(f"message holds an unreadable ciphertext: {exc}") from exc


def _open_session(digest: str, message: bytes) -> tuple[str, list[bytes]]:
    """Session id and ciphertexts of a client's first (input) message."""
    header, cts = _unpack(digest, message, sender="client", session=None, round_=0)
    if header.get("kind") != "input":
        raise ProtocolError(
            f"a session starts with an input, got {header.get('kind')!r}"
        )
    session = header.get("session")
    if not isinstance(session, str) or len(session) != 32:
        raise ProtocolError("input message has no valid session id")
    return session, cts


def _client_reply(digest: str, message: bytes, session: str | None, round_: int):
    """Header and ciphertexts of the client's answer to round `round_ - 1`."""
    if session is None:
        raise ProtocolError("no session: call start(message) first")
    return _unpack(digest, message, sender="client", session=session, round_=round_)


# -- transcript ---------------------------------------------------------------


@dataclasses.dataclass
class RoundRecord:
    """Measurements of one round."""

    index: int
    ends: str
    server_seconds: float = 0.0
    client_seconds: float = 0.0
    bytes_to_client: int = 0
    bytes_to_server: int = 0
    ciphertexts: int = 0


@dataclasses.dataclass
class Transcript:
    """Rounds, bytes each way and time of each party, per round.

    Attributes:
        rounds: one :class:`RoundRecord` per round.
        masks: the mask mode of the session.
        bundle_bytes: size of the public bundle sent once.
        encodings: plaintexts the server encoded afresh for this request.
    """

    rounds: list[RoundRecord]
    masks: str
    bundle_bytes: int = 0
    encodings: int = 0

    def total(self, field: str) -> float:
        """Sum of a round field over all rounds."""
        return sum(getattr(r, field) for r in self.rounds)

    def __str__(self) -> str:
        lines = [
            f"{'round':>5} {'ends':>8} {'server s':>9} {'client s':>9} "
            f"{'to client MB':>12} {'to server MB':>12} {'cts':>5}"
        ]
        for r in self.rounds:
            lines.append(
                f"{r.index:>5} {r.ends:>8} {r.server_seconds:>9.2f} "
                f"{r.client_seconds:>9.2f} {r.bytes_to_client / 2**20:>12.2f} "
                f"{r.bytes_to_server / 2**20:>12.2f} {r.ciphertexts:>5}"
            )
        lines.append(
            f"{'total':>5} {'':>8} {self.total('server_seconds'):>9.2f} "
            f"{self.total('client_seconds'):>9.2f} "
            f"{self.total('bytes_to_client') / 2**20:>12.2f} "
            f"{self.total('bytes_to_server') / 2**20:>12.2f}"
        )
        return "\n".join(lines)


# -- client ------------------------------------------------------------------


class Client:
    """The party that owns the image and the keys.

    Args:
        program: the compiled program (only its weightless view is kept) or
            a :class:`ClientView`.
        workers: threads per party; more than one only for coef programs
            (see :class:`~hejax.coefprotocol.CoefClient`).
    """

    def __new__(cls, program: Any = None, *args: Any, **kwargs: Any):
        """A :class:`~hejax.coefprotocol.CoefClient` for a coef program."""
        coef = _coef_party(program, "CoefClient")
        if coef and cls is Client:
            return coef(program, *args, **kwargs)
        return super().__new__(cls)

    def __init__(self, program: Program | ClientView, *, workers: int = 1):
        _single_thread(workers)
        self.view = (
            program if isinstance(program, ClientView) else ClientView.of(program)
        )
        self._ctx = self.view.backend.keygen(rotations=self.view.rotations)
        self._session: str | None = None
        self._round = 0

    def public_bundle(self) -> bytes:
        """The public key and the rotation keys the program needs."""
        return self._ctx.public_bundle()

    def encrypt(self, image: Any) -> bytes:
        """Start a session: encrypt `image` into the first message.

        Raises:
            InvalidInputError: for a wrong shape or non-finite values.
        """
        arr = _check_image(self.view, image)
        self._session = os.urandom(16).hex()
        self._round = 0
        cts = [
            self._ctx.serialize(self._ctx.encrypt(v))
            for v in self.view.input.encode(arr)
        ]
        msg = _pack(
            self.view.digest, _Message(self._session, 0, "client", "input", cts)
        )
        self._round = 1
        return msg

    def respond(self, message: bytes) -> bytes:
        """Answer a ReLU or refresh round.

        Raises:
            ProtocolError: for a message out of order, replayed, of another
                session or program; the session state is left unchanged.
        """
        header, cts = self._receive(message)
        kind = header.get("kind")
        if kind not in ("relu", "refresh"):
            raise ProtocolError(f"expected a relu or refresh round, got {kind!r}")
        boundary = self._boundary(header)
        if kind != boundary.kind or boundary.final:
            raise ProtocolError(f"round kind {kind!r} does not match the program")
        _expect_count(cts, boundary.before.count, f"{kind} round")
        values = [self._ctx.decrypt(self._ctx.deserialize(ct)) for ct in cts]
        if kind == "relu":
            tensor = np.maximum(boundary.before.decode(values), 0.0)
            values = boundary.after.encode(tensor)
        out = [self._ctx.serialize(self._ctx.encrypt(v)) for v in values]
        reply = _Message(self._session, self._round + 1, "client", kind, out)
        self._round += 2
        return _pack(self.view.digest, reply)

    def decrypt_output(self, message: bytes) -> np.ndarray:
        """Decrypt the final message into the model's output array.

        Raises:
            ProtocolError: if `message` is not this session's output.
        """
        header, cts = self._receive(message)
        if header.get("kind") != "output":
            raise ProtocolError(
                f"expected the output, got a {header.get('kind')!r} round"
            )
        final = self.view.boundaries[-1] if self.view.boundaries else None
        layout = final.before if final is not None and final.final else self.view.output
        _expect_count(cts, layout.count, "output")
        values = [self._ctx.decrypt(self._ctx.deserialize(ct)) for ct in cts]
        out = layout.decode(values)
        if final is not None and final.final:
            out = np.maximum(out, 0.0)
        self._session = None
        return out.reshape((1, *self.view.output_shape))

    def _receive(self, message: bytes):
        if self._session is None:
            raise ProtocolError("no session: call encrypt(image) first")
        return _unpack(
            self.view.digest,
            message,
            sender="server",
            session=self._session,
            round_=self._round,
        )

    def _boundary(self, header) -> Boundary:
        index = header.get("boundary")
        if not isinstance(index, int) or not 0 <= index < len(self.view.boundaries):
            raise ProtocolError(f"message names no valid boundary ({index!r})")
        return self.view.boundaries[index]


def _single_thread(workers: Any) -> None:
    if check_workers(workers) != 1:
        raise InvalidInputError(
            f"workers={workers}: threads per party are implemented for coef "
            "programs only; slot programs run on one thread (workers=1)"
        )


def _coef_party(program: Any, name: str):
    """The coef protocol's class `name` when `program` is a coef program."""
    if getattr(program, "transform", None) != "coef" or isinstance(
        program, Program | ClientView
    ):
        return None
    from hejax import coefprotocol

    return getattr(coefprotocol, name)


def _check_image(view: ClientView, image: Any) -> np.ndarray:
    return check_input(view.input.shape, image)


# -- server -----------------------------------------------------------------


class Server:
    """The party that owns the model; it never holds a secret key.

    Args:
        program: the compiled program.
        public_bundle: the client's public bundle (bytes).
        masks: ``"element"`` (default), ``"channel"`` or ``"off"`` (research
            only; warns).
        permute: permute channels in ReLU rounds. A coef program gets a
            :class:`~hejax.coefprotocol.CoefServer` instead, which permutes
            only when ``permute=True`` is passed.
        seed: seed masks deterministically (tests only); by default masks
            come from the operating system's entropy, fresh per request.
        rerandomize: before a ciphertext leaves the server, add a fresh
            encryption of Gaussian noise of std ``FLOOD_FRACTION * precision``
            (noise flooding; no noise on exact schemes), so that its noise no
            longer reflects the weights. Off by default: it costs one
            encryption per ciphertext sent and adds that noise to the result
            (see docs/security.md for what it does and does not give).
        workers: threads per party; more than one only for coef programs
            (see :class:`~hejax.coefprotocol.CoefServer`).
    """

    def __new__(cls, program: Any = None, *args: Any, **kwargs: Any):
        """A :class:`~hejax.coefprotocol.CoefServer` for a coef program."""
        coef = _coef_party(program, "CoefServer")
        if coef and cls is Server:
            return coef(program, *args, **{"masks": None, **kwargs})
        return super().__new__(cls)

    def __init__(
        self,
        program: Program,
        public_bundle: bytes,
        *,
        masks: str = "element",
        permute: bool = True,
        seed: int | None = None,
        rerandomize: bool = False,
        workers: int = 1,
    ):
        _single_thread(workers)
        self.program = program
        self.masks = masks
        self.permute = permute
        self.rerandomize = bool(rerandomize)
        self._seed = seed
        self._ctx: Context = program.options["backend"].load_public(public_bundle)
        caps = self._ctx.capabilities
        self._flood = 0.0 if caps.exact else FLOOD_FRACTION * caps.precision
        self._runner = Runner(program, self._ctx)
        self._rounds = schedule(program)
        self._session: str | None = None
        self._round = 0
        self.encodings = 0

    @property
    def rounds(self):
        """The program's rounds (see :func:`hejax.schedule`)."""
        return self._rounds

    def start(self, message: bytes) -> bytes:
        """Begin a session from the client's input message."""
        session, cts = _open_session(self.program.digest, message)
        _expect_count(cts, self.program.input.count, "input")
        loaded = [_load(self._ctx, ct) for ct in cts]
        rng = np.random.default_rng(self._seed)
        plan = draw_masks(self.program, rng, self.masks, self.permute)
        folding = fold(self.program, plan)
        # Commit the new session only now that the message is valid.
        self._session, self._plan, self._folding = session, plan, folding
        self.encodings = folding.encodings
        self._env = dict(
            zip((int(r) for r in self.program.input.regs.flat), loaded, strict=True)
        )
        self._pc, self._round = 0, 1
        return self._advance()

    def step(self, message: bytes) -> bytes:
        """Continue the session with the client's answer to the last round."""
        header, cts = _client_reply(
            self.program.digest, message, self._session, self._round + 1
        )
        ins = self.program.instrs[self._pc]
        if header.get("kind") != ins.op:
            raise ProtocolError(
                f"expected a {ins.op} answer, got {header.get('kind')!r}"
            )
        k = ins.attrs["boundary"]
        b = self.program.boundaries[k]
        _expect_count(cts, b.after.count, f"{ins.op} answer")
        loaded = [_load(self._ctx, ct) for ct in cts]
        after = [int(r) for r in b.after.regs.flat]
        if ins.op == "relu":
            loaded = self._unpermute(k, loaded, b.after.regs.shape)
        else:
            add = self._plan.add[k].reshape(len(after), -1)
            loaded = [self._ctx.add_plain(ct, -add[i]) for i, ct in enumerate(loaded)]
        self._env.update(zip(after, loaded, strict=True))
        self._runner.release(self._env, self._pc)
        self._pc += 1
        self._round += 2
        return self._advance()

    # -- internals ----------------------------------------------------------

    def _advance(self) -> bytes:
        self._pc = self._runner.run(
            self._env, self._pc, overrides=self._folding.overrides
        )
        if self._pc >= len(self.program.instrs):
            return self._send("output", [int(r) for r in self.program.output.regs.flat])
        ins = self.program.instrs[self._pc]
        if ins.attrs.get("final"):
            return self._send("output", list(ins.args))
        k = ins.attrs["boundary"]
        regs = np.asarray(ins.args).reshape(
            self.program.boundaries[k].before.regs.shape
        )
        if ins.op == "relu":
            perm = self._plan.perm[k]
            regs = regs[perm]
            return self._send("relu", [int(r) for r in regs.flat], boundary=k)
        add = self._plan.add[k].reshape(regs.size, -1)
        cts = [
            self._ctx.add_plain(self._env[int(r)], add[i])
            for i, r in enumerate(regs.flat)
        ]
        return self._send("refresh", cts, boundary=k)

    def _send(self, kind: str, regs_or_cts, boundary: int | None = None) -> bytes:
        last = self._ctx.capabilities.max_depth
        blobs = []
        for item in regs_or_cts:
            ct = self._env[item] if isinstance(item, int) else item
            if self.rerandomize and ct.degree == 2:
                ct = self._ctx.rescale(ct)
            if ct.degree == 1:  # fewer towers: smaller message, faster decrypt
                ct = self._ctx.drop_level(ct, last)
            if self.rerandomize:
                ct = self._ctx.rerandomize(ct, self._flood)
            blobs.append(self._ctx.serialize(ct))
        msg = _Message(self._session, self._round, "server", kind, blobs)
        extra = {} if boundary is None else {"boundary": boundary}
        data = _pack(self.program.digest, msg, **extra)
        if kind == "output":
            self._session = None
        return data

    def _unpermute(self, k: int, cts: list[Ciphertext], shape) -> list[Ciphertext]:
        perm = self._plan.perm[k]
        grid = np.empty(shape, dtype=object)
        arranged = np.array(cts, dtype=object).reshape(shape)
        grid[perm] = arranged
        return list(grid.flat)


# -- driver -------------------------------------------------------------------


def run(
    client: Client,
    server: Server,
    x: Any,
    *,
    progress: Callable[[RoundRecord], None] | None = None,
) -> tuple[np.ndarray, Transcript]:
    """Drive a client and a server through their bytes for one image.

    Args:
        client: the client.
        server: the server.
        x: the image, shaped like the model's input.
        progress: called with each round's record as the round ends.

    Returns:
        ``(output, transcript)``: the decrypted model output and the
        :class:`Transcript` of rounds, bytes and times.
    """
    bundle = client.public_bundle()
    records: list[RoundRecord] = []
    tick = time.perf_counter()
    message = client.encrypt(x)
    client_time = time.perf_counter() - tick
    up = len(message)
    tick = time.perf_counter()
    reply = server.start(message)
    for rnd in server.rounds:
        server_time = time.perf_counter() - tick
        rec = RoundRecord(rnd.index, rnd.ends, server_time, client_time, len(reply), up)
        records.append(rec)
        tick = time.perf_counter()
        if rnd.ends == "output":
            out = client.decrypt_output(reply)
            rec.client_seconds += time.perf_counter() - tick
            if progress is not None:
                progress(rec)
            break
        if progress is not None:
            progress(rec)
        message = client.respond(reply)
        client_time, up = time.perf_counter() - tick, len(message)
        tick = time.perf_counter()
        reply = server.step(message)
    else:
        raise ProgramError("the program ended without an output round")
    for rec, rnd in zip(records, server.rounds, strict=False):
        if hasattr(rnd, "ciphertexts"):  # rounds that count their own (coef)
            rec.ciphertexts = rnd.ciphertexts
            continue
        b = (
            server.program.boundaries[rnd.boundary]
            if rnd.boundary is not None
            else None
        )
        rec.ciphertexts = (
            b.before.count if b is not None else server.program.output.count
        )
    transcript = Transcript(records, server.masks, len(bundle), server.encodings)
    return out, transcript
