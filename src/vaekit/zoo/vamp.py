"""The VampPrior VAE (Tomczak & Welling 2018, "VAE with a VampPrior", arXiv 1705.07120).

The prior is the encoder's aggregate posterior over ``K`` learned pseudo-inputs,
``p(z) = 1/K sum_k q(z | u_k)``; encoder and prior share the same weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as nd

from ..core._fixed import resolve
from ..core._conditionals import Conditional
from ..core._model import VAE
from ..core._priors import VampPrior


class VampVAE(VAE):
    """A :class:`vaekit.VAE` whose prior is a :class:`vaekit.VampPrior` over its own encoder.

    :param prior: ``VampPrior`` holding pseudo-inputs ``[K, *data]`` (see
        :meth:`VampPrior.from_data`).
    """

    def __init__(self, prior: VampPrior, encoder: Conditional, decoder: Conditional):
        if not isinstance(prior, VampPrior):
            raise TypeError(f"VampVAE needs a vk.VampPrior, got {type(prior).__name__}.")
        super().__init__(prior, encoder, decoder)

    def prior_dist(self) -> nd.Distribution:
        m = resolve(self)
        return m.prior.mixture(m.encoder)

    @property
    def latent_shape(self) -> tuple[int, ...]:
        shape = jax.eval_shape(lambda m: jnp.zeros(m.prior_dist().event_shape), self).shape
        return tuple(shape)
