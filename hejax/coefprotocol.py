"""Client and server of a ``coef`` program: one round per convolution.

The messages are the ones of :mod:`hejax.protocol` (versioned header,
program digest, session, round, checksum), so a corrupted, replayed or
foreign message is refused the same way. Each message carries, for every
plaintext modulus, the ciphertexts of one or more coefficient layouts.

Server, per round: for every tile and output group, the sum over input
groups of ``ct × kernel``, plus the shortcut ciphertexts (times a power of
two that aligns their scale), plus one plaintext that holds the bias at the
valid coefficients and fresh uniform values mod t everywhere else; masks
and channel permutations are folded into the kernel and bias plaintexts.
Client, per round: decrypt, read the valid coefficients, recombine the
moduli (CRT), rescale (masks off), ReLU, check the tensor against its
calibrated limit (if the program was compiled with calibration images), and
encode it for each layer that reads it; it runs the same code whether or not
the channels are permuted.

With ``permute=True`` the client receives the feature maps of every tensor
not joined by a shortcut to the input or the output in a random channel
order, fresh per session: that hides which channel is which, not the maps
(nor, with ``masks="channel"``, each map up to its positive factor). See
:mod:`hejax.transforms.coef` for what each party sees.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from hejax import _wire
from hejax import fixedpoint as fx
from hejax._threads import check_workers, tmap
from hejax.backend import Backend
from hejax.coeflayout import CoefLayout
from hejax.errors import InvalidInputError, ProtocolError
from hejax.program import check_input
from hejax.protocol import (
    _client_reply,
    _expect_count,
    _load,
    _Message,
    _open_session,
    _pack,
    _unpack,
)
from hejax.transforms.coef import CoefProgram, check_limit

__all__ = ["CoefClient", "CoefRound", "CoefServer", "CoefView"]


@dataclasses.dataclass(frozen=True)
class CoefRound:
    """One round: a segment, what ends it, and the ciphertexts it returns."""

    index: int
    ends: str
    boundary: None
    ciphertexts: int


def rounds_of(program: CoefProgram) -> tuple[CoefRound, ...]:
    """The rounds of a coef program."""
    return tuple(
        CoefRound(
            s.index,
            "output" if s.final else ("relu" if s.relu else "linear"),
            None,
            s.moduli * s.pack.output.count,
        )
        for s in program.segments
    )


@dataclasses.dataclass(frozen=True, eq=False)
class CoefView:
    """What the client needs of a coef program: layouts and scales, no weights."""

    transform: ClassVar[str] = "coef"

    digest: str
    backends: tuple[Backend, ...]
    moduli: tuple[int, ...]
    masks: str
    frac_bits: int
    weight_bits: int
    input_bound: float
    input_shape: tuple[int, ...]
    input_name: str
    outputs: tuple[tuple[str, CoefLayout, bool, bool, int], ...]
    final_scale: int
    consumers: Mapping[str, tuple[tuple[CoefLayout, int], ...]]
    output_shape: tuple[int, ...]
    limits: Mapping[str, int] = dataclasses.field(default_factory=dict)
    headroom_bits: int | None = None

    @classmethod
    def of(cls, program: CoefProgram) -> CoefView:
        """The client's view of `program`."""
        consumers = {
            name: tuple(
                (program.layout(seg, kind), program.segments[seg].moduli)
                for seg, kind in uses
            )
            for name, uses in program.consumers.items()
        }
        return cls(
            program.digest,
            program.backends,
            program.moduli,
            program.masks,
            program.frac_bits,
            program.weight_bits,
            program.input_bound,
            program.graph.input.shape,
            program.graph.input.name,
            tuple(
                (s.output, s.pack.output, s.relu, s.final, s.moduli)
                for s in program.segments
            ),
            program.segments[-1].scale,
            consumers,
            program.output_shape,
            program.limits,
            program.headroom_bits,
        )


def _bundle(ctxs) -> bytes:
    return _wire.pack_sections({str(i): c.public_bundle() for i, c in enumerate(ctxs)})


class CoefClient:
    """The party that owns the image and the keys of a coef program.

    Args:
        program: the compiled program, or its weight-free :class:`CoefView`.
        workers: threads that encrypt and decrypt ciphertexts at once (they
            run in parallel where the backend's bindings release the GIL, as
            OpenFHE's do).
    """

    def __init__(self, program: CoefProgram | CoefView, *, workers: int = 1):
        self.view = program if isinstance(program, CoefView) else CoefView.of(program)
        self.workers = check_workers(workers)
        self._ctxs = [be.keygen() for be in self.view.backends]
        self._session: str | None = None
        self._round = 0

    def public_bundle(self) -> bytes:
        """The public keys, one per plaintext modulus."""
        return _bundle(self._ctxs)

    def encrypt(self, image: Any) -> bytes:
        """Start a session: the quantized image, in every layout that reads it."""
        view = self.view
        x = check_input(view.input_shape, image)
        if np.max(np.abs(x)) > view.input_bound:
            raise InvalidInputError(
                f"input magnitude {np.max(np.abs(x)):g} exceeds the bound "
                f"{view.input_bound:g} the program was compiled for"
            )
        self._session = os.urandom(16).hex()
        cts = self._encode(fx.quantize(x, view.frac_bits), view.input_name)
        msg = _Message(self._session, 0, "client", "input", cts)
        self._round = 1
        return _pack(view.digest, msg)

    def respond(self, message: bytes) -> bytes:
        """Answer a round: decrypt, rescale, ReLU, re-encode for the next layers."""
        header, cts = self._receive(message)
        seg = self._segment(header, final=False)
        name = self.view.outputs[seg][0]
        tensor = self._read(seg, cts)
        check_limit(name, tensor, self.view.limits, self.view.headroom_bits)
        out = self._encode(tensor, name)
        reply = _Message(self._session, self._round + 1, "client", "tensor", out)
        self._round += 2
        return _pack(self.view.digest, reply)

    def decrypt_output(self, message: bytes) -> np.ndarray:
        """Decrypt the last round into the model's output (float64)."""
        header, cts = self._receive(message)
        seg = self._segment(header, final=True)
        y = self._read(seg, cts)
        self._session = None
        return (y.astype(np.float64) / 2.0**self.view.final_scale).reshape(
            self.view.output_shape
        )

    def decrypt_integers(self, message: bytes) -> np.ndarray:
        """Like :meth:`decrypt_output`, but the exact integer tensor."""
        header, cts = self._receive(message)
        y = self._read(self._segment(header, final=True), cts)
        self._session = None
        return y

    # -- internals ----------------------------------------------------------

    def _encode(self, tensor: np.ndarray, name: str) -> list[bytes]:
        """Per layer that reads `tensor`: its layout under each modulus it uses."""
        out, residues = [], {}
        for layout, k in self.view.consumers[name]:
            for ctx, t in zip(self._ctxs[:k], self.view.moduli[:k], strict=True):
                if t not in residues:
                    residues[t] = fx.residues_of(tensor, t)
                out += tmap(
                    lambda poly, ctx=ctx: ctx.serialize(ctx.encrypt(poly)),
                    layout.encode(residues[t]),
                    self.workers,
                )
        return out

    def _read(self, seg: int, cts: list[bytes]) -> np.ndarray:
        _, layout, relu, final, k = self.view.outputs[seg]
        _expect_count(cts, layout.count * k, f"round {seg}")
        moduli = self.view.moduli[:k]
        parts = []
        for i, (ctx, t) in enumerate(zip(self._ctxs[:k], moduli, strict=True)):
            blobs = cts[i * layout.count : (i + 1) * layout.count]
            polys = np.stack(
                tmap(lambda b, ctx=ctx: ctx.decrypt(_load(ctx, b)), blobs,
                     self.workers)
            )  # fmt: skip
            parts.append(layout.decode(np.mod(polys, t)))
        y = fx.crt(parts, moduli)
        if self.view.masks == "off" and not final:
            y = fx.rescale(y, self.view.weight_bits)
        return np.maximum(y, 0) if relu else y

    def _segment(self, header, final: bool) -> int:
        seg = header.get("segment")
        if not isinstance(seg, int) or not 0 <= seg < len(self.view.outputs):
            raise ProtocolError(f"message names no valid round ({seg!r})")
        if self.view.outputs[seg][3] != final:
            want = "the output" if final else "a round to answer"
            raise ProtocolError(f"expected {want}, got round {seg}")
        return seg

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


class CoefServer:
    """The party that owns the model of a coef program; it holds no secret key.

    Args:
        program: the compiled coef program.
        public_bundle: the client's public bundle.
        masks: the program's mask mode, or None; coef masks are chosen at
            compile time (they change the fixed-point computation), so any
            other value is an error.
        permute: reorder the channels of every hidden tensor by a fresh
            random permutation per session and class of tensors joined by
            shortcuts (the input's and the output's classes stay in order).
            The client then sees the same feature maps in another order: it
            hides which channel is which, not the maps (nor, with channel
            masks, each map up to its factor). Off by default, also through
            :class:`hejax.Server`, which passes on only the arguments it is
            given.
        seed: seed masks, permutations and randomisers deterministically
            (tests only); each session then draws the same ones.
        workers: threads that compute output ciphertexts at once (parallel
            where the backend's bindings release the GIL, as OpenFHE's do).
        rerandomize: must be False: noise flooding of BFV results is not
            implemented, so a coef server's results carry noise that depends
            on its kernels (see the README's limitations).
    """

    def __init__(
        self,
        program: CoefProgram,
        public_bundle: bytes,
        *,
        masks: str | None = None,
        permute: bool = False,
        seed: int | None = None,
        rerandomize: bool = False,
        workers: int = 1,
    ):
        if rerandomize:
            raise InvalidInputError(
                "rerandomize=True (noise flooding) is implemented for slot "
                "programs only; a coef server cannot flood BFV results yet. Use "
                "rerandomize=False, or a slot transform where circuit privacy "
                "matters"
            )
        if masks is not None and masks != program.masks:
            raise InvalidInputError(
                f"this coef program was compiled with masks={program.masks!r}; "
                f"masks={masks!r} needs compiling with that mode (coef modes: "
                "'channel', 'off')"
            )
        self.program = program
        self.masks = program.masks
        self.permute = bool(permute)
        self.workers = check_workers(workers)
        self._seed = seed
        sections = _wire.unpack_sections(public_bundle)
        if len(sections) != len(program.backends):
            raise ProtocolError(
                f"public bundle holds {len(sections)} key sets, the program has "
                f"{len(program.backends)} plaintext moduli"
            )
        self._ctxs = [
            be.load_public(sections[str(i)]) for i, be in enumerate(program.backends)
        ]
        self.rounds = rounds_of(program)
        self._cache: dict[tuple, Any] = {}
        self._session: str | None = None
        self._round = 0
        self.encodings = 0

    def start(self, message: bytes) -> bytes:
        """Begin a session from the client's input message."""
        p = self.program
        session, cts = _open_session(p.digest, message)
        env = self._store({}, p.graph.input.name, cts)
        self._rng = np.random.default_rng(self._seed)
        self._masks = self._draw_masks()
        self._perms = self._draw_perms()
        self._session, self._env, self._seg, self._round = session, env, 0, 1
        self.encodings = 0
        return self._run()

    def step(self, message: bytes) -> bytes:
        """Continue with the client's re-encoded tensor of the last round."""
        header, cts = _client_reply(
            self.program.digest, message, self._session, self._round + 1
        )
        if header.get("kind") != "tensor":
            raise ProtocolError(f"expected a tensor, got {header.get('kind')!r}")
        name = self.program.segments[self._seg].output
        self._env = self._store(self._env, name, cts)
        self._seg += 1
        self._round += 2
        return self._run()

    # -- internals ----------------------------------------------------------

    def _store(self, env, name: str, cts: list[bytes]):
        """Load a tensor's ciphertexts: per reading layer, per modulus it uses."""
        p = self.program
        uses = [
            (seg, kind, p.layout(seg, kind).count, p.segments[seg].moduli)
            for seg, kind in p.consumers[name]
        ]
        _expect_count(cts, sum(n * k for _, _, n, k in uses), f"tensor {name}")
        env = dict(env)
        pos = 0
        for seg, kind, size, k in uses:
            for i, ctx in enumerate(self._ctxs[:k]):
                env[(name, seg, kind, i)] = tmap(
                    functools.partial(_load, ctx),
                    cts[pos : pos + size],
                    self.workers,
                )
                pos += size
        return env

    def _draw_masks(self) -> dict[int, np.ndarray]:
        p = self.program
        sizes = {}
        for name, cls in p.mask_class.items():
            if cls is not None:
                sizes[cls] = p.graph.by_name[name].shape[-1]
        high = 1 << p.mask_bits
        return {c: self._rng.integers(1, high, n) for c, n in sizes.items()}

    def _mask(self, name: str, t: int) -> np.ndarray:
        cls = self.program.mask_class.get(name)
        n = self.program.graph.by_name[name].shape[-1]
        if cls is None:
            return np.ones(n, dtype=np.int64)
        return self._masks[cls] % t

    def _draw_perms(self) -> dict[int, np.ndarray]:
        """Per permutation class, ``p`` with channel ``c`` sent at ``p[c]``."""
        if not self.permute:
            return {}
        p = self.program
        sizes = {}
        for name, cls in p.perm_class.items():
            if cls is not None:
                sizes[cls] = p.graph.by_name[name].shape[-1]
        return {c: self._rng.permutation(n) for c, n in sorted(sizes.items())}

    def _order(self, name: str) -> np.ndarray:
        """Where each channel of tensor `name` sits in what the client holds."""
        cls = self.program.perm_class.get(name)
        if cls in self._perms:
            return self._perms[cls]
        return np.arange(self.program.graph.by_name[name].shape[-1])

    def _kernels(self, i: int, s) -> dict[tuple[int, int], Any]:
        ctx, t = self._ctxs[i], self.program.moduli[i]
        key = (i, s.index)
        # Masks and permutations are fresh per session: only the plain
        # kernels can be kept from one session to the next.
        reuse = self.program.masks == "off" and not self.permute
        if reuse and key in self._cache:
            return self._cache[key]
        inv = np.array([pow(int(d), -1, t) for d in self._mask(s.source, t)])
        out_mask = self._mask(s.output, t).astype(np.uint64)
        mult = (inv[:, None].astype(np.uint64) * out_mask[None, :]) % np.uint64(t)
        p_in, p_out = self._order(s.source), self._order(s.output)
        weights = _reorder(s.weights, p_in, p_out)
        mult = _reorder(mult.astype(np.int64), p_in, p_out)
        pack = s.pack
        out = {
            (gi, go): ctx.encode(pack.kernel_poly(weights, gi, go, t, mult))
            for gi in range(pack.in_groups)
            for go in range(pack.out_groups)
        }
        self.encodings += len(out)
        if reuse:
            self._cache[key] = out
        return out

    def _offsets(self, i: int, s) -> np.ndarray:
        """Bias at the valid coefficients, uniform randomness everywhere else."""
        t, layout = self.program.moduli[i], s.pack.output
        mask = self._mask(s.output, t)
        bias = np.mod(s.bias, t).astype(np.uint64) * mask.astype(np.uint64)
        moved = np.empty(bias.size, dtype=np.int64)
        moved[self._order(s.output)] = (bias % np.uint64(t)).astype(np.int64)
        h, w, c = layout.shape
        polys = layout.encode(np.broadcast_to(moved, (h, w, c)))
        return np.where(layout.read_mask(), polys, self._noise(polys.shape, t))

    def _noise(self, shape: tuple[int, ...], t: int) -> np.ndarray:
        """Uniform residues mod `t` for the coefficients the client must not read.

        The client sees these values, so they come from the operating
        system's CSPRNG: outputs of NumPy's generator (PCG64) would let a
        client that collects enough of them recover its state, and with it
        the masks and permutations drawn from it. 64-bit words reduced mod
        ``t < 2^32`` are uniform within 2^-32. A seeded server (tests only)
        draws them from its seeded generator instead.
        """
        if self._seed is not None:
            return self._rng.integers(0, t, shape)
        words = np.frombuffer(os.urandom(8 * math.prod(shape)), dtype=np.uint64)
        return (words % np.uint64(t)).astype(np.int64).reshape(shape)

    def _run(self) -> bytes:
        s = self.program.segments[self._seg]
        pack = s.pack
        blobs = []
        k = s.moduli
        for i, (ctx, t) in enumerate(
            zip(self._ctxs[:k], self.program.moduli[:k], strict=True)
        ):
            kernels = self._kernels(i, s)
            offsets = self._offsets(i, s)
            ins = self._env.pop((s.source, s.index, "input", i))
            shortcuts = [
                (self._env.pop((r, s.index, "residual", i)), shift)
                for r, shift in s.residuals
            ]

            one = functools.partial(
                _output, ctx, t, pack, kernels, ins, shortcuts, offsets
            )
            blobs += tmap(one, range(pack.output.count), self.workers)
        msg = _Message(self._session, self._round, "server", "round", blobs)
        data = _pack(self.program.digest, msg, segment=s.index)
        if s.final:
            self._session = None
        return data


def _output(ctx, t, pack, kernels, ins, shortcuts, offsets, k: int) -> bytes:
    """Output ciphertext `k` of a round: products, shortcuts, bias and noise."""
    tile, go = divmod(k, pack.out_groups)
    acc = None
    for gi in range(pack.in_groups):
        prod = ctx.mul_plain(ins[tile * pack.in_groups + gi], kernels[gi, go])
        acc = prod if acc is None else ctx.add(acc, prod)
    for cts, shift in shortcuts:
        term = cts[k] if not shift else ctx.mul_scalar(cts[k], pow(2, shift, t))
        acc = ctx.add(acc, term)
    return ctx.serialize(ctx.add_plain(acc, ctx.encode(offsets[k])))


def _reorder(a: np.ndarray, p_in: np.ndarray, p_out: np.ndarray) -> np.ndarray:
    """``a`` with ``a'[..., p_in[c], p_out[o]] = a[..., c, o]`` (last two axes)."""
    out = np.empty_like(a)
    out[..., p_in[:, None], p_out[None, :]] = a
    return out
