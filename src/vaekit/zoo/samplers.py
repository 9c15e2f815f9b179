"""Latent samplers fitted after training (pythae's ``GaussianMixtureSampler``).

A VAE whose aggregate posterior ``q(z) = mean_i q(z | x_i)`` is far from its prior (an
under-regularized model: small ``beta``, a large latent space) decodes prior draws that
land where no training code lies. :func:`fit_latent_sampler` fits a Gaussian mixture
(scikit-learn) to the training codes instead and draws from it.

The sampler is a :class:`vaekit.Prior` (a full-covariance Gaussian mixture), so it can also
replace the prior of a model: ``eqx.tree_at(lambda m: m.prior, model, sampler)``.
"""

# no ``from __future__ import annotations``: equinox reads class annotations at creation.
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of, positive_int
from ..core import AbstractVAE, Prior, Samples, as_data, resolve

KINDS = ("gmm",)
CODES = ("mean", "sample")


class GaussianMixtureSampler(Prior):
    """A mixture of ``K`` full-covariance Gaussians over flattened codes, reshaped to the
    latent shape: weights ``softmax(logits) [K]``, ``means [K, D]``, ``scale_tril [K, D, D]``
    (Cholesky factors of the covariances)."""

    logits: Array
    means: Array
    scale_tril: Array
    latent_shape: tuple[int, ...] = eqx.field(static=True)

    def dist(self) -> nd.Distribution:
        mix = nd.MixtureSameFamily(
            nd.CategoricalLogits(self.logits),
            nd.MultivariateNormal(self.means, scale_tril=self.scale_tril),
        )
        if len(self.latent_shape) == 1:
            return mix
        return _Reshaped(mix, self.latent_shape)

    def generate(self, model: AbstractVAE, key: PRNGKeyArray, n: int) -> Samples:
        """``n`` codes from the mixture, decoded by ``model``: ``vk.Samples(z, mean, x)``."""
        kz, kx = jax.random.split(key)
        z = self.sample(kz, n)
        return Samples(z, model.decoder.mean(z), model.likelihood(z).sample(kx))


class _Reshaped(nd.Distribution):
    """A distribution over flat vectors ``[D]`` seen with event shape ``shape``."""

    arg_constraints = {}  # noqa: RUF012
    pytree_data_fields = ("base",)
    pytree_aux_fields = ("value_shape",)

    def __init__(self, base: nd.Distribution, shape: tuple[int, ...]):
        self.base, self.value_shape = base, tuple(shape)
        super().__init__(batch_shape=(), event_shape=self.value_shape)

    def sample(self, key, sample_shape=()):
        z = self.base.sample(key, sample_shape)
        return jnp.reshape(z, (*z.shape[:-1], *self.value_shape))

    def log_prob(self, value):
        v = jnp.asarray(value)
        return self.base.log_prob(jnp.reshape(v, (*v.shape[: v.ndim - len(self.value_shape)], -1)))


def latent_codes(
    model: AbstractVAE,
    x: Any,
    key: PRNGKeyArray,
    *,
    codes: str = "mean",
    batch_size: int = 1000,
) -> np.ndarray:
    """The codes of ``x [n, *data]``: posterior means (``codes="mean"``) or one posterior draw
    each (``"sample"``), ``[n, *latent]``, computed in batches of ``batch_size``."""
    one_of(codes, CODES, "codes")
    model = resolve(model)
    x = as_data(x)

    @eqx.filter_jit
    def encode(m, xb, k):
        return m.encoder.mean(xb) if codes == "mean" else m.posterior(xb).sample(k)

    out = []
    for i, start in enumerate(range(0, len(x), batch_size)):
        xb = jnp.asarray(x[start : start + batch_size], jnp.float32)
        out.append(np.asarray(encode(model, xb, jax.random.fold_in(key, i))))
    return np.concatenate(out)


def fit_latent_sampler(
    model: AbstractVAE,
    x: Any,
    *,
    kind: str = "gmm",
    n_components: int = 10,
    codes: str = "mean",
    covariance_type: str = "full",
    seed: int = 0,
    key: PRNGKeyArray | None = None,
) -> GaussianMixtureSampler:
    """Fit a Gaussian mixture (scikit-learn's ``GaussianMixture``) to the codes of the
    training data ``x`` and return it as a sampler: ``sampler.generate(model, key, n)``
    decodes ``n`` draws (like ``vk.sample``, which draws from the prior instead).

    :param kind: ``"gmm"`` (the only kind for now).
    :param n_components: mixture components (at most the number of examples).
    :param codes: ``"mean"`` (posterior means, as pythae) or ``"sample"`` (one draw each).
    :param covariance_type: scikit-learn's ``"full"``, ``"diag"``, ``"tied"`` or ``"spherical"``.
    :param seed: scikit-learn's ``random_state``; ``key`` draws the codes for ``codes="sample"``.
    """
    one_of(kind, KINDS, "kind")
    one_of(covariance_type, ("full", "diag", "tied", "spherical"), "covariance_type")
    positive_int(n_components, "n_components")
    try:
        from sklearn.mixture import GaussianMixture
    except ImportError:
        raise ImportError(
            "fit_latent_sampler needs scikit-learn: pip install 'vaekit[anomaly]' (or scikit-learn)."
        ) from None
    z = latent_codes(model, x, jax.random.key(seed) if key is None else key, codes=codes)
    shape = tuple(z.shape[1:])
    flat = z.reshape(len(z), -1).astype(np.float64)
    if n_components > len(flat):
        raise ValueError(f"n_components={n_components} is more than the {len(flat)} examples; pass fewer components.")
    gm = GaussianMixture(n_components, covariance_type=covariance_type, random_state=seed).fit(flat)
    d = flat.shape[1]
    cov = np.asarray(gm.covariances_)
    if covariance_type == "diag":
        cov = np.stack([np.diag(c) for c in cov])
    elif covariance_type == "tied":
        cov = np.broadcast_to(cov, (n_components, d, d))
    elif covariance_type == "spherical":
        cov = cov[:, None, None] * np.eye(d)
    tril = np.linalg.cholesky(cov)
    return GaussianMixtureSampler(
        jnp.asarray(np.log(gm.weights_), jnp.float32),
        jnp.asarray(gm.means_, jnp.float32),
        jnp.asarray(tril, jnp.float32),
        shape,
    )
