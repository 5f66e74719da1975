"""How a convolution sits in polynomial coefficients so that one product computes it.

A feature map's input tile of ``Ih × P`` pixels (the output tile plus the
kernel's halo) is laid out row-major with row pitch ``P``: pixel ``(y, x)``
at coefficient ``y·P + x``. A block of ``S = Ih·P`` coefficients holds one
channel; a polynomial of ``N`` coefficients holds ``G`` input channels at
offsets ``j·S``. The kernel of input channel ``j`` and output channel
``o`` (of a group of ``Gout``) is reversed and placed at offset
``(o·G − j)·S``: tap ``(ky, kx)`` at ``(kh−1−ky)·P + (kw−1−kx)``, negated
and shifted by ``N`` where the offset is negative (``X^−m = −X^(N−m)``).

Why the output is clean. The product of input block ``j`` and kernel block
``(o', j')`` lands in block ``b = o'·G + j − j'`` at a within-block index
``r ∈ [0, S + (kh−1)·P + kw − 1)``. Output pixel ``(oy, ox)`` of channel
``o`` is read at block ``o·G``, index ``r_q = (oy+kh−1)·P + (ox+kw−1)``,
with ``r_q ≥ (kh−1)·P + kw − 1`` and ``r_q < S``. (1) A term of block
``o·G − 1`` reaches at most ``S + (kh−1)·P + kw − 2 < S + r_q``: it stops
before any valid index of the next block. (2) In block ``o·G`` itself,
``b = o·G`` forces ``o' = o`` and ``j = j'`` because ``|j − j'| < G``; and
``(y+kh−1−ky)·P + (x+kw−1−kx) = r_q`` with ``x + kw − 1 − kx < P + kw − 1``
forces ``y = oy + ky``, ``x = ox + kx`` (a carry into the next row would
need a column ``≤ kw − 2`` but valid columns start at ``kw − 1``). So only
the true taps of channel pairs ``(j, o)`` sum there. (3) With ``G·Gout·S ≤
N``, terms with a negative offset wrap to ``[N − (G−1)·S, N)``, above every
valid block, and terms past ``N`` wrap below ``(kh−1)·P + kw − 1``, under the
first valid index of block 0. Every other coefficient is a partial sum or
garbage, which the server randomises before the client sees it.

Large images are cut into output tiles that do not overlap; their input
tiles overlap by the halo. Strided convolutions compute the stride-1 output
and read every stride-th pixel; dilated kernels are zero-filled; transposed
convolutions (input dilation) and padding are laid out by the client, which
re-encodes every layer's input anyway.

Not handled: grouped convolutions (``groups > 1``) and dense layers.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from hejax.errors import UnsupportedModelError

__all__ = ["CoefLayout", "ConvPack", "pack_conv"]

# Relative client/server costs used to choose tiles and packing (one product
# is 1): encrypting and decrypting dominate once products are this cheap.
_COST = {"mul": 1.0, "encrypt": 12.0, "decrypt": 5.0}


@dataclasses.dataclass(frozen=True, eq=False)
class CoefLayout:
    """A ``(H, W, C)`` tensor in coefficient polynomials.

    Placement ``i`` puts pixel ``pix[i]`` (flat ``y·W + x``) of every channel
    ``c`` of tile ``tile[i]`` at coefficient ``coef[i] + (c % per_group)·
    block`` of ciphertext ``tile[i]·groups + c // per_group``.

    Attributes:
        shape: ``(H, W, C)``.
        ring_dim: coefficients per polynomial.
        tiles: number of spatial tiles.
        groups: ciphertexts per tile (channel groups).
        per_group: channels per ciphertext.
        block: coefficient distance between channels of one ciphertext.
        tile: ``(M,)`` tile of each placement.
        coef: ``(M,)`` coefficient of each placement within its block.
        pix: ``(M,)`` flat pixel index of each placement.
    """

    shape: tuple[int, int, int]
    ring_dim: int
    tiles: int
    groups: int
    per_group: int
    block: int
    tile: np.ndarray
    coef: np.ndarray
    pix: np.ndarray

    @property
    def count(self) -> int:
        """Number of ciphertexts."""
        return self.tiles * self.groups

    def _where(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        cts = self.tile * self.groups + c // self.per_group
        return cts, self.coef + (c % self.per_group) * self.block

    def encode(self, x: np.ndarray) -> np.ndarray:
        """``(count, N)`` int64 polynomials of an int64 tensor of this shape."""
        h, w, c = self.shape
        flat = np.asarray(x, dtype=np.int64).reshape(h * w, c)
        out = np.zeros((self.count, self.ring_dim), dtype=np.int64)
        for ch in range(c):
            cts, coefs = self._where(ch)
            out[cts, coefs] = flat[self.pix, ch]
        return out

    def decode(self, polys: np.ndarray) -> np.ndarray:
        """The ``(H, W, C)`` tensor read from ``(count, N)`` polynomials."""
        h, w, c = self.shape
        out = np.zeros((h * w, c), dtype=polys.dtype)
        for ch in range(c):
            cts, coefs = self._where(ch)
            out[self.pix, ch] = polys[cts, coefs]
        return out.reshape(h, w, c)

    def read_mask(self) -> np.ndarray:
        """``(count, N)`` True at the coefficients that carry tensor values."""
        mask = np.zeros((self.count, self.ring_dim), dtype=bool)
        for ch in range(self.shape[2]):
            cts, coefs = self._where(ch)
            mask[cts, coefs] = True
        return mask


@dataclasses.dataclass(frozen=True, eq=False)
class ConvPack:
    """A convolution packed for coefficient products.

    Attributes:
        input: layout of the (unpadded) input tensor, halos included.
        output: layout of the output tensor.
        kernel: ``(kh', kw', C_in, C_out)`` the kernel, rhs-dilated (float).
        in_groups: input ciphertexts per tile.
        out_groups: output ciphertexts per tile.
        taps: per ``(in_group, out_group)``, the arrays ``(coef, sign, ky,
            kx, c, o)`` that place each kernel entry in its plaintext.
        tile_shape: output tile ``(Th, Tw)`` and input tile ``(Ih, P)``.
    """

    input: CoefLayout
    output: CoefLayout
    kernel: np.ndarray
    in_groups: int
    out_groups: int
    taps: dict[tuple[int, int], tuple[np.ndarray, ...]]
    tile_shape: tuple[int, int, int, int]

    @property
    def products(self) -> int:
        """Ciphertext × plaintext products of one run."""
        return self.input.tiles * self.in_groups * self.out_groups

    def kernel_poly(
        self, weights: np.ndarray, gi: int, go: int, t: int, mult: np.ndarray
    ) -> np.ndarray:
        """Residues mod `t` of the plaintext for input group `gi`, output `go`.

        Args:
            weights: integer kernel ``(kh', kw', C_in, C_out)`` (int64).
            gi: input group.
            go: output group.
            t: plaintext modulus.
            mult: ``(C_in, C_out)`` residues each kernel entry is multiplied
                by (mask folding; ones without masks).
        """
        coef, sign, ky, kx, c, o = self.taps[(gi, go)]
        # Residues below 2^32: their products fit uint64, not int64.
        w = np.mod(weights[ky, kx, c, o], t).astype(np.uint64)
        vals = (w * mult[c, o].astype(np.uint64) % np.uint64(t)).astype(np.int64)
        out = np.zeros(self.input.ring_dim, dtype=np.int64)
        np.add.at(out, coef, np.where(sign < 0, (t - vals) % t, vals))
        return out % t


def dilate_kernel(w: np.ndarray, rhs: tuple[int, int]) -> np.ndarray:
    """The kernel with ``rhs - 1`` zeros between taps."""
    kh, kw, ci, co = w.shape
    dy, dx = rhs
    out = np.zeros(((kh - 1) * dy + 1, (kw - 1) * dx + 1, ci, co))
    out[::dy, ::dx] = w
    return out


def _choose(n, cin, cout, hf, wf, kh, kw):
    best = None
    for g in range(1, cin + 1):
        for gout in range(1, cout + 1):
            s_max = n // (g * gout)
            if s_max < kh * kw:
                break
            per_tile = (
                math.ceil(cin / g) * math.ceil(cout / gout) * _COST["mul"]
                + math.ceil(cin / g) * _COST["encrypt"]
                + math.ceil(cout / gout) * _COST["decrypt"]
            )
            for tw in range(1, wf + 1):
                pitch = tw + kw - 1
                th = min(s_max // pitch - kh + 1, hf)
                if th < 1:
                    break
                tiles = math.ceil(hf / th) * math.ceil(wf / tw)
                cost = tiles * per_tile
                if best is None or cost < best[0]:
                    best = (cost, g, gout, th, tw)
    if best is None:
        raise UnsupportedModelError(
            f"a {kh}x{kw} kernel does not fit a ring of {n} coefficients; use a "
            "backend preset with a larger ring"
        )
    return best[1:]


def pack_conv(attrs, in_shape, out_shape, ring_dim: int, name: str) -> ConvPack:
    """Plan tiles and channel packing of one convolution.

    Raises:
        UnsupportedModelError: for grouped convolutions, or a kernel too big
            for the ring.
    """
    if attrs["groups"] != 1:
        raise UnsupportedModelError(
            f"{name}: the coef transform lowers ungrouped convolutions only "
            f"(groups={attrs['groups']})"
        )
    kern = dilate_kernel(np.asarray(attrs["weight"]), attrs["rhs_dilation"])
    kh, kw, cin, cout = kern.shape
    h, w, _ = in_shape
    ly, lx = attrs["lhs_dilation"]
    (pt, pb), (pl, pr) = attrs["padding"]
    sy, sx = attrs["stride"]
    hp, wp = (h - 1) * ly + 1 + pt + pb, (w - 1) * lx + 1 + pl + pr
    hf, wf = hp - kh + 1, wp - kw + 1
    ho, wo, _ = out_shape
    g, gout, th, tw = _choose(ring_dim, cin, cout, hf, wf, kh, kw)
    ih, pitch = th + kh - 1, tw + kw - 1
    block = ih * pitch
    ny, nx = math.ceil(hf / th), math.ceil(wf / tw)
    tiles = ny * nx
    origins = [(a * th, b * tw) for a in range(ny) for b in range(nx)]

    # Input: padded coordinate of each input pixel, placed in every tile it reaches.
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    py, px = (yy * ly + pt).ravel(), (xx * lx + pl).ravel()
    inside = (py >= 0) & (py < hp) & (px >= 0) & (px < wp)
    pix_all = np.arange(h * w)
    t_in, c_in, p_in = [], [], []
    for t, (oy, ox) in enumerate(origins):
        ry, rx = py - oy, px - ox
        ok = inside & (ry >= 0) & (ry < ih) & (rx >= 0) & (rx < pitch)
        t_in.append(np.full(ok.sum(), t))
        c_in.append(ry[ok] * pitch + rx[ok])
        p_in.append(pix_all[ok])
    in_layout = CoefLayout(
        (h, w, cin),
        ring_dim,
        tiles,
        math.ceil(cin / g),
        g,
        block,
        *(np.concatenate(a).astype(np.int64) for a in (t_in, c_in, p_in)),
    )

    # Output: each output pixel read once, from the tile that holds it.
    oy, ox = np.meshgrid(np.arange(ho), np.arange(wo), indexing="ij")
    fy, fx = (oy * sy).ravel(), (ox * sx).ravel()
    tile_of = (fy // th) * nx + fx // tw
    ry, rx = fy % th, fx % tw
    out_layout = CoefLayout(
        (ho, wo, cout),
        ring_dim,
        tiles,
        math.ceil(cout / gout),
        gout,
        g * block,
        tile_of.astype(np.int64),
        ((ry + kh - 1) * pitch + rx + kw - 1).astype(np.int64),
        np.arange(ho * wo, dtype=np.int64),
    )
    taps = _taps(ring_dim, kh, kw, cin, cout, g, gout, block, pitch)
    return ConvPack(
        in_layout,
        out_layout,
        kern,
        in_layout.groups,
        out_layout.groups,
        taps,
        (th, tw, ih, pitch),
    )


def _taps(n, kh, kw, cin, cout, g, gout, block, pitch):
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    ky, kx = ky.ravel(), kx.ravel()
    inner = (kh - 1 - ky) * pitch + (kw - 1 - kx)
    taps = {}
    for gi in range(math.ceil(cin / g)):
        for go in range(math.ceil(cout / gout)):
            parts = []
            for j in range(min(g, cin - gi * g)):
                for o in range(min(gout, cout - go * gout)):
                    offset = (o * g - j) * block + inner
                    sign = np.where(offset < 0, -1, 1)
                    parts.append(
                        (
                            np.where(offset < 0, offset + n, offset),
                            sign,
                            ky,
                            kx,
                            np.full(ky.size, gi * g + j),
                            np.full(ky.size, go * gout + o),
                        )
                    )
            taps[(gi, go)] = tuple(
                np.concatenate(col) for col in zip(*parts, strict=True)
            )
    return taps
