"""How tensors sit in ciphertext slots: grids, tiles with halos, slot states.

A feature map ``(H, W, C)`` is laid out one channel per ciphertext. Pixels
live in *base coordinates* (the input image's pixel grid): pixel ``(r, c)``
of a tensor with :class:`Placement` ``offset=(oy, ox), stride=(sy, sx)`` sits
at base ``(oy + r·sy, ox + c·sx)``. A strided convolution therefore needs no
data movement; its output just has a coarser stride.

A :class:`Grid` maps base coordinates to slots: tile ``t`` holds the base
window starting at ``origins[t]``, ``rows`` rows of ``pitch`` slots each,
row-major. Images larger than one ciphertext are split into tiles that
overlap by a halo, so that every output pixel is computed inside one tile.

The lowering does not trust geometry alone: it tracks, for every tile and
slot, a *state* — the index ``r·W + c`` of the pixel the slot holds
correctly, :data:`ZERO` for a slot known to be zero, or :data:`GARBAGE` —
and derives each operation's output states from its input states. A
convolution output pixel is valid only when every tap reads either the right
input pixel or, for padding, a zero. Rotation wrap-around, halos, tile edges
and strides are all covered by that one rule.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

import numpy as np

from hejax.errors import InternalError, UnsupportedModelError

ZERO = -1
GARBAGE = -2


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a tensor's pixels are in base coordinates.

    Attributes:
        shape: ``(H, W, C)``.
        offset: base coordinate of pixel ``(0, 0)``.
        stride: base distance between neighbouring pixels.
    """

    shape: tuple[int, int, int]
    offset: tuple[int, int]
    stride: tuple[int, int]

    def extent(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Inclusive base ranges ``((y0, y1), (x0, x1))`` of the pixels."""
        (h, w, _), (oy, ox), (sy, sx) = self.shape, self.offset, self.stride
        return (oy, oy + (h - 1) * sy), (ox, ox + (w - 1) * sx)


@dataclasses.dataclass(frozen=True)
class Grid:
    """How base coordinates map to slots, per tile.

    Attributes:
        slots: slots per ciphertext.
        pitch: slots per grid row.
        rows: grid rows per tile (``rows * pitch <= slots``).
        origins: base coordinate of slot 0 of each tile.
    """

    slots: int
    pitch: int
    rows: int
    origins: tuple[tuple[int, int], ...]

    def __post_init__(self):
        if self.rows * self.pitch > self.slots or self.pitch < 1 or self.rows < 1:
            raise InternalError(f"grid {self.rows}x{self.pitch} exceeds {self.slots}")

    @property
    def tiles(self) -> int:
        """Number of tiles."""
        return len(self.origins)

    def slot_of(self, tile: int, by: np.ndarray, bx: np.ndarray) -> np.ndarray:
        """Slot of base positions in `tile`, or -1 where the tile lacks them."""
        y0, x0 = self.origins[tile]
        gy, gx = np.asarray(by) - y0, np.asarray(bx) - x0
        inside = (gy >= 0) & (gy < self.rows) & (gx >= 0) & (gx < self.pitch)
        return np.where(inside, gy * self.pitch + gx, -1)

    def shift(self, dy: int, dx: int) -> int:
        """Rotation step that brings base offset ``(dy, dx)`` to the anchor."""
        return (dy * self.pitch + dx) % self.slots


def pixel_slots(grid: Grid, tile: int, pl: Placement) -> np.ndarray:
    """Slot of every pixel of `pl` in `tile` (-1 where absent), shape (H, W)."""
    h, w, _ = pl.shape
    rr, cc = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    by = pl.offset[0] + rr * pl.stride[0]
    bx = pl.offset[1] + cc * pl.stride[1]
    return grid.slot_of(tile, by, bx)


def fresh_states(grid: Grid, pl: Placement) -> np.ndarray:
    """States of a tensor the client just encrypted: every held pixel valid."""
    h, w, _ = pl.shape
    states = np.full((grid.tiles, grid.slots), ZERO, dtype=np.int64)
    index = np.arange(h * w).reshape(h, w)
    for t in range(grid.tiles):
        where = pixel_slots(grid, t, pl)
        held = where >= 0
        states[t, where[held]] = index[held]
    return states


def cleaned(states: np.ndarray) -> np.ndarray:
    """States after multiplying by the 0/1 mask of valid slots."""
    return np.where(states >= 0, states, ZERO)


def valid_mask(states: np.ndarray) -> np.ndarray:
    """1.0 at slots that hold a valid pixel, else 0.0, shape (tiles, slots)."""
    return (states >= 0).astype(np.float64)


def gather_map(grid: Grid, pl: Placement, states: np.ndarray) -> np.ndarray:
    """For each pixel, ``(tile, slot)`` of one valid copy, shape (H·W, 2).

    Raises:
        InternalError: if some pixel is valid in no tile.
    """
    h, w, _ = pl.shape
    found = np.full((h * w, 2), -1, dtype=np.int64)
    for t in range(grid.tiles):
        slots = np.flatnonzero(states[t] >= 0)
        pix = states[t, slots]
        new = found[pix, 0] < 0
        found[pix[new]] = np.stack([np.full(new.sum(), t), slots[new]], axis=1)
    if np.any(found[:, 0] < 0):
        missing = int(np.sum(found[:, 0] < 0))
        raise InternalError(f"{missing} output pixels are valid in no tile")
    return found


# -- convolution geometry -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ConvGeometry:
    """Taps of a convolution in a grid, anchored at the kernel centre.

    Attributes:
        out: placement of the output.
        taps: ``(ky, kx)`` kernel indices, one per tap.
        deltas: base offsets ``(dy, dx)`` of each tap from the anchor.
    """

    out: Placement
    taps: tuple[tuple[int, int], ...]
    deltas: tuple[tuple[int, int], ...]
    stride: tuple[int, int]
    padding: tuple[tuple[int, int], tuple[int, int]]
    lhs_dilation: tuple[int, int]
    rhs_dilation: tuple[int, int]
    in_shape: tuple[int, int, int]

    def reach(self) -> int:
        """Largest base distance of a tap from the anchor."""
        return max(max(abs(dy), abs(dx)) for dy, dx in self.deltas)


def conv_geometry(pl: Placement, attrs, out_shape, name: str) -> ConvGeometry:
    """Placement of a convolution's output and the base offsets of its taps."""
    kh, kw = attrs["weight"].shape[:2]
    ly, lx = attrs["lhs_dilation"]
    (sy, sx), (dy, dx) = attrs["stride"], attrs["rhs_dilation"]
    (pt, _), (pl_, _) = attrs["padding"]
    if pl.stride[0] % ly or pl.stride[1] % lx:
        raise UnsupportedModelError(
            f"{name}: a transposed convolution with stride ({ly}, {lx}) needs an "
            f"input laid out with stride divisible by it (got {pl.stride}); "
            "upsampling a full-resolution map is not supported yet"
        )
    xy, xx = pl.stride[0] // ly, pl.stride[1] // lx  # base stride of dilated input
    ay, ax = (kh - 1) // 2 * dy, (kw - 1) // 2 * dx  # anchor tap, dilated units
    out = Placement(
        tuple(out_shape),
        (pl.offset[0] + (ay - pt) * xy, pl.offset[1] + (ax - pl_) * xx),
        (sy * xy, sx * xx),
    )
    taps = tuple((ky, kx) for ky in range(kh) for kx in range(kw))
    deltas = tuple(((ky * dy - ay) * xy, (kx * dx - ax) * xx) for ky, kx in taps)
    return ConvGeometry(
        out,
        taps,
        deltas,
        (sy, sx),
        attrs["padding"],
        (ly, lx),
        (dy, dx),
        pl.shape,
    )


def _expected_sources(geo: ConvGeometry, tap: tuple[int, int]) -> np.ndarray:
    """Pixel index (or ZERO for padding) each output pixel reads at `tap`."""
    ho, wo, _ = geo.out.shape
    h, w, _ = geo.in_shape
    (ly, lx), (sy, sx) = geo.lhs_dilation, geo.stride
    (pt, _), (pl, _) = geo.padding
    (dy, dx), (ky, kx) = geo.rhs_dilation, tap
    uy = np.arange(ho) * sy - pt + ky * dy
    ux = np.arange(wo) * sx - pl + kx * dx
    ok_y = (uy >= 0) & (uy < (h - 1) * ly + 1) & (uy % ly == 0)
    ok_x = (ux >= 0) & (ux < (w - 1) * lx + 1) & (ux % lx == 0)
    idx = (uy // ly)[:, None] * w + (ux // lx)[None, :]
    return np.where(ok_y[:, None] & ok_x[None, :], idx, ZERO)


def conv_states(grid: Grid, geo: ConvGeometry, states: np.ndarray) -> np.ndarray:
    """Output states of a convolution computed by rotations at the anchor."""
    out = np.full_like(states, GARBAGE)
    steps = [grid.shift(dy, dx) for dy, dx in geo.deltas]
    expected = [_expected_sources(geo, tap) for tap in geo.taps]
    ho, wo, _ = geo.out.shape
    index = np.arange(ho * wo).reshape(ho, wo)
    for t in range(grid.tiles):
        zero = np.ones(grid.slots, dtype=bool)
        for step in steps:
            zero &= np.roll(states[t], -step) == ZERO
        out[t, zero] = ZERO
        q = pixel_slots(grid, t, geo.out)
        ok = q >= 0
        for step, want in zip(steps, expected, strict=True):
            src = (np.where(ok, q, 0) + step) % grid.slots
            ok &= states[t, src] == want
        out[t, q[ok]] = index[ok]
    return out


def add_states(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """States of the sum of two aligned tensors."""
    out = np.full_like(a, GARBAGE)
    out[(a == ZERO) & (b == ZERO)] = ZERO
    same = (a >= 0) & (a == b)
    out[same] = a[same]
    return out


def count_valid(states: np.ndarray) -> int:
    """Number of distinct pixels valid in some tile."""
    return len(np.unique(states[states >= 0]))


# -- planning -------------------------------------------------------------


def plan_grid(
    slots: int,
    extent: tuple[tuple[int, int], tuple[int, int]],
    margin: int,
    halo: int,
    force_tiles: bool = False,
) -> Grid:
    """Choose a grid for tensors spanning `extent` (inclusive base ranges).

    One tile is used when the extent plus `margin` zero rows and columns fits
    one ciphertext (the margin is shrunk as far as needed to fit); otherwise
    the extent is cut into tiles whose windows add `halo` on each side.

    Raises:
        UnsupportedModelError: if even one pixel plus halos exceeds a ciphertext.
    """
    (y0, y1), (x0, x1) = extent
    h, w = y1 - y0 + 1, x1 - x0 + 1
    if not force_tiles:
        for m in range(margin, -1, -1):
            if (h + m) * (w + m) <= slots:
                return Grid(
                    slots, w + m, slots // (w + m), ((y0 - m // 2, x0 - m // 2),)
                )
    best = None
    for tw in range(1, w + 1):
        pitch = tw + 2 * halo
        rows = slots // pitch
        th = min(rows - 2 * halo, h)
        if th < 1:
            break
        count = math.ceil(h / th) * math.ceil(w / tw)
        if best is None or count < best[0]:
            best = (count, th, tw, pitch, rows)
    if best is None:
        raise UnsupportedModelError(
            f"a tile with halo {halo} does not fit {slots} slots; use parameters "
            "with more slots or a model with a smaller receptive field per round"
        )
    _, th, tw, pitch, rows = best
    origins = tuple(
        (ty - halo, tx - halo)
        for ty in range(y0, y1 + 1, th)
        for tx in range(x0, x1 + 1, tw)
    )
    return Grid(slots, pitch, rows, origins)


def union_extent(placements: Iterable[Placement]):
    """Smallest inclusive base ranges that hold every placement."""
    ys, xs = zip(*(p.extent() for p in placements), strict=True)
    return (min(y[0] for y in ys), max(y[1] for y in ys)), (
        min(x[0] for x in xs),
        max(x[1] for x in xs),
    )
