"""The RED-CNN family of LDCT denoisers in Flax linen.

RED-CNN (Chen et al., 2017, "Low-dose CT with a residual encoder-decoder
convolutional neural network") is five convolutions that shrink the image
(VALID padding, stride 1), five transposed convolutions that grow it back,
and three residual shortcuts: from the input to the output, from the second
encoder feature map to the third decoder one, and from the fourth encoder
feature map to the first decoder one.

The model is written only with ``nn.Conv``, ``nn.ConvTranspose`` (both with
bias), additions and ``nn.relu`` so that its jaxpr holds nothing but
``conv_general_dilated``, ``add``, the reshapes and broadcasts of the biases,
and ``max(x, 0)``: exactly what the hejax compiler lowers to HE.

Variants differ only in where the ReLUs sit:

* ``"all-relu"``: the original network, ten ReLUs.
* ``"last-relu"``: no hidden ReLU, one ReLU on the output.
* ``"linear"``: no ReLU at all; the whole network is one affine map.

The last transposed convolution starts with a zero kernel, so an untrained
model is the identity on images in [0, 1] and training only has to learn the
noise to remove; this changes the initialisation, not the architecture.

Images are NHWC float32 in the [0, 1] unit scale of
:func:`hejax.ldct.data.hu_to_unit`, with one channel. The HE compiler takes a
batch of one; training uses larger batches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from hejax.errors import InvalidInputError

__all__ = [
    "PRESETS",
    "VARIANTS",
    "REDCNN",
    "init_params",
    "make_model",
]


def _identity(x: jax.Array) -> jax.Array:
    return x


@dataclasses.dataclass(frozen=True)
class _Activations:
    """The nonlinearity after hidden layers and the one on the output."""

    hidden: Callable[[jax.Array], jax.Array]
    final: Callable[[jax.Array], jax.Array]


VARIANTS: dict[str, _Activations] = {
    "all-relu": _Activations(hidden=nn.relu, final=nn.relu),
    "last-relu": _Activations(hidden=_identity, final=nn.relu),
    "linear": _Activations(hidden=_identity, final=_identity),
}
"""Where each variant puts its ReLUs, by variant name."""

PRESETS: dict[str, dict[str, int]] = {
    "lite": {"features": 16, "kernel_size": 5},
    "paper": {"features": 96, "kernel_size": 5},
}
"""Width and kernel size of the named model sizes."""


def _activations(variant: str) -> _Activations:
    try:
        return VARIANTS[variant]
    except KeyError:
        raise InvalidInputError(
            f"unknown RED-CNN `variant` {variant!r}; expected one of {sorted(VARIANTS)}"
        ) from None


class REDCNN(nn.Module):
    """RED-CNN: residual encoder-decoder CNN for LDCT denoising.

    Attributes:
        features: channels of every hidden feature map.
        kernel_size: side of the square kernels; every layer shrinks (encoder)
            or grows (decoder) the image by ``kernel_size - 1`` pixels.
        variant: one of :data:`VARIANTS`.
    """

    features: int = 16
    kernel_size: int = 5
    variant: str = "all-relu"

    def _conv(self, features: int, name: str) -> nn.Conv:
        k = (self.kernel_size, self.kernel_size)
        return nn.Conv(features, k, padding="VALID", use_bias=True, name=name)

    def _tconv(self, features: int, name: str, **init) -> nn.ConvTranspose:
        k = (self.kernel_size, self.kernel_size)
        return nn.ConvTranspose(
            features, k, padding="VALID", use_bias=True, name=name, **init
        )

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Denoise a batch of images.

        Args:
            x: images of shape ``(batch, height, width, 1)``, float32.

        Returns:
            The denoised images, same shape as ``x``.

        Raises:
            InvalidInputError: if ``x`` is not NHWC with one channel, or is
                too small for five VALID convolutions.
        """
        _check_input(x, self.kernel_size)
        act = _activations(self.variant)
        f = self.features

        r1 = x
        out = act.hidden(self._conv(f, "conv1")(x))
        out = act.hidden(self._conv(f, "conv2")(out))
        r2 = out
        out = act.hidden(self._conv(f, "conv3")(out))
        out = act.hidden(self._conv(f, "conv4")(out))
        r3 = out
        out = act.hidden(self._conv(f, "conv5")(out))

        out = self._tconv(f, "tconv1")(out) + r3
        out = self._tconv(f, "tconv2")(act.hidden(out))
        out = self._tconv(f, "tconv3")(act.hidden(out)) + r2
        out = self._tconv(f, "tconv4")(act.hidden(out))
        last = self._tconv(1, "tconv5", kernel_init=nn.initializers.zeros)
        out = last(act.hidden(out)) + r1
        return act.final(out)


def _check_input(x: jax.Array, kernel_size: int) -> None:
    if x.ndim != 4 or x.shape[-1] != 1:
        raise InvalidInputError(
            f"RED-CNN input must be NHWC with one channel, got shape {x.shape}"
        )
    smallest = 5 * (kernel_size - 1) + 1
    if min(x.shape[1:3]) < smallest:
        raise InvalidInputError(
            f"RED-CNN with kernel_size={kernel_size} needs images of at least "
            f"{smallest}x{smallest} pixels, got shape {x.shape}"
        )


def make_model(
    preset: str = "lite", variant: str = "all-relu", **overrides: int
) -> REDCNN:
    """Build a RED-CNN from a named preset.

    Args:
        preset: ``"lite"`` (16 channels) or ``"paper"`` (96 channels, the
            original design); both use 5x5 kernels.
        variant: ``"all-relu"``, ``"last-relu"`` or ``"linear"``.
        **overrides: ``features`` or ``kernel_size`` to replace the preset's.

    Returns:
        The (unbound) Flax module.

    Raises:
        InvalidInputError: if the preset, the variant or an override is
            unknown, or a size is not a positive integer.

    Example:
        >>> model = make_model("lite", "linear", features=8)
        >>> model.features, model.variant
        (8, 'linear')
    """
    if preset not in PRESETS:
        raise InvalidInputError(
            f"unknown RED-CNN `preset` {preset!r}; expected one of {sorted(PRESETS)}"
        )
    _activations(variant)
    config = {**PRESETS[preset], **overrides}
    unknown = sorted(set(config) - set(PRESETS["lite"]))
    if unknown:
        raise InvalidInputError(
            f"unknown RED-CNN override(s) {unknown}; expected some of "
            f"{sorted(PRESETS['lite'])}"
        )
    bad = {k: v for k, v in config.items() if not _is_positive_int(v)}
    if bad:
        raise InvalidInputError(f"RED-CNN sizes must be positive integers: {bad}")
    return REDCNN(variant=variant, **config)


def _is_positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def init_params(
    model: REDCNN, shape: tuple[int, ...] = (1, 64, 64, 1), seed: int = 0
) -> dict:
    """Initialise the parameters of a RED-CNN.

    Args:
        model: the module, e.g. from :func:`make_model`.
        shape: the NHWC input shape to initialise for; the parameters do not
            depend on the batch or image size.
        seed: the seed of the ``jax.random`` key.

    Returns:
        The ``params`` collection, to be passed as
        ``model.apply({"params": params}, x)``.
    """
    x = jnp.zeros(shape, jnp.float32)
    return model.init(jax.random.key(seed), x)["params"]
