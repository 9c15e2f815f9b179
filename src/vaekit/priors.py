"""Priors p(z). Each is an equinox module with ``dist()``, ``log_prob`` and ``sample``.

Trainable parameters are plain arrays; wrap one in ``vk.fixed`` to keep it constant,
e.g. ``vk.Normal(vk.fixed(jnp.zeros(d)), jnp.ones(d))`` trains only the scale.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from ._fixed import Fixed, fixed, resolve, value
from ._onehot import OneHotCategoricalLogits


class Prior(eqx.Module):
    """Base class. ``dist()`` returns a numpyro distribution with event shape ``[*latent]``."""

    def dist(self) -> nd.Distribution:
        raise NotImplementedError

    def log_prob(self, z: ArrayLike) -> Array:
        """``log p(z)``: ``[*batch]`` for ``z`` of shape ``[*batch, *latent]``."""
        return resolve(self).dist().log_prob(jnp.asarray(z))

    def sample(self, key: PRNGKeyArray, n: int) -> Array:
        """``n`` draws: ``[n, *latent]``."""
        return resolve(self).dist().sample(key, (n,))

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(jax.eval_shape(lambda p: jnp.zeros(p.dist().event_shape), resolve(self)).shape)


def _positive_array(name: str, a: ArrayLike) -> None:
    if not bool(jnp.all(jnp.asarray(a) > 0)):
        raise ValueError(f"{name} must be positive everywhere.")


class StandardNormal(Prior):
    """``N(0, I)`` over ``dim`` latent dimensions (no parameters)."""

    dim: int = eqx.field(static=True)

    def __init__(self, dim: int):
        if not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"StandardNormal(dim): dim must be a positive int, got {dim!r}.")
        self.dim = dim

    def dist(self):
        return nd.Normal(jnp.zeros(self.dim), jnp.ones(self.dim)).to_event(1)


class Normal(Prior):
    """Diagonal Gaussian ``N(loc, diag(scale^2))`` with trainable ``loc`` and ``scale``.

    The scale is stored as its logarithm. Wrap either argument in ``vk.fixed`` to keep
    it constant.
    """

    loc: Array | Fixed
    log_scale: Array | Fixed

    def __init__(self, loc: ArrayLike | Fixed, scale: ArrayLike | Fixed):
        is_fixed = isinstance(scale, Fixed)
        s = jnp.asarray(scale.value if is_fixed else scale, dtype=jnp.float32)
        _positive_array("Normal prior scale", s)
        loc_arr = loc if isinstance(loc, Fixed) else jnp.asarray(loc, dtype=jnp.float32)
        if jnp.ndim(value(loc_arr)) != 1:
            raise ValueError("Normal prior loc must be a 1-D array [latent_dim].")
        s = jnp.broadcast_to(s, jnp.shape(value(loc_arr)))
        self.loc = loc_arr
        self.log_scale = fixed(jnp.log(s)) if is_fixed else jnp.log(s)

    def dist(self):
        return nd.Normal(value(self.loc), jnp.exp(value(self.log_scale))).to_event(1)


class MixtureOfGaussians(Prior):
    """Mixture of ``k`` diagonal Gaussians in ``dim`` dimensions; all parameters trained.

    Means start at ``N(0, spread^2)`` draws, scales at ``scale``, weights uniform.
    """

    logits: Array | Fixed
    locs: Array | Fixed
    log_scales: Array | Fixed

    def __init__(self, k: int, dim: int, *, key: PRNGKeyArray, scale: float = 1.0, spread: float = 1.0):
        if k < 1 or dim < 1:
            raise ValueError(f"MixtureOfGaussians needs k >= 1 and dim >= 1, got k={k}, dim={dim}.")
        self.logits = jnp.zeros(k)
        self.locs = spread * jax.random.normal(key, (k, dim))
        self.log_scales = jnp.full((k, dim), jnp.log(scale))

    def dist(self):
        comp = nd.Normal(value(self.locs), jnp.exp(value(self.log_scales))).to_event(1)
        return nd.MixtureSameFamily(nd.CategoricalLogits(value(self.logits)), comp)


class BernoulliPrior(Prior):
    """Independent Bernoulli latents, ``dim`` of them, with (by default fixed) logits."""

    logits: Array | Fixed

    def __init__(self, dim: int, logits: ArrayLike = 0.0, *, trainable: bool = False):
        lg = jnp.broadcast_to(jnp.asarray(logits, dtype=jnp.float32), (dim,))
        self.logits = lg if trainable else fixed(lg)

    def dist(self):
        return nd.BernoulliLogits(value(self.logits)).to_event(1)


class CategoricalPrior(Prior):
    """``dim`` one-hot categorical latents with ``num_classes`` each (uniform by default)."""

    logits: Array | Fixed

    def __init__(self, dim: int, num_classes: int, *, trainable: bool = False):
        lg = jnp.zeros((dim, num_classes))
        self.logits = lg if trainable else fixed(lg)

    def dist(self):
        return OneHotCategoricalLogits(value(self.logits)).to_event(1)
