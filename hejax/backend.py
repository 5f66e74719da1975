"""The backend protocol: what every HE library plugin provides to hejax.

A :class:`Backend` holds one scheme with one parameter set and says what it
can do through :class:`Capabilities`. :meth:`Backend.keygen` makes a
:class:`Context` that holds the client's secret key; its
:meth:`Context.public_bundle` serializes the public key and exactly the
rotation keys asked for, and :meth:`Backend.load_public` turns those bytes
into a server-side :class:`Context` that evaluates but cannot decrypt.

The public methods of :class:`Context` check their arguments (shapes, finite
values, owner key set, levels, rotation keys) and then call private hooks
(``_encode``, ``_rotate``, …) that a plugin implements on raw library
objects. Levels and scale degrees are tracked here, the same way for every
backend: a fresh ciphertext is at level 0 with degree 1; ``mul_plain`` and
``mul_scalar`` raise the degree to 2; ``rescale`` brings it back to 1 and
consumes one level. Rotation by ``k`` moves slot ``i + k`` to slot ``i``,
which is ``np.roll(x, -k)``.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from hejax import _wire
from hejax.errors import (
    BackendError,
    DepthExhaustedError,
    HejaxError,
    InvalidInputError,
    KeyMismatchError,
    LevelMismatchError,
    MissingRotationKeyError,
    SecretKeyError,
    SerializationError,
)

__all__ = ["Backend", "Capabilities", "Ciphertext", "Context", "Plaintext"]


@dataclasses.dataclass(frozen=True)
class Capabilities:
    """What a backend with its chosen parameters can do.

    Attributes:
        scheme: scheme name, e.g. ``"ckks"``.
        exact: whether arithmetic is exact (integers) or approximate.
        slots: number of values one ciphertext carries.
        rotations: whether slot rotations are supported.
        rotation_cost: ``"keyswitch"`` (one key switch each), ``"free"``
            (re-indexing) or ``"none"``.
        hoisting: whether ``rotate_many`` shares work across rotations.
        max_depth: number of rescales a fresh ciphertext allows.
        security_bits: 128 for standard parameters, 0 for toy sizes.
        encodings: supported encodings, e.g. ``("slot",)``.
        precision: guaranteed max absolute error of one encrypt, up to
            ``max_depth`` products by values of magnitude ≤ 1 with sums of up
            to 64 terms, and decrypt, for inputs with magnitude ≤ 1.
        max_abs: largest magnitude a slot may hold without wrapping around.
        ring_dim: polynomial ring dimension N (0 where there is none).
        plain_modulus: plaintext modulus t of an exact (coefficient) scheme,
            0 for the others.
    """

    scheme: str
    exact: bool
    slots: int
    rotations: bool
    rotation_cost: str
    hoisting: bool
    max_depth: int
    security_bits: int
    encodings: tuple[str, ...]
    precision: float
    max_abs: float
    ring_dim: int = 0
    plain_modulus: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return the capabilities as a plain dict (for tables and JSON)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, eq=False)
class Ciphertext:
    """An encrypted slot vector, owned by one key set.

    Attributes:
        handle: the library's ciphertext object.
        owner: id of the key set that encrypted it.
        level: rescales done since encryption.
        degree: scale degree (1 normal, 2 after an unrescaled product).
    """

    handle: Any
    owner: bytes
    level: int
    degree: int

    def __repr__(self) -> str:
        return f"Ciphertext(level={self.level}, degree={self.degree})"


@dataclasses.dataclass(frozen=True, eq=False)
class Plaintext:
    """An encoded (not encrypted) slot vector at a given level and degree."""

    handle: Any
    owner: bytes
    level: int
    degree: int

    def __repr__(self) -> str:
        return f"Plaintext(level={self.level}, degree={self.degree})"


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:80]


class Context(abc.ABC):
    """A backend bound to one key set: the client's or the server's view.

    Built by :meth:`Backend.keygen` (with the secret key) or
    :meth:`Backend.load_public` (public bundle only). Plugins subclass it and
    implement the ``_``-prefixed hooks on raw library objects; callers use
    the public methods, which validate and track levels.
    """

    def __init__(self, backend: Backend, owner: bytes, rotations: Iterable[int]):
        self.backend = backend
        self.owner = owner
        self.rotations = frozenset(rotations)
        self._has_secret = False

    # -- properties -------------------------------------------------------

    @property
    def capabilities(self) -> Capabilities:
        """The backend's capabilities."""
        return self.backend.capabilities

    @property
    def slots(self) -> int:
        """Number of slots of one ciphertext."""
        return self.capabilities.slots

    @property
    def has_secret(self) -> bool:
        """Whether this context can decrypt."""
        return self._has_secret

    @property
    def key_id(self) -> str:
        """Hex id of the key set (not secret; ties ciphertexts to keys)."""
        return self.owner.hex()

    # -- keys ---------------------------------------------------------------

    def public_bundle(self) -> bytes:
        """Serialize the public key and the evaluation keys to bytes."""
        header = {
            "backend": self.backend.name,
            "fingerprint": self.backend.fingerprint,
            "owner": self.owner.hex(),
            "rotations": sorted(self.rotations),
        }
        return _wire.pack("bundle", header, self._export_public())

    # -- encoding and encryption -------------------------------------------

    def encode(self, values: Any, *, level: int = 0, degree: int = 1) -> Plaintext:
        """Encode up to `slots` real values into a plaintext.

        Args:
            values: 1-D array-like of finite reals; shorter vectors are
                padded with zeros.
            level: level of the ciphertexts it will meet.
            degree: 1 for products and for adding to rescaled ciphertexts, 2
                for adding to an unrescaled product.

        Returns:
            The plaintext.

        Raises:
            InvalidInputError: for a wrong length or dtype, or non-finite or
                too large values.
            DepthExhaustedError: for a level past ``max_depth``.
        """
        vec = self._slot_vector(values)
        self._check_level(level, "encode")
        if degree not in (1, 2):
            raise InvalidInputError(f"`degree` must be 1 or 2, got {degree!r}")
        if degree == 2:  # a product's scale needs one level left to rescale into
            self._check_level(level + 1, "encode")
        handle = self._call("encode", self._encode, vec, level, degree)
        return Plaintext(handle, self.owner, level, degree)

    def encrypt(self, values: Any, *, level: int = 0) -> Ciphertext:
        """Encrypt a slot vector (array-like or :class:`Plaintext`).

        Raises:
            InvalidInputError: for bad values (see :meth:`encode`).
        """
        pt = values if isinstance(values, Plaintext) else None
        if pt is None:
            pt = self.encode(values, level=level)
        self._check_owned(pt, "plaintext")
        if pt.degree != 1:
            raise LevelMismatchError("only degree-1 plaintexts can be encrypted")
        handle = self._call("encrypt", self._encrypt, pt.handle, pt.level)
        return Ciphertext(handle, self.owner, pt.level, 1)

    def decrypt(self, ct: Ciphertext) -> np.ndarray:
        """Decrypt and decode all slots of `ct` as float64.

        Raises:
            SecretKeyError: if this context holds no secret key.
            KeyMismatchError: if `ct` belongs to another key set.
        """
        if not self._has_secret:
            raise SecretKeyError(
                f"this {self.backend.name} context was built from a public bundle "
                "and holds no secret key: only the client that generated the "
                "keys can decrypt"
            )
        self._check_owned(ct, "ciphertext")
        out = self._call("decrypt", self._decrypt, ct.handle, ct.level, ct.degree)
        return np.asarray(out, dtype=np.float64)[: self.slots]

    # -- arithmetic -----------------------------------------------------------

    def add(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """Return ``a + b``; the operand at the lower level is dropped to match."""
        a, b = self._align(a, b, "add")
        return self._like(a, self._call("add", self._add, a.handle, b.handle))

    def sub(self, a: Ciphertext, b: Ciphertext) -> Ciphertext:
        """Return ``a - b``; the operand at the lower level is dropped to match."""
        a, b = self._align(a, b, "sub")
        return self._like(a, self._call("sub", self._sub, a.handle, b.handle))

    def negate(self, ct: Ciphertext) -> Ciphertext:
        """Return ``-ct``."""
        self._check_owned(ct, "ciphertext")
        return self._like(ct, self._call("negate", self._negate, ct.handle))

    def add_plain(self, ct: Ciphertext, pt: Plaintext | Any) -> Ciphertext:
        """Return ``ct + pt``; an array is encoded at the level and degree of `ct`.

        Raises:
            LevelMismatchError: if a given plaintext's level or degree differs.
        """
        self._check_owned(ct, "ciphertext")
        pt = self._plain_for(ct, pt, ct.degree, "add_plain")
        handle = self._call("add_plain", self._add_plain, ct.handle, pt.handle)
        return self._like(ct, handle)

    def mul_plain(self, ct: Ciphertext, pt: Plaintext | Any) -> Ciphertext:
        """Return ``ct * pt`` slot-wise, at degree 2 (rescale it next).

        Raises:
            DepthExhaustedError: if `ct` has no level left to rescale into.
            LevelMismatchError: if `ct` is unrescaled or `pt` mismatches.
        """
        self._check_product(ct, "mul_plain")
        pt = self._plain_for(ct, pt, 1, "mul_plain")
        handle = self._call("mul_plain", self._mul_plain, ct.handle, pt.handle)
        return Ciphertext(handle, self.owner, ct.level, 2)

    def mul_scalar(self, ct: Ciphertext, scalar: float) -> Ciphertext:
        """Return ``ct * scalar``, at degree 2 (rescale it next)."""
        self._check_product(ct, "mul_scalar")
        value = self._scalar(scalar)
        handle = self._call("mul_scalar", self._mul_scalar, ct.handle, value, ct.level)
        return Ciphertext(handle, self.owner, ct.level, 2)

    def rescale(self, ct: Ciphertext) -> Ciphertext:
        """Divide out one scale after a product and consume one level.

        Raises:
            LevelMismatchError: if `ct` is not at degree 2.
            DepthExhaustedError: if no level is left.
        """
        self._check_owned(ct, "ciphertext")
        if ct.degree != 2:
            raise LevelMismatchError(
                "rescale expects the result of mul_plain or mul_scalar (degree 2), "
                f"got degree {ct.degree}"
            )
        self._check_level(ct.level + 1, "rescale")
        handle = self._call("rescale", self._rescale, ct.handle, ct.level)
        return Ciphertext(handle, self.owner, ct.level + 1, 1)

    def drop_level(self, ct: Ciphertext, level: int) -> Ciphertext:
        """Move `ct` down to `level` without changing its values (mod switch)."""
        self._check_owned(ct, "ciphertext")
        self._check_level(level, "drop_level")
        if level < ct.level:
            raise LevelMismatchError(
                f"cannot raise a ciphertext from level {ct.level} to {level}; "
                "only the client can refresh it by re-encryption"
            )
        if level == ct.level:
            return ct
        if ct.degree == 2 and level + 1 > self.capabilities.max_depth:
            raise DepthExhaustedError(
                f"drop_level: a product (degree 2) cannot move to the last level "
                f"({level}): it needs one more level to rescale into; rescale it first"
            )
        handle = self._call(
            "drop_level", self._drop_level, ct.handle, ct.level, level, ct.degree
        )
        return Ciphertext(handle, self.owner, level, ct.degree)

    def rotate(self, ct: Ciphertext, k: int) -> Ciphertext:
        """Rotate slots left by `k` (``np.roll(x, -k)``).

        Raises:
            MissingRotationKeyError: if no key for `k` was generated.
        """
        return self.rotate_many(ct, [k])[0]

    def rotate_many(self, ct: Ciphertext, ks: Sequence[int]) -> list[Ciphertext]:
        """Rotate `ct` by each of `ks`, sharing work (hoisting) where possible."""
        self._check_owned(ct, "ciphertext")
        steps = [self._rotation_step(k) for k in ks]
        todo = sorted({s for s in steps if s})
        handles = self._call("rotate_many", self._rotate_many, ct.handle, todo)
        done = dict(zip(todo, handles, strict=True))
        return [ct if s == 0 else self._like(ct, done[s]) for s in steps]

    def rerandomize(self, ct: Ciphertext, flood: float = 0.0) -> Ciphertext:
        """Add a fresh public-key encryption of Gaussian noise of std `flood`.

        The result holds the values of `ct` plus independent noise of std
        `flood` in every slot (noise flooding), and fresh encryption
        randomness, so it no longer carries the exact noise that the
        operations which produced `ct` left in it. With ``flood=0`` only a
        fresh encryption of zero is added. Only the public key is needed.

        Args:
            ct: a degree-1 ciphertext (rescale a product first).
            flood: std of the added noise, in slot units; at most the
                backend's stated ``precision``, and 0 on exact schemes.

        Returns:
            The re-randomised ciphertext, at the level of `ct`.

        Raises:
            LevelMismatchError: if `ct` is at degree 2.
            InvalidInputError: for a negative, non-finite or too large
                `flood`, or a nonzero one on an exact scheme.
        """
        self._check_owned(ct, "ciphertext")
        if ct.degree != 1:
            raise LevelMismatchError(
                "rerandomize expects a degree-1 ciphertext; rescale the product first"
            )
        sigma = self._flood_std(flood)
        noise = np.random.default_rng().normal(0.0, sigma, self.slots)
        handle = self._call(
            "rerandomize", self._rerandomize, ct.handle, ct.level, noise
        )
        return self._like(ct, handle)

    # -- serialization -------------------------------------------------------

    def serialize(self, ct: Ciphertext) -> bytes:
        """Serialize a ciphertext with its level, degree and owner."""
        self._check_owned(ct, "ciphertext")
        header = {
            "backend": self.backend.name,
            "fingerprint": self.backend.fingerprint,
            "owner": self.owner.hex(),
            "level": ct.level,
            "degree": ct.degree,
        }
        payload = self._call("serialize", self._serialize_ct, ct.handle)
        return _wire.pack("ciphertext", header, payload)

    def deserialize(self, data: bytes) -> Ciphertext:
        """Read a ciphertext written by :meth:`serialize` of the same key set.

        Raises:
            SerializationError: for truncated, corrupted or foreign bytes.
            KeyMismatchError: for a ciphertext of another key set.
        """
        header, payload = _wire.unpack("ciphertext", data)
        self._check_header(header, "ciphertext")
        level, degree = header.get("level"), header.get("degree")
        if not isinstance(level, int) or degree not in (1, 2):
            raise SerializationError("ciphertext header has no valid level/degree")
        self._check_level(level, "deserialize")
        try:
            handle = self._deserialize_ct(payload, level, degree)
        except HejaxError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"{self.backend.name} could not read the ciphertext: {exc}"
            ) from exc
        return Ciphertext(handle, self.owner, level, degree)

    def nbytes(self, ct: Ciphertext) -> int:
        """Size in bytes of the serialized ciphertext."""
        return len(self.serialize(ct))

    # -- checks -------------------------------------------------------------

    def _call(self, op: str, hook: Any, *args: Any) -> Any:
        try:
            return hook(*args)
        except HejaxError:
            raise
        except Exception as exc:
            raise BackendError(
                f"{self.backend.name} failed in {op}: {type(exc).__name__}: {exc}"
            ) from exc

    def _check_owned(self, obj: Any, what: str) -> None:
        kind = Ciphertext if what == "ciphertext" else Plaintext
        if not isinstance(obj, kind):
            raise InvalidInputError(f"expected a {kind.__name__}, got {_describe(obj)}")
        if obj.owner != self.owner:
            raise KeyMismatchError(
                f"this {what} belongs to key set {obj.owner.hex()[:12]}…, not to "
                f"this context's {self.owner.hex()[:12]}… ({self.backend.name}); "
                "combine only objects made under one key set"
            )

    def _check_header(self, header: Mapping[str, Any], what: str) -> None:
        if header.get("backend") != self.backend.name:
            raise KeyMismatchError(
                f"this {what} was made by backend {header.get('backend')!r}, "
                f"not {self.backend.name!r}"
            )
        if header.get("fingerprint") != self.backend.fingerprint:
            raise KeyMismatchError(
                f"this {what} was made with other {self.backend.name} parameters "
                f"({header.get('fingerprint')}, here {self.backend.fingerprint})"
            )
        if header.get("owner") != self.owner.hex():
            raise KeyMismatchError(
                f"this {what} belongs to key set {str(header.get('owner'))[:12]}…, "
                f"not to this context's {self.owner.hex()[:12]}…"
            )

    def _check_level(self, level: Any, op: str) -> None:
        depth = self.capabilities.max_depth
        if not isinstance(level, int | np.integer) or level < 0:
            raise InvalidInputError(f"{op}: level must be an int ≥ 0, got {level!r}")
        if level > depth:
            raise DepthExhaustedError(
                f"{op}: level {level} is past the last level ({depth}) of "
                f"{self.backend.name} preset {self.backend.preset!r}; pick a preset "
                "with more depth or let the scheduler insert refresh rounds"
            )

    def _check_product(self, ct: Ciphertext, op: str) -> None:
        self._check_owned(ct, "ciphertext")
        if ct.degree != 1:
            raise LevelMismatchError(
                f"{op}: rescale the ciphertext before another product"
            )
        self._check_level(ct.level + 1, op)

    def _align(self, a: Ciphertext, b: Ciphertext, op: str) -> tuple[Ciphertext, ...]:
        self._check_owned(a, "ciphertext")
        self._check_owned(b, "ciphertext")
        if a.degree != b.degree:
            raise LevelMismatchError(
                f"{op}: operands have scale degrees {a.degree} and {b.degree}; "
                "rescale the product first"
            )
        level = max(a.level, b.level)
        return self.drop_level(a, level), self.drop_level(b, level)

    def _like(self, ct: Ciphertext, handle: Any) -> Ciphertext:
        return Ciphertext(handle, self.owner, ct.level, ct.degree)

    def _plain_for(self, ct: Ciphertext, pt: Any, degree: int, op: str) -> Plaintext:
        if not isinstance(pt, Plaintext):
            return self.encode(pt, level=ct.level, degree=degree)
        self._check_owned(pt, "plaintext")
        if (pt.level, pt.degree) != (ct.level, degree):
            raise LevelMismatchError(
                f"{op}: plaintext at level {pt.level}, degree {pt.degree} does not "
                f"fit a ciphertext at level {ct.level} (needs degree {degree}); "
                "encode it with matching level and degree"
            )
        return pt

    def _rotation_step(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise InvalidInputError(
                f"rotation index must be an int, got {_describe(k)}"
            )
        step = int(k) % self.slots
        if step and step not in self.rotations:
            have = sorted(self.backend.signed_step(s) for s in self.rotations)
            raise MissingRotationKeyError(
                f"no rotation key for step {int(k)}; keys exist for {have[:16]}"
                f"{'…' if len(have) > 16 else ''}. Generate keys with "
                "keygen(rotations=...) including it (a compiled Program lists "
                "the steps it needs)"
            )
        return step

    def _slot_vector(self, values: Any) -> np.ndarray:
        if isinstance(values, Ciphertext | Plaintext):
            raise InvalidInputError(f"expected values, got a {type(values).__name__}")
        arr = np.asarray(values)
        if arr.dtype.kind not in "biuf":
            raise InvalidInputError(
                f"slot values must be real numbers, got dtype {arr.dtype} "
                "(complex, strings and objects are not supported)"
            )
        if arr.ndim != 1 or not 0 < arr.size <= self.slots:
            raise InvalidInputError(
                f"expected a 1-D vector of 1 to {self.slots} values, got shape "
                f"{arr.shape}; flatten the data or split it across ciphertexts"
            )
        arr = arr.astype(np.float64)
        if not np.all(np.isfinite(arr)):
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise InvalidInputError(
                f"slot values must be finite; index {bad} holds {arr[bad]}"
            )
        limit = self.capabilities.max_abs
        if np.max(np.abs(arr)) > limit:
            raise InvalidInputError(
                f"slot values must have magnitude ≤ {limit:g} for "
                f"{self.backend.name}; got {np.max(np.abs(arr)):g}. Scale the input"
            )
        return np.pad(arr, (0, self.slots - arr.size))

    def _flood_std(self, flood: Any) -> float:
        caps = self.capabilities
        if isinstance(flood, bool) or not isinstance(
            flood, int | float | np.integer | np.floating
        ):
            raise InvalidInputError(f"`flood` must be a real number, got {flood!r}")
        value = float(flood)
        if not 0.0 <= value <= caps.precision:
            raise InvalidInputError(
                f"`flood` must lie in [0, {caps.precision:g}] (the backend's stated "
                f"precision) for {self.backend.name}, got {value!r}"
            )
        if value and caps.exact:
            raise InvalidInputError(
                f"{self.backend.name} is exact: flooding noise would change the "
                "result; pass flood=0"
            )
        return value

    def _scalar(self, scalar: Any) -> float:
        if isinstance(scalar, bool) or not isinstance(
            scalar, int | float | np.integer | np.floating
        ):
            raise InvalidInputError(
                f"scalar must be a real number, got {_describe(scalar)}"
            )
        value = float(scalar)
        if not np.isfinite(value) or abs(value) > self.capabilities.max_abs:
            raise InvalidInputError(f"scalar must be finite and moderate, got {value}")
        return value

    # -- hooks for plugins ------------------------------------------------

    @abc.abstractmethod
    def _export_public(self) -> bytes:
        """Serialize public key and evaluation keys (payload only)."""

    @abc.abstractmethod
    def _encode(self, values: np.ndarray, level: int, degree: int) -> Any:
        """Encode `slots` float64 values at a level and scale degree."""

    @abc.abstractmethod
    def _encrypt(self, pt: Any, level: int) -> Any:
        """Encrypt a degree-1 plaintext with the public key."""

    @abc.abstractmethod
    def _decrypt(self, ct: Any, level: int, degree: int) -> np.ndarray:
        """Decrypt and decode; return at least `slots` reals."""

    @abc.abstractmethod
    def _add(self, a: Any, b: Any) -> Any:
        """Add two ciphertexts at the same level and degree."""

    @abc.abstractmethod
    def _sub(self, a: Any, b: Any) -> Any:
        """Subtract two ciphertexts at the same level and degree."""

    @abc.abstractmethod
    def _negate(self, ct: Any) -> Any:
        """Negate a ciphertext."""

    @abc.abstractmethod
    def _add_plain(self, ct: Any, pt: Any) -> Any:
        """Add a plaintext encoded for the ciphertext's level and degree."""

    @abc.abstractmethod
    def _mul_plain(self, ct: Any, pt: Any) -> Any:
        """Multiply by a degree-1 plaintext, without rescaling."""

    @abc.abstractmethod
    def _mul_scalar(self, ct: Any, scalar: float, level: int) -> Any:
        """Multiply by a real scalar, without rescaling (result degree 2)."""

    @abc.abstractmethod
    def _rescale(self, ct: Any, level: int) -> Any:
        """Rescale a degree-2 ciphertext at `level` to level + 1."""

    @abc.abstractmethod
    def _drop_level(self, ct: Any, level: int, to_level: int, degree: int) -> Any:
        """Mod-switch from `level` down to `to_level`, keeping the values."""

    @abc.abstractmethod
    def _rotate_many(self, ct: Any, steps: Sequence[int]) -> list[Any]:
        """Rotate by each step in ``[1, slots)``; keys exist for all of them."""

    def _rerandomize(self, ct: Any, level: int, noise: np.ndarray) -> Any:
        """Add a fresh encryption of `noise` at `level` (override if cheaper)."""
        return self._add(ct, self._encrypt(self._encode(noise, level, 1), level))

    @abc.abstractmethod
    def _serialize_ct(self, ct: Any) -> bytes:
        """Serialize a ciphertext (payload only)."""

    @abc.abstractmethod
    def _deserialize_ct(self, data: bytes, level: int, degree: int) -> Any:
        """Read a ciphertext payload written by `_serialize_ct`."""


class Backend(abc.ABC):
    """One HE scheme of one library with one parameter set.

    Subclasses set `name`, `presets` and `default_preset` and implement
    :meth:`_capabilities`, :meth:`_keygen` and :meth:`_load_public`.

    Args:
        preset: name of a parameter preset (see `presets`); the default when
            omitted.
        insecure: allow parameters below 128-bit security (toy sizes for
            tests). Never set it for real data.
        **params: overrides of the preset's parameters.

    Raises:
        InvalidInputError: for an unknown preset or parameter.
        InsecureParametersError: for parameters below 128-bit security
            without `insecure=True`.
    """

    name: ClassVar[str]
    presets: ClassVar[Mapping[str, Mapping[str, Any]]]
    default_preset: ClassVar[str]

    def __init__(self, preset: str | None = None, *, insecure: bool = False, **params):
        preset = self.default_preset if preset is None else preset
        if preset not in self.presets:
            raise InvalidInputError(
                f"unknown {self.name} preset {preset!r}; presets: "
                f"{', '.join(self.presets)}"
            )
        base = dict(self.presets[preset])
        unknown = sorted(set(params) - set(base))
        if unknown:
            raise InvalidInputError(
                f"unknown {self.name} parameter(s) {unknown}; known: {sorted(base)}"
            )
        self.preset = preset
        self.insecure = bool(insecure)
        self.params = {
            k: v.item() if isinstance(v, np.generic) else v
            for k, v in {**base, **params}.items()
        }
        self._caps = self._capabilities(self.params, self.insecure)
        blob = json.dumps([self.name, self.params], sort_keys=True, default=str)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(preset={self.preset!r})"

    @property
    def capabilities(self) -> Capabilities:
        """What this backend can do with its parameters."""
        return self._caps

    def signed_step(self, step: int) -> int:
        """Map a rotation step in ``[0, slots)`` to the signed form nearest 0."""
        slots = self._caps.slots
        return step - slots if step > slots // 2 else step

    def keygen(self, rotations: Iterable[int] = ()) -> Context:
        """Generate a key set with keys for exactly the given rotation steps.

        Args:
            rotations: rotation steps (negative steps allowed) whose keys the
                public bundle must carry.

        Returns:
            A client context that holds the secret key.
        """
        slots = self._caps.slots
        steps = set()
        for k in rotations:
            if isinstance(k, bool) or not isinstance(k, int | np.integer):
                raise InvalidInputError(
                    f"rotation steps must be ints, got {_describe(k)}"
                )
            steps.add(int(k) % slots)
        steps.discard(0)
        if steps and not self._caps.rotations:
            raise InvalidInputError(f"{self.name} does not support rotations")
        ctx = self._keygen(os.urandom(16), sorted(steps))
        ctx._has_secret = True
        return ctx

    def load_public(self, bundle: bytes) -> Context:
        """Build a server-side context from a client's public bundle.

        Raises:
            SerializationError: for truncated, corrupted or foreign bytes.
            KeyMismatchError: for a bundle of another backend or parameters.
        """
        header, payload = _wire.unpack("bundle", bundle)
        if header.get("backend") != self.name:
            raise KeyMismatchError(
                f"public bundle is for backend {header.get('backend')!r}, "
                f"not {self.name!r}"
            )
        if header.get("fingerprint") != self.fingerprint:
            raise KeyMismatchError(
                f"public bundle was made with other {self.name} parameters; "
                f"build the backend with the client's preset and parameters"
            )
        try:
            owner = bytes.fromhex(header["owner"])
            steps = list(header["rotations"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SerializationError("public bundle header is incomplete") from exc
        self._check_bundle_steps(steps)
        try:
            return self._load_public(owner, steps, payload)
        except HejaxError:
            raise
        except Exception as exc:
            raise SerializationError(
                f"{self.name} could not read the public bundle: {exc}"
            ) from exc

    def _check_bundle_steps(self, steps: list[Any]) -> None:
        slots = self._caps.slots
        ok = all(
            isinstance(s, int) and not isinstance(s, bool) and 0 < s < slots
            for s in steps
        )
        if not ok or len(set(steps)) != len(steps):
            raise SerializationError(
                f"public bundle lists invalid rotation steps: they must be "
                f"distinct ints in [1, {slots})"
            )

    @abc.abstractmethod
    def _capabilities(self, params: Mapping[str, Any], insecure: bool) -> Capabilities:
        """Validate parameters (security included) and describe them."""

    @abc.abstractmethod
    def _keygen(self, owner: bytes, steps: list[int]) -> Context:
        """Generate keys; `steps` are rotation steps in ``[1, slots)``."""

    @abc.abstractmethod
    def _load_public(self, owner: bytes, steps: list[int], payload: bytes) -> Context:
        """Build a context without secret key from `_export_public` bytes."""
