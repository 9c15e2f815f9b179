"""One-hot categorical distribution (numpyro has only the index form)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from numpyro.distributions import constraints


class OneHotCategoricalLogits(nd.Distribution):
    """One-hot categorical over the last axis of ``logits`` (event shape ``[k]``)."""

    arg_constraints = {"logits": constraints.real_vector}
    support = constraints.simplex
    has_rsample = False
    pytree_data_fields = ("logits",)

    def __init__(self, logits, *, validate_args=None):
        self.logits = jnp.asarray(logits)
        super().__init__(
            batch_shape=self.logits.shape[:-1],
            event_shape=self.logits.shape[-1:],
            validate_args=validate_args,
        )

    def sample(self, key, sample_shape=()):
        idx = jax.random.categorical(key, self.logits, shape=tuple(sample_shape) + self.batch_shape)
        return jax.nn.one_hot(idx, self.logits.shape[-1], dtype=self.logits.dtype)

    def log_prob(self, value):
        return jnp.sum(value * jax.nn.log_softmax(self.logits, -1), -1)

    @property
    def probs(self):
        return jax.nn.softmax(self.logits, -1)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        p = self.probs
        return p * (1 - p)

    def entropy(self):
        return -jnp.sum(self.probs * jax.nn.log_softmax(self.logits, -1), -1)
