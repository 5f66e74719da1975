"""The ``coef`` transform: every convolution is one BFV ciphertext × plaintext product.

Images and kernels are polynomial coefficients (:mod:`hejax.coeflayout`), so
a convolution costs one product per pair of channel groups and tile, with no
rotation and no rotation key. The price is that the output sits in a layout
the next convolution cannot read: every convolution ends a round, in which
the client decrypts the valid coefficients, applies ReLU where the model has
one, and re-encodes the tensor for each layer that reads it.

A model is cut into *segments*: a convolution, then on the server its bias
(``add_const``) and residual shortcuts (``add`` of an earlier round's
tensor), then on the client an optional ReLU. Each segment is a round. A
residual tensor is sent by the client a second time, laid out like the
output it is added to.

Exact fixed point
-----------------
Inputs get ``frac_bits`` (f) fractional bits, weights ``weight_bits`` (g),
biases the bits of the value they are added to; every product and sum is
exact in Z_T, and the compiler picks ``T`` from the weight norms and the
input bound (``input_bound``) so that no value wraps: one prime below 2^32,
or several recombined by CRT on the client when one is not enough. Each
round uses only the first few moduli its own values need (values grow with
depth, so early rounds of a deep net need fewer), and every ciphertext of
a round exists once per modulus it uses.

* ``masks="off"``: the client sees every intermediate feature map in the
  clear; it rescales each one by 2^g exactly (round half up) before the
  next layer, so the scale stays at f and one modulus usually suffices.
* ``masks="channel"``: the server multiplies output channel ``o`` by a
  random positive integer ``d_o < 2^mask_bits`` (folded into the kernel
  and bias plaintexts, no extra operation) and divides it out of the next
  layer's kernels with ``d_o^-1 mod t``. ``ReLU(d·y) = d·ReLU(y)`` holds for
  integers, but rescaling does not commute with the mask
  (``rescale(d·y) ≠ d·rescale(y)``), so in this mode the client never
  rescales: the scale grows by g bits per layer and T grows with it (CRT).
  Proof of exactness: every value the server computes is an integer
  combination mod T; the unmasked true value ``v`` satisfies ``|d·v| <
  T/2`` by the compile-time bound, so the centred residue the client reads
  is ``d·v`` itself; ``d^-1·(d·v) ≡ v (mod T)``, and the next layer's true
  value is again bounded, so by induction every decoded value equals the
  integer reference, which rescales only the final output (a division by a
  power of two, exact in float64 below 2^53).

Proven or calibrated bounds
---------------------------
By default every bound is proven by interval arithmetic from ``input_bound``
alone. Across a deep net such bounds grow by the kernels' l1 norms at every
layer (4 bits per layer for RED-CNN-lite), far beyond what any real image
reaches, and each 32 bits of growth costs one more modulus, so one more copy
of every ciphertext. With ``calibration=`` (one or more images the model
owner holds) the compiler caps each feature map the client sends at its peak
on those images times ``2^headroom_bits`` (default 2, with masks ``channel``
also times the largest mask) and sizes T for the capped values. The cap is a
promise the client checks: before it encrypts a feature map it compares the
map's largest magnitude with the cap and raises
:class:`~hejax.errors.InvalidInputError` if it is exceeded, so the next layer
can never wrap; the reference does the same. Under channel masks the client
sees ``d·y`` with ``1 ≤ d < 2^mask_bits``: it checks ``|d·y|`` against
``(2^mask_bits − 1)`` times the cap, which bounds ``|y|`` by that much too,
so T grows by ``mask_bits`` bits over the masks-off case (calibration then
helps only where proven bounds had grown by more than that). Every input
whose feature maps stay within the caps passes; under channel masks one
beyond them may pass too, depending on the masks, and is still exact. The
reference refuses exactly the inputs beyond the caps. A calibrated program
computes exactly, or refuses; it never returns a wrapped value.

Residual shortcuts need the shortcut tensor and the output it is added to
under the same mask, because one ciphertext holds several channels and a
product can only scale all of them alike: masks are drawn per class of
tensors joined by shortcuts, and the class of the model's input (which the
client owns) and of its output is unmasked.

Channel permutations (``CoefServer(..., permute=True)``, in either mask
mode) are folded into the plaintexts too, with no ciphertext operation: per
session the server draws a random order of the channels for each class of
tensors joined by shortcuts (the input's and the output's classes keep
theirs). Channel ``c`` of a tensor in order ``p`` sits at position
``p[c]`` of what the client holds. A segment that reads a tensor in order
``p_in`` and writes one in order ``p_out`` uses the kernel
``W'[..., p_in[c], p_out[o]] = W[..., c, o]`` (the mask factors moved
alike) and the bias ``b'[p_out[o]] = b[o]``. The client rescales, rectifies
and re-encodes the channels in the order they come (the rescale and ReLU
act on each value alone, so they commute with the reordering), and a
shortcut is already in the order of the sum it joins, since both are in
one class. The output is in the model's order and bit for bit the same.

What the client sees: with masks off, every feature map after every
convolution. With channel masks, every feature map up to one unknown
positive factor per channel (so the sign pattern, the zeros and all ratios
within a channel; a ReLU network is invariant to such scaling, so this
hides less than per-element masks, which coefficient encoding cannot undo),
and the same factor on a shortcut and the sum it feeds. Every other
coefficient of a returned ciphertext (partial sums of other channel pairs,
tile garbage) is replaced by a uniformly random value mod T. With
permutations the client sees the same set of feature maps, but in a random
order per session and class: that hides which channel is which, not the
maps themselves, and a client that sends related images can still line up
the maps of two sessions by their content.

Not handled: dense layers, grouped convolutions, ``mul_const``/``sub``
nodes, a ReLU applied to the input or followed by a server-side operation
without a convolution in between.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from hejax import fixedpoint as fx
from hejax.backend import Backend
from hejax.coeflayout import CoefLayout, ConvPack, pack_conv
from hejax.errors import InternalError, InvalidInputError, UnsupportedModelError
from hejax.ir import Graph, Node
from hejax.ring import MAX_PLAIN_MODULUS
from hejax.transforms import register_program

__all__ = ["CoefProgram", "Segment", "check_limit", "compile_coef"]

MASK_MODES = ("channel", "off")
DEFAULTS = {
    "frac_bits": 8,
    "weight_bits": 8,
    "mask_bits": 8,
    "input_bound": 1.0,
    "calibration": None,
    "headroom_bits": 2,
}
#: At most this many plaintext moduli (each multiplies every ciphertext).
MAX_MODULI = 6


@dataclasses.dataclass(frozen=True, eq=False)
class Segment:
    """One round: a convolution with its server-side bias and shortcuts.

    Attributes:
        index: round number.
        conv: the convolution node.
        source: name of the tensor the convolution reads.
        residuals: names of the shortcut tensors added, with the left shift
            that aligns each one's scale.
        relu: whether the client applies ReLU.
        output: name of the tensor the segment produces.
        final: whether it is the model's output.
        pack: the coefficient packing of the convolution.
        weights: integer kernel (g fractional bits).
        bias: integer bias, at the output's scale.
        scale: fractional bits of the convolution's output.
        tensor_scale: fractional bits of the tensor after the client's step.
        bound: largest magnitude of the output before masking (interval
            arithmetic per channel).
        conv_bias: the float bias (per output channel).
        sum_bound: largest magnitude of any partial sum of the convolution
            (l1 norms), which decides the reference's integer width.
        moduli: how many of the program's plaintext moduli this round uses
            (the first ones): their product exceeds twice its largest
            value, masks included, so early rounds of a deep net need fewer.
    """

    index: int
    conv: Node
    source: str
    residuals: tuple[tuple[str, int], ...]
    relu: bool
    output: str
    final: bool
    pack: ConvPack
    weights: np.ndarray
    bias: np.ndarray
    scale: int
    tensor_scale: int
    bound: int
    conv_bias: np.ndarray
    sum_bound: int
    moduli: int = 1


@dataclasses.dataclass(frozen=True, eq=False)
class CoefProgram:
    """A model compiled by the ``coef`` transform.

    Attributes:
        graph: the IR it was compiled from.
        segments: the rounds, in order.
        backends: one backend per plaintext modulus (same ring).
        moduli: the plaintext moduli, pairwise coprime.
        masks: ``"channel"`` or ``"off"``.
        frac_bits: fractional bits of the input.
        weight_bits: fractional bits of the weights.
        mask_bits: channel masks are drawn from ``[1, 2^mask_bits)``.
        input_bound: largest input magnitude the bounds allow.
        consumers: tensor name -> ``(segment, "input" | "residual")`` layouts
            the client encodes it into.
        mask_class: tensor name -> mask class (None: never masked).
        perm_class: tensor name -> permutation class, whatever the mask mode
            (None: never permuted, the classes of the input and the output).
        error_bound: proven max absolute difference from the float model.
        limits: tensor name -> largest magnitude the client may see of it
            (masked, under channel masks) before it refuses (calibrated
            bounds); tensors not named are bounded by proof.
        headroom_bits: calibrated limits are the calibration peak times
            2^headroom_bits (None: every bound is proven).
    """

    graph: Graph
    segments: tuple[Segment, ...]
    backends: tuple[Backend, ...]
    moduli: tuple[int, ...]
    masks: str
    frac_bits: int
    weight_bits: int
    mask_bits: int
    input_bound: float
    consumers: Mapping[str, tuple[tuple[int, str], ...]]
    mask_class: Mapping[str, int | None]
    perm_class: Mapping[str, int | None]
    error_bound: float
    limits: Mapping[str, int] = dataclasses.field(default_factory=dict)
    headroom_bits: int | None = None
    transform: str = "coef"

    @property
    def backend(self) -> str:
        """Name of the backend."""
        return self.backends[0].name

    @property
    def options(self) -> dict[str, Any]:
        """Compile options (the first backend under ``"backend"``)."""
        return {"backend": self.backends[0], "masks": self.masks}

    @functools.cached_property
    def digest(self) -> str:
        """A short hash of the program's structure, weights and moduli."""
        h = hashlib.sha256(
            f"coef:{self.moduli}:{self.masks}:{sorted(self.limits.items())}".encode()
        )
        for be in self.backends:
            h.update(be.fingerprint.encode())
        for s in self.segments:
            h.update(
                repr((s.conv.name, s.source, s.residuals, s.relu, s.moduli)).encode()
            )
            h.update(s.weights.tobytes() + repr(s.bias.tolist()).encode())
        return h.hexdigest()[:16]

    def layout(self, seg: int, kind: str) -> CoefLayout:
        """Layout of a segment's input (``"input"``) or output / shortcut."""
        pack = self.segments[seg].pack
        return pack.input if kind == "input" else pack.output

    @property
    def true_limits(self) -> dict[str, int]:
        """:attr:`limits` of the unmasked values: the calibrated headroom region."""
        spread = (1 << self.mask_bits) - 1 if self.masks == "channel" else 1
        return {name: cap // spread for name, cap in self.limits.items()}

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Model output shape with the batch axis."""
        return (1, *self.graph.by_name[self.graph.output].shape)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """The client's integer input (f fractional bits), bound-checked."""
        if np.max(np.abs(x)) > self.input_bound:
            raise InvalidInputError(
                f"input magnitude {np.max(np.abs(x)):g} exceeds the bound "
                f"{self.input_bound:g} the program was compiled for; compile with "
                "a larger input_bound"
            )
        return fx.quantize(x, self.frac_bits)

    def decode_output(self, y: np.ndarray) -> np.ndarray:
        """Float output from the final integer tensor."""
        scale = self.segments[-1].scale
        return (y.astype(np.float64) / 2.0**scale).reshape(self.output_shape)

    def reference(self, x: Any) -> np.ndarray:
        """The integer output of the same fixed-point computation, in NumPy.

        It convolves directly (no polynomials), so it checks the layouts, the
        masks and the backends at once.
        """
        from hejax.program import check_input

        xin = check_input(self.graph.input.shape, x)
        env = {self.graph.input.name: self.quantize_input(xin)}
        limits = self.true_limits
        for s in self.segments:
            env[s.output] = _step(s, env, self.masks == "off")
            check_limit(s.output, env[s.output], limits, self.headroom_bits)
        return env[self.segments[-1].output]

    def error_bound_for(self, x: Any) -> float:
        """A proven bound on ``|output − float model|`` for this input.

        Per pixel, ``y_q − y = W_q·(x_q − x) + (W_q − W)·x`` gives
        ``|e_out| ≤ |W_q| ⊛ |e_in| + |W_q − W| ⊛ |x| + |b_q − b|`` plus the
        shortcuts' errors and, where the client rescales, 2^-(f+1); ReLU is
        1-Lipschitz. It uses the float activations of `x`, so it is much
        tighter than the input-independent :attr:`error_bound`.
        """
        from hejax.program import check_input

        xin = check_input(self.graph.input.shape, x)
        name = self.graph.input.name
        val = {name: xin}
        err = {name: np.abs(self.quantize_input(xin) / 2.0**self.frac_bits - xin)}
        for s in self.segments:
            wq = s.weights / 2.0**self.weight_bits
            bias_f = s.conv_bias
            y = _conv(s.conv, val[s.source], s.pack.kernel) + bias_f
            e = _conv(s.conv, err[s.source], np.abs(wq))
            e = e + _conv(s.conv, np.abs(val[s.source]), np.abs(wq - s.pack.kernel))
            e = e + np.abs(s.bias.astype(np.float64) / 2.0**s.scale - bias_f)
            for r, _ in s.residuals:
                y, e = y + val[r], e + err[r]
            if self.masks == "off" and not s.final:
                e = e + 2.0 ** -(s.tensor_scale + 1)
            val[s.output] = np.maximum(y, 0) if s.relu else y
            err[s.output] = e
        return float(np.max(err[self.segments[-1].output]))

    def op_counts(self) -> dict[str, int]:
        """Server primitives of one run, all moduli included."""
        counts = {"mul_plain": 0, "add": 0, "add_plain": 0, "mul_scalar": 0}
        for s in self.segments:
            p, k = s.pack, s.moduli
            counts["mul_plain"] += k * p.products
            counts["add"] += k * (p.products - p.output.count + len(s.residuals))
            counts["add_plain"] += k * p.output.count * 2
            counts["mul_scalar"] += k * p.output.count * len(s.residuals)
        return counts

    def ciphertexts(self) -> dict[str, int]:
        """Ciphertexts sent each way in one run."""
        up = sum(
            self.segments[seg].moduli * self.layout(seg, kind).count
            for uses in self.consumers.values()
            for seg, kind in uses
        )
        down = sum(s.moduli * s.pack.output.count for s in self.segments)
        return {"to_server": up, "to_client": down}

    def summary(self) -> str:
        """A readable table of the rounds."""
        bits = sum(math.log2(t) for t in self.moduli)
        ring = self.backends[0].capabilities.ring_dim
        lines = [
            f"coef program for {self.backend} (N={ring},"
            f" {len(self.moduli)} modulus/moduli, {bits:.0f} plaintext bits, masks "
            f"{self.masks}, f={self.frac_bits}, g={self.weight_bits}, bounds "
            + (
                "proven"
                if self.headroom_bits is None
                else f"calibrated +{self.headroom_bits} bits"
            )
            + "): "
            f"{len(self.segments)} rounds, error bound {self.error_bound:.2e}",
            f"{'round':>5} {'conv':>14} {'tiles':>5} {'in cts':>6} {'out cts':>7} "
            f"{'products':>8} {'relu':>4} {'bits':>5} {'moduli':>6}",
        ]
        for s in self.segments:
            p = s.pack
            lines.append(
                f"{s.index:>5} {s.conv.name[:14]:>14} {p.input.tiles:>5} "
                f"{p.input.count:>6} {p.output.count:>7} {p.products:>8} "
                f"{'yes' if s.relu else 'no':>4} {s.bound.bit_length() + 1:>5} "
                f"{s.moduli:>6}"
            )
        return "\n".join(lines)


def check_limit(
    name: str, tensor: np.ndarray, limits: Mapping[str, int], headroom: int | None
) -> None:
    """Refuse a tensor above its calibrated limit, before it can wrap mod T.

    Raises:
        InvalidInputError: naming the tensor, its peak and the limit.
    """
    limit = limits.get(name)
    if limit is None:
        return
    peak = int(np.max(np.abs(tensor))) if np.size(tensor) else 0
    if peak > limit:
        raise InvalidInputError(
            f"feature map {name!r} reaches {peak} (integer), above the limit "
            f"{limit} calibrated with {headroom} bits of headroom, so the next "
            "layer could wrap around the plaintext modulus. The input is unlike "
            "the calibration images: compile with more headroom_bits, other "
            "calibration images, or without calibration (proven bounds)"
        )


def _shift(x: np.ndarray, bits: int) -> np.ndarray:
    return x * (1 << bits) if bits else x


def _int_conv(s: Segment, x: np.ndarray, big: bool) -> np.ndarray:
    if big:
        return _conv(s.conv, x.astype(object), s.weights.astype(object))
    if s.sum_bound < 2**52:  # every partial sum is an exact float64 integer
        y = _conv(s.conv, x.astype(np.float64), s.weights.astype(np.float64))
        return y.astype(np.int64)
    return _conv(s.conv, x.astype(np.int64), s.weights)


def _conv(conv: Node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Stride, padding and dilations of node `conv` with kernel `w` (any dtype)."""
    a = conv.attrs
    (ly, lx), (sy, sx) = a["lhs_dilation"], a["stride"]
    (pt, pb), (pl, pr) = a["padding"]
    h, wd, c = x.shape
    # Dilate and pad by hand: np.pad fills object arrays with NumPy int64 zeros.
    hd, wdd = (h - 1) * ly + 1, (wd - 1) * lx + 1
    xp = np.zeros(
        (hd + max(pt, 0) + max(pb, 0), wdd + max(pl, 0) + max(pr, 0), c), dtype=x.dtype
    )
    xp[max(pt, 0) : max(pt, 0) + hd : ly, max(pl, 0) : max(pl, 0) + wdd : lx] = x
    xp = xp[
        max(-pt, 0) : xp.shape[0] - max(-pb, 0), max(-pl, 0) : xp.shape[1] - max(-pr, 0)
    ]
    kh, kw, _, co = w.shape
    oh, ow = conv.shape[:2]
    out = np.zeros((oh, ow, co), dtype=x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[
                ky : ky + (oh - 1) * sy + 1 : sy, kx : kx + (ow - 1) * sx + 1 : sx
            ]
            out = out + patch @ w[ky, kx]
    return out


# -- segmentation -----------------------------------------------------------------


@dataclasses.dataclass
class _Open:
    conv: Node
    head: str
    bias: np.ndarray | None = None
    residuals: list[str] = dataclasses.field(default_factory=list)
    relu: bool = False


def _segments(graph: Graph) -> list[_Open]:
    """Cut the graph into convolution segments (no numbers yet)."""
    closed = {graph.input.name}
    opened: dict[str, _Open] = {}  # head name -> segment
    out: list[_Open] = []

    def close(name: str) -> None:
        if name not in closed:
            if name not in opened:
                raise UnsupportedModelError(f"coef: {name!r} is not a round's tensor")
            closed.add(name)

    for node in graph.nodes[1:]:
        if node.op in ("conv2d", "conv_transpose2d"):
            close(node.inputs[0])
            seg = _Open(node, node.name)
            opened[node.name] = seg
            out.append(seg)
            continue
        heads = [i for i in node.inputs if i in opened and i not in closed]
        if len(heads) != 1 or node.op not in ("add_const", "add", "relu"):
            raise UnsupportedModelError(
                f"coef: {node.name} ({node.op}) must follow a convolution on "
                "its own round: the transform lowers conv, bias, residual add "
                "and ReLU"
            )
        seg = opened.pop(heads[0])
        if seg.relu:
            raise UnsupportedModelError(
                f"coef: {node.name} ({node.op}) follows a ReLU without a "
                "convolution in between; the ReLU runs on the client"
            )
        if node.op == "add_const":
            seg.bias = _bias(node, seg.bias)
        elif node.op == "add":
            other = next(i for i in node.inputs if i != heads[0])
            close(other)
            seg.residuals.append(other)
        else:
            seg.relu = True
        seg.head = node.name
        opened[node.name] = seg
    close(graph.output)
    if not out or out[-1].head != graph.output:
        raise UnsupportedModelError("coef: the model must end with a convolution round")
    return out


def _bias(node: Node, prev: np.ndarray | None) -> np.ndarray:
    c = node.shape[-1]
    value = np.asarray(node.attrs["value"], dtype=np.float64)
    try:
        per = np.broadcast_to(value, (1, 1, c)).reshape(c)
        full = np.broadcast_to(value, node.shape)
    except ValueError as exc:
        raise UnsupportedModelError(f"coef: {node.name} bias shape") from exc
    if not np.array_equal(full, np.broadcast_to(per, node.shape)):
        raise UnsupportedModelError(
            f"coef: {node.name} adds a constant that varies across pixels; only "
            "per-channel biases are lowered"
        )
    return per if prev is None else prev + per


# -- compilation ---------------------------------------------------------------


def _options(options: Mapping[str, Any]) -> dict[str, Any]:
    known = {*DEFAULTS, "masks"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidInputError(
            f"unknown coef option(s) {unknown}; options: {sorted(known)}"
        )
    if options.get("masks") not in MASK_MODES:
        raise InvalidInputError(
            f"the coef transform needs masks= chosen explicitly from {MASK_MODES} "
            f"(got {options.get('masks')!r}): 'channel' hides each feature map up "
            "to a positive factor per channel, 'off' shows it in the clear"
        )
    opts = {**DEFAULTS, **options}
    for key in ("frac_bits", "weight_bits", "mask_bits", "headroom_bits"):
        if not isinstance(opts[key], int) or not 0 <= opts[key] <= 24:
            raise InvalidInputError(f"`{key}` must be an int in [0, 24]")
    if not opts["input_bound"] > 0:
        raise InvalidInputError("`input_bound` must be positive")
    return opts


def _calibration(images: Any, shape: tuple[int, ...], bound: float) -> np.ndarray:
    """Calibration images as a float64 ``(B, H, W, C)`` batch, checked."""
    x = np.asarray(images, dtype=np.float64)
    if x.shape == shape:
        x = x[None]
    elif x.ndim == len(shape) + 1 and x.shape[0] == 1 and x.shape[1:] == shape:
        pass
    elif x.ndim != len(shape) + 1 or x.shape[1:] != shape:
        raise InvalidInputError(
            f"calibration images must have shape {shape} or (B, *{shape}), got "
            f"{x.shape}"
        )
    if x.shape[0] == 0 or not np.all(np.isfinite(x)):
        raise InvalidInputError("calibration images must be finite and not empty")
    if np.max(np.abs(x)) > bound:
        raise InvalidInputError(
            f"calibration images reach {np.max(np.abs(x)):g}, above input_bound "
            f"{bound:g}"
        )
    return x


def _moduli(need: int) -> tuple[int, ...]:
    """Pairwise coprime moduli with product > 2·need + 1 (primes)."""
    if 2 * need + 1 < MAX_PLAIN_MODULUS // 2:
        return (fx.smallest_prime_above(max(2 * need + 1, 2**16)),)
    bits = (2 * need + 1).bit_length()
    count = math.ceil(bits / 31.9)
    while True:
        primes = fx.primes_below(MAX_PLAIN_MODULUS, count)
        if math.prod(primes) > 2 * need + 1:
            break
        count += 1
    if count > MAX_MODULI:
        raise UnsupportedModelError(
            f"coef: exact values need {bits} plaintext bits, more than "
            f"{MAX_MODULI} moduli of 32 bits; lower frac_bits/weight_bits/"
            "mask_bits, or compile with masks='off' (the client then rescales "
            "every layer and the scale stays bounded)"
        )
    return tuple(primes)


def _count(moduli: tuple[int, ...], need: int) -> int:
    """How many leading `moduli` hold every value of magnitude ≤ `need`."""
    for k in range(1, len(moduli) + 1):
        if math.prod(moduli[:k]) > 2 * need + 1:
            return k
    raise InternalError(f"coef: moduli {moduli} hold no value of magnitude {need}")


def compile_coef(graph: Graph, backend: Backend, options: Mapping[str, Any]):
    """Compile `graph` with the coef transform for a coefficient backend.

    Raises:
        InvalidInputError: for a slot backend or bad options.
        UnsupportedModelError: for operations the transform cannot lower,
            or bounds no plaintext space of at most six 32-bit moduli holds.
    """
    if "coefficient" not in backend.capabilities.encodings:
        from hejax import backends as registry

        coef = [n for n in registry.available() if n.endswith("-bfv")]
        raise InvalidInputError(
            f"the coef transform needs a coefficient-encoding backend; "
            f"{backend.name!r} supports {backend.capabilities.encodings}. "
            f"Use one of {coef}"
        )
    opts = _options(options)
    f, g, m = opts["frac_bits"], opts["weight_bits"], opts["mask_bits"]
    masked = opts["masks"] == "channel"
    ring = backend.capabilities.ring_dim
    opened = _segments(graph)
    scale = {graph.input.name: f}
    q_in = int(fx.quantize(opts["input_bound"], f))
    c_in = graph.input.shape[-1]
    bound = {graph.input.name: q_in}
    box = {graph.input.name: _box([-q_in] * c_in, [q_in] * c_in)}
    err = {graph.input.name: 2.0 ** -(f + 1)}
    amp = {graph.input.name: float(opts["input_bound"])}
    cal = opts["calibration"]
    if cal is not None:
        cal = _calibration(cal, graph.input.shape, float(opts["input_bound"]))
    ints = {} if cal is None else {graph.input.name: list(fx.quantize(cal, f))}
    limits: dict[str, int] = {}
    spread = (1 << m) - 1 if masked else 1  # the largest channel mask
    need, segments = 0, []
    for i, seg in enumerate(opened):
        conv, final = seg.conv, i == len(opened) - 1
        src = conv.inputs[0]
        pack = pack_conv(
            conv.attrs, graph.by_name[src].shape, conv.shape, ring, conv.name
        )
        weights = fx.quantize(pack.kernel, g)
        s_out = scale[src] + g
        bias_f = np.zeros(conv.shape[-1]) if seg.bias is None else seg.bias
        bias = fx.quantize(bias_f, s_out)
        residuals = []
        for r in seg.residuals:
            if scale[r] > s_out:
                raise UnsupportedModelError(f"coef: shortcut {r} has a finer scale")
            residuals.append((r, s_out - scale[r]))
        l1 = np.abs(weights).reshape(-1, conv.shape[-1]).astype(object).sum(axis=0)
        sums = max(
            int(l1[o]) * bound[src] + abs(int(bias[o])) for o in range(l1.size)
        ) + sum(bound[r] << sh for r, sh in residuals)
        lo, hi = _conv_box(weights, bias, box[src])
        for r, sh in residuals:
            lo, hi = lo + box[r][0] * (1 << sh), hi + box[r][1] * (1 << sh)
        b_y = int(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
        need = max(need, b_y * ((1 << m) - 1) if masked and not final else b_y)
        rescaled = not masked and not final
        if rescaled:
            lo, hi = fx.rescale(lo, g), fx.rescale(hi, g)
        if seg.relu:
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
        scale[seg.head] = s_out - g if rescaled else s_out
        bound[seg.head] = fx.rescale(sums, g) if rescaled else sums
        err[seg.head], amp[seg.head] = _error(
            pack.kernel, weights, g, bias_f, bias, s_out, err, amp, src, seg, rescaled
        )
        segment = Segment(
            i, conv, src, tuple(residuals), seg.relu, seg.head, final, pack,
            weights, bias, s_out, scale[seg.head], b_y, bias_f, sums,
        )  # fmt: skip
        segments.append(segment)
        if cal is not None and not final:
            # Peaks of the exact integers the client will see (unmasked).
            ints[seg.head] = [
                _step(segment, env, not masked) for env in _envs(ints, len(cal))
            ]
            peak = max(int(np.max(np.abs(y))) for y in ints[seg.head])
            proven = int(max(np.max(np.abs(lo)), np.max(np.abs(hi))))
            # The client checks what it sees, d·y under masks (1 <= d <= M),
            # which bounds the true |y| only by M times the cap.
            cap = max(peak << opts["headroom_bits"], 1)
            limits[seg.head] = min(cap, proven) * spread
            lo = np.maximum(lo, -limits[seg.head])
            hi = np.minimum(hi, limits[seg.head])
            bound[seg.head] = min(bound[seg.head], limits[seg.head])
        box[seg.head] = _box(lo, hi)
    moduli = _moduli(need)
    segments = [
        dataclasses.replace(
            s, moduli=_count(moduli, s.bound * (1 if s.final else spread))
        )
        for s in segments
    ]
    backends = tuple(_with_modulus(backend, t) for t in moduli)
    consumers = _consumers(graph, segments)
    classes = _shortcut_classes(graph, segments)
    return CoefProgram(
        graph,
        tuple(segments),
        backends,
        moduli,
        opts["masks"],
        f,
        g,
        m,
        float(opts["input_bound"]),
        consumers,
        {k: (c if masked else None) for k, c in classes.items()},
        classes,
        err[graph.output],
        limits,
        opts["headroom_bits"] if cal is not None else None,
    )


def _envs(ints: Mapping[str, list], count: int):
    """Per calibration image, the integer tensors computed so far."""
    return [{name: vals[k] for name, vals in ints.items()} for k in range(count)]


def _step(s: Segment, env: Mapping[str, np.ndarray], rescale: bool) -> np.ndarray:
    """The exact integer output of segment `s` (unmasked), as the client gets it."""
    big = s.sum_bound >= 2**62
    y = _int_conv(s, env[s.source], big) + (s.bias.astype(object) if big else s.bias)
    for name, shift in s.residuals:
        y = y + _shift(env[name].astype(object) if big else env[name], shift)
    if rescale and not s.final:
        y = fx.rescale(y, s.scale - s.tensor_scale)
    return np.maximum(y, 0) if s.relu else y


def _box(lo, hi):
    """Per-channel integer interval, widened to hold 0 (padding reads zeros)."""
    lo = np.minimum(np.array([int(v) for v in lo], dtype=object), 0)
    hi = np.maximum(np.array([int(v) for v in hi], dtype=object), 0)
    return lo, hi


def _conv_box(weights, bias, box):
    """Interval of each output channel of ``conv(weights) + bias`` over a box.

    Every output is ``Σ w·x`` with each ``x`` in its channel's interval (or a
    padding zero, which the interval holds), so the sum of the per-term
    extremes bounds it.
    """
    co = weights.shape[-1]
    w = weights.reshape(-1, weights.shape[2], co)
    pos = np.maximum(w, 0).sum(axis=0).astype(object)
    neg = np.minimum(w, 0).sum(axis=0).astype(object)
    lo, hi = box
    b = np.array([int(v) for v in bias], dtype=object)
    top = (pos * hi[:, None] + neg * lo[:, None]).sum(axis=0) + b
    bottom = (pos * lo[:, None] + neg * hi[:, None]).sum(axis=0) + b
    return bottom, top


def _error(kernel, weights, g, bias_f, bias, s_out, err, amp, src, seg, rescaled):
    """Worst-case error and magnitude bound of a segment's output vs floats.

    With e the input's error and a its magnitude bound: the quantized
    kernel amplifies e by its l1 norm per output channel; the weight
    rounding adds at most ``Σ|w − w_q|·a``; the bias rounding ``|b − b_q|``;
    shortcuts add their own errors; the client's rescale adds 2^-(f+1) when
    it happens. ReLU is 1-Lipschitz and does not raise either bound.
    """
    co = kernel.shape[-1]
    wq = weights / 2.0**g
    l1q = np.abs(wq).reshape(-1, co).sum(axis=0)
    l1 = np.abs(kernel).reshape(-1, co).sum(axis=0)
    dw = np.abs(kernel - wq).reshape(-1, co).sum(axis=0)
    db = np.abs(bias_f - bias / 2.0**s_out)
    e = l1q * err[src] + dw * amp[src] + db
    a = l1 * amp[src] + np.abs(bias_f)
    for r in seg.residuals:
        e, a = e + err[r], a + amp[r]
    e = float(np.max(e)) + (2.0 ** -(s_out - g + 1) if rescaled else 0.0)
    return e, float(np.max(a))


def _with_modulus(backend: Backend, t: int) -> Backend:
    params = {**backend.params, "plain_modulus": t}
    return type(backend)(backend.preset, insecure=backend.insecure, **params)


def _consumers(graph: Graph, segments: list[Segment]):
    uses: dict[str, list[tuple[int, str]]] = {graph.input.name: []}
    for s in segments:
        uses.setdefault(s.output, [])
    for s in segments:
        uses[s.source].append((s.index, "input"))
        for r, _ in s.residuals:
            uses[r].append((s.index, "residual"))
    return {k: tuple(v) for k, v in uses.items()}


def _shortcut_classes(graph: Graph, segments: list[Segment]):
    """Tensors joined by shortcuts share a class; input and output get none.

    A class shares one channel mask and one channel permutation: one
    ciphertext holds several channels, so a shortcut can only be added to an
    output that carries the same mask and the same channel order. The
    client owns the input's class and reads the output's in the clear.
    """
    parent = {s.output: s.output for s in segments}
    parent[graph.input.name] = graph.input.name

    def find(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for s in segments:
        for r, _ in s.residuals:
            parent[find(r)] = find(s.output)
    free = {find(graph.input.name), find(segments[-1].output)}
    roots = sorted({find(k) for k in parent} - free)
    index = {r: i for i, r in enumerate(roots)}
    return {k: index.get(find(k)) for k in parent}


register_program(
    "coef",
    compile_coef,
    doc="coefficient-encoded BFV: one ct x pt product per conv, a round per conv",
)
