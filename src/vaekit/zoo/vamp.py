"""The VampPrior VAE (Tomczak & Welling 2018, "VAE with a VampPrior", arXiv 1705.07120).

The prior is the encoder's aggregate posterior over ``K`` learned pseudo-inputs,
``p(z) = 1/K sum_k q(z | u_k)``; encoder and prior share the same weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of, positive_int
from ..core import AbstractVAE, Conditional, Fixed, Prior, diagonal_normal_mixture, resolve, value


class VampPrior(Prior):
    """VampPrior (Tomczak & Welling 2018): ``p(z) = 1/K sum_k q(z | u_k)``.

    Holds the ``K`` trainable pseudo-inputs ``u [K, *data]``; the mixture needs the
    encoder, so use it inside :class:`VampVAE` (whose ``prior_dist()`` builds the
    mixture with the model's own encoder). Build with :meth:`from_data` to initialise
    from the data.
    """

    pseudo_inputs: Array | Fixed

    def __init__(self, pseudo_inputs: ArrayLike):
        u = jnp.asarray(pseudo_inputs, dtype=jnp.float32)
        if u.ndim < 2 or u.shape[0] < 1:
            raise ValueError(f"VampPrior pseudo_inputs must be [K, *data] with K >= 1, got shape {u.shape}.")
        self.pseudo_inputs = u

    @classmethod
    def from_data(
        cls, x: ArrayLike, k: int, *, key: PRNGKeyArray, init: str = "random", noise: float = 0.01
    ) -> VampPrior:
        """``k`` pseudo-inputs from data ``x [n, *data]``.

        :param init: ``"random"`` (``k`` distinct random training examples) or
            ``"mean"`` (the data mean plus ``N(0, noise^2)`` jitter, as in the paper's code).
        """
        x = jnp.asarray(x, dtype=jnp.float32)
        one_of(init, ("random", "mean"), "init")
        k = positive_int(k, "VampPrior.from_data k (the number of pseudo-inputs)")
        if init == "random":
            if k > x.shape[0]:
                raise ValueError(f"init='random' needs k <= number of examples ({x.shape[0]}), got k={k}.")
            idx = jax.random.choice(key, x.shape[0], (k,), replace=False)
            return cls(x[idx])
        mean = jnp.mean(x, 0)
        return cls(mean[None] + noise * jax.random.normal(key, (k, *mean.shape)))

    def mixture(self, encoder: Conditional) -> nd.Distribution:
        """``1/K sum_k q(z | u_k)`` for ``encoder`` (a :class:`vaekit.Conditional`)."""
        comp = encoder.dist(value(self.pseudo_inputs))  # batch [K]
        return diagonal_normal_mixture(jnp.zeros(comp.batch_shape[0]), comp)

    def dist(self):
        """Refused: the mixture needs the encoder (see :meth:`mixture`)."""
        raise ValueError(
            "VampPrior needs the encoder: use it in vk.VampVAE (model.prior_dist()), or call prior.mixture(encoder)."
        )


class VampVAE(AbstractVAE):
    """A VAE whose prior is a :class:`VampPrior` over its own encoder.

    :param VampPrior prior: ``VampPrior`` holding pseudo-inputs ``[K, *data]`` (see
        :meth:`VampPrior.from_data`).
    """

    def __check_init__(self):
        if not isinstance(self.prior, VampPrior):
            raise TypeError(f"VampVAE needs a vk.VampPrior, got {type(self.prior).__name__}.")

    def prior_dist(self) -> nd.Distribution:
        m = resolve(self)
        return m.prior.mixture(m.encoder)
