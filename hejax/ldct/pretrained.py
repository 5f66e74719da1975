"""Shipped RED-CNN weights: saving, loading and the manifest that describes them.

Weights are flax msgpack files named ``redcnn-<preset>-<variant>.msgpack`` in
the package folder ``hejax/ldct/weights/``; ``weights/manifest.json`` records,
for each file, the model sizes, the command and seed that trained it, and the
PSNR gains measured on held-out phantoms and on the real pydicom slice.
They are read with :mod:`importlib.resources`, so they work from an installed
wheel as well as from a source tree.

Only the lite preset is shipped; the 96-channel paper preset is too slow to
train on a laptop CPU and its weights would be about 100 times larger.
"""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path
from typing import TYPE_CHECKING

import flax.serialization
import jax
import numpy as np

from hejax.errors import InvalidInputError, SerializationError
from hejax.ldct.models import REDCNN, init_params, make_model

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = [
    "MANIFEST",
    "available",
    "load_params",
    "load_pretrained",
    "manifest",
    "save_params",
    "weights_name",
]

MANIFEST = "manifest.json"
"""Name of the JSON file describing the shipped weights."""


def weights_name(preset: str, variant: str) -> str:
    """File name of the shipped weights of a preset and variant.

    Args:
        preset: the model preset, e.g. ``"lite"``.
        variant: the RED-CNN variant, e.g. ``"all-relu"``.

    Returns:
        ``"redcnn-<preset>-<variant>.msgpack"``.
    """
    return f"redcnn-{preset}-{variant}.msgpack"


def _weights_dir() -> Traversable:
    return importlib.resources.files("hejax.ldct") / "weights"


def manifest() -> dict[str, dict]:
    """The manifest of the shipped weights, keyed by file name.

    Returns:
        For each weights file: ``preset``, ``variant``, ``features``,
        ``kernel_size``, ``command``, ``train_config``, ``dose_config``,
        ``train_seconds`` and the measured ``evaluation``.
    """
    entry = _weights_dir() / MANIFEST
    if not entry.is_file():
        return {}
    return json.loads(entry.read_text(encoding="utf-8"))


def available() -> list[tuple[str, str]]:
    """The ``(preset, variant)`` pairs that have shipped weights.

    Returns:
        A sorted list of pairs.
    """
    return sorted((e["preset"], e["variant"]) for e in manifest().values())


def save_params(params: dict, path: str | Path) -> Path:
    """Write parameters as a flax msgpack file.

    Args:
        params: the ``params`` collection of a model.
        path: where to write.

    Returns:
        The path written.
    """
    path = Path(path)
    path.write_bytes(flax.serialization.to_bytes(params))
    return path


def load_params(model: REDCNN, blob: bytes) -> dict:
    """Restore parameters of ``model`` from msgpack bytes.

    Args:
        model: the module the parameters belong to.
        blob: bytes from :func:`save_params`.

    Returns:
        The ``params`` collection.

    Raises:
        SerializationError: if the bytes are not msgpack or do not hold
            parameters of ``model``'s shapes.
    """
    target = init_params(model, (1, 32, 32, 1))
    try:
        params = flax.serialization.from_bytes(target, blob)
    except (ValueError, KeyError, TypeError) as err:
        raise SerializationError(f"not RED-CNN weights of {model}: {err}") from err
    expected = jax.tree.map(np.shape, target)
    if jax.tree.map(np.shape, params) != expected:
        raise SerializationError(
            f"weights do not fit {model}: shapes {jax.tree.map(np.shape, params)}"
        )
    return params


def load_pretrained(
    variant: str = "all-relu", preset: str = "lite"
) -> tuple[REDCNN, dict]:
    """Load a shipped, trained RED-CNN.

    Args:
        variant: ``"all-relu"``, ``"last-relu"`` or ``"linear"``.
        preset: the model preset; only ``"lite"`` is shipped.

    Returns:
        ``(model, params)``, ready for ``model.apply({"params": params}, x)``
        on NHWC images in the unit scale.

    Raises:
        InvalidInputError: if no weights ship for this preset and variant.

    Example:
        >>> model, params = load_pretrained("linear")
        >>> model.features
        16
    """
    name = weights_name(preset, variant)
    entry = manifest().get(name)
    blob_file = _weights_dir() / name
    if entry is None or not blob_file.is_file():
        raise InvalidInputError(
            f"no shipped weights for preset={preset!r}, variant={variant!r}; "
            f"available (preset, variant): {available()}"
        )
    model = make_model(
        preset,
        variant,
        features=entry["features"],
        kernel_size=entry["kernel_size"],
    )
    return model, load_params(model, blob_file.read_bytes())
