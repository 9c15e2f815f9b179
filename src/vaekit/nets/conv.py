"""Convolutional encoders/decoders for images of any size and for 1-D audio frames.

Data layout is channels-last, one example at a time (batch with ``jax.vmap``, as the
conditionals do): images ``(H, W)`` or ``(H, W, C)``, audio frames ``(T,)`` or
``(T, C)``. Decoders emit ``params_per_value`` parameter maps concatenated along the
last axis, which is the layout the conditionals split: e.g. for a diagonal Gaussian
on ``(H, W, C)`` data use ``params_per_value=2`` (output ``(H, W, 2C)``: means then
raw scales); for ``(H, W)`` data the output is ``(H, 2W)``.

* :class:`ConvEncoder` / :class:`ConvDecoder`: strided 3x3 convolutions (down) and
  transposed convolutions (up), with optional residual blocks after each stage (the
  ResNet VAE). The decoder starts from a ``ceil(H / 2^L) x ceil(W / 2^L)`` grid and
  crops to ``H x W``, so any size works (28x28 and 32x32 alike).
* :class:`Conv1dEncoder` / :class:`Conv1dDecoder`: the same in 1-D for audio frames.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .._validate import positive_int
from ..core import resolve


def _check_shape(shape, ndim_ok: tuple[int, ...], name: str) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) not in ndim_ok or any(s <= 0 for s in shape):
        raise ValueError(f"{name}: shape must have {' or '.join(map(str, ndim_ok))} positive sizes, got {shape}.")
    return shape


class ResBlock(eqx.Module):
    """``x + conv(act(conv(act(x))))`` with same-size ``k``-wide convolutions."""

    conv1: eqx.nn.Conv
    conv2: eqx.nn.Conv
    activation: Callable[[Array], Array] = eqx.field(static=True)

    def __init__(self, channels: int, num_spatial_dims: int, *, key: PRNGKeyArray, activation=jax.nn.relu):
        k1, k2 = jax.random.split(key)
        self.conv1 = eqx.nn.Conv(num_spatial_dims, channels, channels, 3, padding=1, key=k1)
        self.conv2 = eqx.nn.Conv(num_spatial_dims, channels, channels, 3, padding=1, key=k2)
        self.activation = activation

    def __call__(self, x: Array) -> Array:
        return x + self.conv2(self.activation(self.conv1(self.activation(x))))


def _to_channels_first(x: Array, spatial: int) -> Array:
    if x.ndim == spatial:
        x = x[..., None]
    return jnp.moveaxis(x, -1, 0)


def _features(convs, blocks, activation, spatial, x):
    h = _to_channels_first(x, spatial)
    for conv, bs in zip(convs, blocks):
        h = activation(conv(h))
        for b in bs:
            h = b(h)
    return jnp.reshape(h, (-1,))


class _AbstractConvEncoder(eqx.Module):
    """Abstract: the stride-2 conv encoder shared by :class:`ConvEncoder` (2-D) and
    :class:`Conv1dEncoder` (1-D); each final subclass's ``__init__`` calls ``_init``."""

    convs: tuple[eqx.nn.Conv, ...]
    blocks: tuple[tuple[ResBlock, ...], ...]
    head: eqx.nn.Linear
    activation: Callable[[Array], Array] = eqx.field(static=True)
    in_shape: tuple[int, ...] = eqx.field(static=True)
    spatial: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def _init(self, spatial, in_shape, out_size, channels, res_blocks, activation, key):
        channels = tuple(int(c) for c in channels)
        if not channels or any(c <= 0 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}.")
        out_size = positive_int(out_size, "out_size")
        c_in = in_shape[spatial] if len(in_shape) > spatial else 1
        keys = jax.random.split(key, 2 * len(channels) + 1)
        convs, blocks = [], []
        for i, c in enumerate(channels):
            convs.append(eqx.nn.Conv(spatial, c_in, c, 4, stride=2, padding=1, key=keys[2 * i]))
            bk = jax.random.split(keys[2 * i + 1], max(res_blocks, 1))
            blocks.append(tuple(ResBlock(c, spatial, key=k, activation=activation) for k in bk[:res_blocks]))
            c_in = c
        self.convs, self.blocks = tuple(convs), tuple(blocks)
        self.activation = activation
        self.in_shape, self.spatial, self.out_size = in_shape, spatial, out_size
        size = math.prod(
            jax.eval_shape(
                lambda x: _features(self.convs, self.blocks, activation, spatial, x), jnp.zeros(in_shape)
            ).shape
        )
        self.head = eqx.nn.Linear(size, out_size, key=keys[-1])

    def __call__(self, x: Array) -> Array:
        net = resolve(self)
        if tuple(x.shape) != self.in_shape:
            raise ValueError(
                f"{type(self).__name__} expects one example of shape {self.in_shape}, got {tuple(x.shape)}."
            )
        return net.head(_features(net.convs, net.blocks, net.activation, net.spatial, x))


class _AbstractConvDecoder(eqx.Module):
    """Abstract: the transposed-conv decoder shared by :class:`ConvDecoder` (2-D) and
    :class:`Conv1dDecoder` (1-D); each final subclass's ``__init__`` calls ``_init``."""

    head: eqx.nn.Linear
    deconvs: tuple[eqx.nn.ConvTranspose, ...]
    blocks: tuple[tuple[ResBlock, ...], ...]
    out_conv: eqx.nn.Conv
    activation: Callable[[Array], Array] = eqx.field(static=True)
    out_shape: tuple[int, ...] = eqx.field(static=True)
    spatial: int = eqx.field(static=True)
    params_per_value: int = eqx.field(static=True)
    grid: tuple[int, ...] = eqx.field(static=True)
    in_size: int = eqx.field(static=True)

    def _init(self, spatial, in_size, out_shape, channels, res_blocks, activation, params_per_value, key):
        channels = tuple(int(c) for c in channels)
        if not channels or any(c <= 0 for c in channels):
            raise ValueError(f"channels must be a non-empty list of positive ints, got {channels}.")
        in_size = positive_int(in_size, "in_size")
        params_per_value = positive_int(params_per_value, "params_per_value")
        n = len(channels)
        self.grid = tuple(-(-s // 2**n) for s in out_shape[:spatial])
        c_out = out_shape[spatial] if len(out_shape) > spatial else 1
        keys = jax.random.split(key, 2 * n + 2)
        self.head = eqx.nn.Linear(in_size, channels[0] * math.prod(self.grid), key=keys[0])
        deconvs, blocks = [], []
        widths = (*channels, channels[-1])
        for i in range(n):
            deconvs.append(
                eqx.nn.ConvTranspose(spatial, widths[i], widths[i + 1], 4, stride=2, padding=1, key=keys[2 * i + 1])
            )
            bk = jax.random.split(keys[2 * i + 2], max(res_blocks, 1))
            blocks.append(
                tuple(ResBlock(widths[i + 1], spatial, key=k, activation=activation) for k in bk[:res_blocks])
            )
        self.deconvs, self.blocks = tuple(deconvs), tuple(blocks)
        self.out_conv = eqx.nn.Conv(spatial, widths[-1], c_out * params_per_value, 3, padding=1, key=keys[-1])
        self.activation = activation
        self.out_shape, self.spatial, self.params_per_value, self.in_size = (
            out_shape,
            spatial,
            params_per_value,
            in_size,
        )

    def __call__(self, z: Array) -> Array:
        net = resolve(self)
        h = net.activation(net.head(jnp.reshape(z, (-1,))))
        h = jnp.reshape(h, (-1, *net.grid))
        for deconv, blocks in zip(net.deconvs, net.blocks):
            h = net.activation(deconv(h))
            for b in blocks:
                h = b(h)
        h = net.out_conv(h)  # [C * m, *grid * 2^L]
        h = h[(slice(None), *(slice(0, s) for s in net.out_shape[: net.spatial]))]
        h = jnp.moveaxis(h, 0, -1)  # [*spatial, C * m], parameter maps grouped by parameter
        if len(net.out_shape) == net.spatial:  # no channel axis: maps go along the last axis
            m = net.params_per_value
            h = jnp.concatenate([h[..., i] for i in range(m)], axis=-1)
        return h


class ConvEncoder(_AbstractConvEncoder):
    """2-D conv encoder ``(H, W[, C]) -> [out_size]``.

    :param in_shape: one image, ``(H, W)`` or ``(H, W, C)``.
    :param out_size: outputs (e.g. ``2 * latent_dim`` for a diagonal Gaussian).
    :param channels: widths of the stride-2 stages.
    :param res_blocks: residual blocks after each stage (0 = plain conv net).
    """

    def __init__(
        self,
        in_shape: Sequence[int],
        out_size: int,
        channels: Sequence[int] = (32, 64),
        *,
        res_blocks: int = 0,
        activation: Callable[[Array], Array] = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        self._init(2, _check_shape(in_shape, (2, 3), "ConvEncoder"), out_size, channels, res_blocks, activation, key)


class ConvDecoder(_AbstractConvDecoder):
    """2-D conv decoder ``[in_size] -> (H, W * m)`` or ``(H, W, C * m)``, ``m = params_per_value``."""

    def __init__(
        self,
        in_size: int,
        out_shape: Sequence[int],
        channels: Sequence[int] = (64, 32),
        *,
        params_per_value: int = 1,
        res_blocks: int = 0,
        activation: Callable[[Array], Array] = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        self._init(
            2,
            in_size,
            _check_shape(out_shape, (2, 3), "ConvDecoder"),
            channels,
            res_blocks,
            activation,
            params_per_value,
            key,
        )


class Conv1dEncoder(_AbstractConvEncoder):
    """1-D conv encoder for audio frames ``(T,)`` or ``(T, C)`` -> ``[out_size]``."""

    def __init__(
        self,
        in_shape: Sequence[int],
        out_size: int,
        channels: Sequence[int] = (16, 32),
        *,
        res_blocks: int = 0,
        activation: Callable[[Array], Array] = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        self._init(1, _check_shape(in_shape, (1, 2), "Conv1dEncoder"), out_size, channels, res_blocks, activation, key)


class Conv1dDecoder(_AbstractConvDecoder):
    """1-D conv decoder ``[in_size] -> (T * m,)`` or ``(T, C * m)``."""

    def __init__(
        self,
        in_size: int,
        out_shape: Sequence[int],
        channels: Sequence[int] = (32, 16),
        *,
        params_per_value: int = 1,
        res_blocks: int = 0,
        activation: Callable[[Array], Array] = jax.nn.relu,
        key: PRNGKeyArray,
    ):
        self._init(
            1,
            in_size,
            _check_shape(out_shape, (1, 2), "Conv1dDecoder"),
            channels,
            res_blocks,
            activation,
            params_per_value,
            key,
        )


class Unflatten(eqx.Module):
    """Wrap a flat-output network so its output takes a data shape with ``m`` maps.

    ``net(z) -> [m * prod(shape)]`` becomes ``(*shape[:-1], shape[-1] * m)`` with the
    ``m`` parameter maps concatenated along the last axis (the conditionals' layout).
    """

    net: Callable[[Array], Array]
    shape: tuple[int, ...] = eqx.field(static=True)
    params_per_value: int = eqx.field(static=True)

    def __init__(self, net: Callable[[Array], Array], shape: Sequence[int], params_per_value: int = 1):
        self.net = net
        self.shape = tuple(int(s) for s in shape)
        self.params_per_value = int(params_per_value)

    def __call__(self, z: Array) -> Array:
        h = jnp.reshape(self.net(z), (self.params_per_value, *self.shape))
        return jnp.concatenate(list(h), axis=-1)
