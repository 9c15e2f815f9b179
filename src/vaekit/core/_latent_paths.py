"""Moving through the latent space: interpolation between two examples and traversal of
one latent coordinate, decoded to data space.

``interpolate(model, a, b, n=10)`` encodes both examples to their posterior means and
decodes ``n`` points on the path between them (the straight line; a great-circle arc
with ``method="slerp"`` for Gaussian priors, where most prior mass lies near a sphere;
Dirichlet latents stay on the simplex, since the straight line between two points of
the simplex lies in it). ``traverse(model, x, dim, values)`` decodes the posterior mean
of ``x`` with coordinate ``dim`` set to each value.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike
from jaxtyping import Array

from .._validate import int_at_least, one_of
from ._conditionals import AbstractDirichlet
from ._model import AbstractVAE

METHODS = ("linear", "slerp")


class LatentPath(NamedTuple):
    """Points of a latent path ``z [n, *latent]`` and their decoder means ``mean [n, *data]``."""

    z: Array
    mean: Array


@eqx.filter_jit
def posterior_mean(model: AbstractVAE, x: ArrayLike) -> Array:
    """Mean of q(z|x) for a batch ``x [batch, *data]``: ``[batch, *latent]``.

    On the simplex for Dirichlet latents, probabilities for Bernoulli/categorical ones;
    a flow posterior gives its base mean pushed through the flow.
    """
    x = jnp.asarray(x)
    try:
        return jnp.asarray(model.encoder.mean(x))
    except NotImplementedError:  # families without a closed-form mean: the location
        params = model.encoder.parameters(x)
        return jnp.asarray(params.get("loc", next(iter(params.values()))))


def on_simplex(model: AbstractVAE) -> bool:
    """Whether the latent codes live on the probability simplex (a Dirichlet encoder)."""
    return isinstance(model.encoder, AbstractDirichlet)


def _one(model: AbstractVAE, x: ArrayLike, name: str) -> Array:
    """One example ``[*data]`` (a leading axis of size 1 is accepted)."""
    a = jnp.asarray(x, jnp.float32)
    shape = model.data_shape
    if tuple(a.shape) == (1, *shape):
        a = a[0]
    if tuple(a.shape) != shape:
        raise ValueError(
            f"{name} must be one example of shape {shape} (or [1, {', '.join(map(str, shape))}]), "
            f"got shape {tuple(a.shape)}. Pass x[i], not a batch."
        )
    return a


def _slerp(z0: Array, z1: Array, t: Array) -> Array:
    """Spherical interpolation of flat vectors ``z0, z1`` at ``t [n]``: ``[n, d]``."""
    n0, n1 = jnp.linalg.norm(z0), jnp.linalg.norm(z1)
    cos = jnp.clip(jnp.dot(z0, z1) / jnp.maximum(n0 * n1, 1e-12), -1.0, 1.0)
    omega = jnp.arccos(cos)
    so = jnp.sin(omega)
    t = t[:, None]
    lin = (1 - t) * z0 + t * z1
    arc = (jnp.sin((1 - t) * omega) * z0 + jnp.sin(t * omega) * z1) / jnp.where(so > 1e-6, so, 1.0)
    return jnp.where(so > 1e-6, arc, lin)


def interpolate(
    model: AbstractVAE, x_from: ArrayLike, x_to: ArrayLike, n: int = 10, *, method: str = "linear"
) -> LatentPath:
    """Decoder means along the latent path between the posterior means of two examples.

    :param x_from: one example ``[*data]``; the path starts at its posterior mean.
    :param x_to: one example ``[*data]``; the path ends at its posterior mean.
    :param n: number of points, endpoints included (``n >= 2``).
    :param method: ``"linear"`` (default; on the simplex for Dirichlet latents) or
        ``"slerp"`` (spherical, for Gaussian priors; not for simplex latents).
    :returns: :class:`LatentPath` with ``z [n, *latent]`` and ``mean [n, *data]``;
        ``mean[0]`` and ``mean[-1]`` are the decoded posterior means of the endpoints.
    """
    int_at_least(n, 2, "n")
    one_of(method, METHODS, "method")
    if method == "slerp" and on_simplex(model):
        raise ValueError(
            "method='slerp' leaves the simplex; Dirichlet latents use method='linear' (it stays on the simplex)."
        )
    a, b = _one(model, x_from, "x_from"), _one(model, x_to, "x_to")
    return _interpolate(model, a, b, n, method)


@eqx.filter_jit
def _interpolate(model: AbstractVAE, a: Array, b: Array, n: int, method: str) -> LatentPath:
    mu = posterior_mean(model, jnp.stack([a, b]))
    shape = mu.shape[1:]
    z0, z1 = mu[0].reshape(-1), mu[1].reshape(-1)
    t = jnp.linspace(0.0, 1.0, n)
    if method == "slerp":
        z = _slerp(z0, z1, t)
    else:
        z = (1 - t)[:, None] * z0 + t[:, None] * z1
    z = jnp.concatenate([z0[None], z[1:-1], z1[None]]) if n > 2 else jnp.stack([z0, z1])  # exact endpoints
    z = z.reshape(n, *shape)
    return LatentPath(z, model.decoder.mean(z))


def traverse(model: AbstractVAE, x: ArrayLike, dim: int, values: ArrayLike) -> LatentPath:
    """Decoder means of the posterior mean of ``x`` with latent coordinate ``dim`` set to each of ``values``.

    For Dirichlet latents the other coordinates are rescaled so that every point stays
    on the simplex (``values`` must then lie in [0, 1]).

    :param x: one example ``[*data]``.
    :param dim: index into the flattened latent vector.
    :param values: ``[m]`` values for that coordinate.
    :returns: :class:`LatentPath` with ``z [m, *latent]`` and ``mean [m, *data]``.
    """
    a = _one(model, x, "x")
    mu = posterior_mean(model, a[None])[0]
    shape = mu.shape
    flat = mu.reshape(-1)
    d = flat.shape[0]
    if not isinstance(dim, int | np.integer) or isinstance(dim, bool) or not -d <= dim < d:
        raise ValueError(f"dim must be an int in [0, {d}) (the latent has {d} coordinates), got {dim!r}.")
    dim = int(dim) % d
    v = jnp.asarray(values, jnp.float32).reshape(-1)
    if v.size == 0:
        raise ValueError("values is empty; pass the values to set the coordinate to.")
    z = jnp.tile(flat, (v.shape[0], 1))
    if on_simplex(model):
        if bool(jnp.any((v < 0) | (v > 1))):
            raise ValueError("For a Dirichlet latent the traversed coordinate must stay in [0, 1].")
        rest = jnp.maximum(1.0 - flat[dim], 1e-12)
        z = z * ((1.0 - v)[:, None] / rest)
    z = z.at[:, dim].set(v).reshape(v.shape[0], *shape)
    return LatentPath(z, decoder_mean(model, z))


@eqx.filter_jit
def decoder_mean(model: AbstractVAE, z: ArrayLike) -> Array:
    """``model.decoder.mean(z)`` compiled as one function (``z [batch, *latent]``)."""
    return model.decoder.mean(z)
