"""The VAE: a prior p(z), an encoder q(z|x) and a decoder p(x|z), plus helpers."""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from ._conditionals import Conditional
from ._fixed import resolve
from ._priors import Prior


class AbstractVAE(eqx.Module):
    """Abstract base of the VAEs: a prior p(z), an encoder q(z|x) and a decoder p(x|z).

    Concrete classes (:class:`VAE`, :class:`vaekit.VampVAE`, :class:`vaekit.BaselineVAE`)
    implement :meth:`prior_dist`; everything else is shared.

    :param Prior prior: p(z), a :class:`vaekit.Prior`.
    :param Conditional encoder: q(z|x), a :class:`vaekit.Conditional` over latents.
    :param Conditional decoder: p(x|z), a :class:`vaekit.Conditional` over data.
    """

    prior: Prior
    encoder: Conditional
    decoder: Conditional

    def __check_init__(self):
        for name, part, cls in (
            ("prior", self.prior, Prior),
            ("encoder", self.encoder, Conditional),
            ("decoder", self.decoder, Conditional),
        ):
            if not isinstance(part, cls):
                raise TypeError(
                    f"VAE {name} must be a vaekit {cls.__name__} (e.g. "
                    f"{'vk.StandardNormal(d)' if cls is Prior else 'vk.Gaussian(net)'}), "
                    f"got {type(part).__name__}."
                )

    @abc.abstractmethod
    def prior_dist(self) -> nd.Distribution:
        """p(z): event shape ``[*latent]``."""

    def posterior(self, x: ArrayLike) -> nd.Distribution:
        """q(z|x) for a batch ``x: [batch, *data]``: batch ``[batch]``, event ``[*latent]``."""
        return self.encoder.dist(x)

    def likelihood(self, z: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        """p(x|z) for ``z: [*batch, *latent]``: event shape ``[*data]``."""
        return self.decoder.dist(z, batch_ndim)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        """Event shape of the prior (the shape of one latent code)."""
        return tuple(eqx.filter_eval_shape(lambda m: jnp.zeros(m.prior_dist().event_shape), self).shape)

    @property
    def data_shape(self) -> tuple[int, ...]:
        """Event shape of the decoder's distribution (the shape of one example)."""
        zs = self.latent_shape

        def f(m):
            return jnp.zeros(m.likelihood(jnp.zeros((1, *zs))).event_shape)

        return tuple(eqx.filter_eval_shape(f, self).shape)


class VAE(AbstractVAE):
    """A variational autoencoder; an equinox module holding all its parameters.

    ``VAE(prior, encoder, decoder)``: see :class:`AbstractVAE` for the parts. Example, a
    2-D Gaussian latent for 784-pixel binary images::

        k1, k2 = jax.random.split(jax.random.key(0))
        model = vk.VAE(
            prior=vk.StandardNormal(2),
            encoder=vk.Gaussian(vk.MLP(784, 2 * 2, hidden=(500,), key=k1), variance="diag"),
            decoder=vk.Bernoulli(vk.MLP(2, 784, hidden=(500,), key=k2)),
        )
        model.posterior(x)  # q(z|x) for x [batch, 784]: batch shape [batch], event shape [2]
        model.latent_shape, model.data_shape  # (2,), (784,)
    """

    def prior_dist(self) -> nd.Distribution:
        return resolve(self.prior).dist()


class Samples(NamedTuple):
    """Latent codes and decoded data: ``z [n, *latent]``, ``mean``/``x [n, *data]``."""

    z: Array
    mean: Array
    x: Array


def sample(model: AbstractVAE, key: PRNGKeyArray, n: int, y: ArrayLike | None = None) -> Samples:
    """Draw ``n`` codes from the prior and decode them: decoder means and samples.

    ``y``: the condition ``[n, ...]`` of a conditional model (``model.given(y)``), e.g. class labels."""
    if y is not None or hasattr(model, "given"):
        if y is None or not hasattr(model, "given"):
            raise ValueError(
                f"y= is for conditional models: {type(model).__name__} "
                + ("needs y (one label or value per sample)." if y is None else "takes no y; drop it.")
            )
        y = jnp.asarray(y)
        if y.shape[:1] != (n,):
            raise ValueError(f"y must have one entry per sample (n={n}), got shape {tuple(y.shape)}.")
        model = model.given(y)  # type: ignore[attr-defined]
    kz, kx = jax.random.split(key)
    z = model.prior_dist().sample(kz, (n,))  # prior_dist: a VampPrior needs the encoder
    return Samples(z, model.decoder.mean(z), model.likelihood(z).sample(kx))


def encode(model: AbstractVAE, x: ArrayLike) -> dict[str, Array]:
    """Posterior parameters of q(z|x), by name (e.g. ``loc`` and ``scale``), ``[batch, ...]``."""
    return model.encoder.parameters(x)


def reconstruct(model: AbstractVAE, x: ArrayLike, key: PRNGKeyArray) -> Samples:
    """Encode ``x``, draw one ``z ~ q(z|x)``, decode: ``(z, decoder mean, decoder sample)``."""
    kz, kx = jax.random.split(key)
    z = model.posterior(x).sample(kz)
    return Samples(z, model.decoder.mean(z), model.likelihood(z).sample(kx))
