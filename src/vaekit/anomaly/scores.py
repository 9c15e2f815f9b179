"""Anomaly scores of a trained VAE: one value per example, higher = more anomalous.

Every score takes ``(model, x, key)`` with ``x: [batch, *data]`` and returns ``[batch]``
(nats, or a negated log-density). Scores are computed in blocks of ``batch_size``
examples (the last one padded) by one jit-compiled function per method and model.
Every example uses the same ``key`` (common random numbers): an example's score does
not depend on its position or on the other rows, and the Monte Carlo noise is shared
between examples, which keeps their ranking stable.

Methods (``L`` = ``n_samples`` draws ``z_l ~ q(z|x)``; ``mu`` = mean of ``q(z|x)``):

================================  ================================================
``elbo``                          ``-ELBO`` (analytic KL where one exists), averaged
                                  over ``L`` samples (:func:`negative_elbo`)
``log_likelihood``                ``-log p(x)`` by importance sampling with ``L``
                                  samples (the IWAE estimate)
``reconstruction``                ``-(1/L) sum_l log p(x | z_l)``
``reconstruction_mean``           ``-log p(x | z = mu)``
``reconstruction_probability``    ``-log (1/L) sum_l p(x | z_l)`` (An & Cho 2015),
                                  computed as a log-mean-exp
``latent``                        ``-log p(mu)`` under the prior
``jacodeco``                      ``-[log p(x | mu) + log p(mu) - sum_i log s_i(J)]``
                                  (Smidl, Bim & Pevny 2019)
================================  ================================================

References:

* J. An, S. Cho (2015). Variational autoencoder based anomaly detection using
  reconstruction probability. SNU Data Mining Center, Special Lecture on IE 2(1).
* V. Smidl, J. Bim, T. Pevny (2019). Anomaly scores for generative models.
  arXiv:1905.11890.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of, positive_int
from ..core import TILE_PAIRS, AbstractVAE, check_data, log_weights, resolve
from ..core import elbo as _elbo

METHODS = (
    "elbo",
    "log_likelihood",
    "reconstruction",
    "reconstruction_mean",
    "reconstruction_probability",
    "latent",
    "jacodeco",
)


def _latent_mean(model: AbstractVAE, x: Array) -> Array:
    """Mean of ``q(z|x)`` for ``x [1, *data]``: ``[1, *latent]``."""
    return model.posterior(x).mean


def _recon_logps(model: AbstractVAE, x: Array, key: PRNGKeyArray, n: int) -> Array:
    """``log p(x | z_l)`` for ``z_l ~ q(z|x)``, ``x [1, *data]``: ``[n, 1]``."""
    z = model.posterior(x).sample(key, (n,))  # [n, 1, *latent]
    return model.likelihood(z, batch_ndim=2).log_prob(x)


def _jacodeco_one(model: AbstractVAE, x: Array) -> Array:
    """JacoDeco for ``x [1, *data]``: ``[1]``."""
    mu = _latent_mean(model, x)  # [1, *latent]
    logpx = model.likelihood(mu).log_prob(x)  # [1]
    logpz = model.prior_dist().log_prob(mu)  # [1]
    zshape = mu.shape[1:]

    def decoder_mean(zflat):
        return jnp.reshape(model.decoder.mean(jnp.reshape(zflat, (1, *zshape))), (-1,))

    jac = jax.jacfwd(decoder_mean)(jnp.reshape(mu, (-1,)))  # [n_data, n_latent]
    s = jnp.linalg.svd(jac, compute_uv=False)
    # A latent direction the decoder ignores exactly (s = 0) would give +inf; floor it.
    return -(logpx + logpz - jnp.sum(jnp.log(jnp.maximum(s, 1e-30))))


def _score_one(model: AbstractVAE, x: Array, key: PRNGKeyArray, method: str, n_samples: int) -> Array:
    """Score of one example ``x [1, *data]`` -> ``[1]``."""
    if method == "elbo":
        return -_elbo(model, x, key, n_samples=n_samples)
    if method == "reconstruction":
        return -jnp.mean(_recon_logps(model, x, key, n_samples), 0)
    if method == "reconstruction_probability":
        lp = _recon_logps(model, x, key, n_samples)
        return -(jax.nn.logsumexp(lp, 0) - math.log(n_samples))
    if method == "log_likelihood":
        est = "reparam" if model.posterior(x).has_rsample else "reinforce"
        logw, _ = log_weights(model, x, key, n_samples, est)  # [L, 1]
        return -(jax.nn.logsumexp(logw, 0) - math.log(n_samples))
    if method == "reconstruction_mean":
        return -model.likelihood(_latent_mean(model, x)).log_prob(x)
    if method == "latent":
        return -model.prior_dist().log_prob(_latent_mean(model, x))
    if method == "jacodeco":
        return _jacodeco_one(model, x)
    raise AssertionError(method)


#: methods that pass ``n_samples`` latent draws per example through the decoder
SAMPLED = ("elbo", "log_likelihood", "reconstruction", "reconstruction_probability")


def score_block(model: AbstractVAE, xb: Array, key: PRNGKeyArray, method: str, n_samples: int) -> Array:
    """Scores of the rows of ``xb [B, *data]`` -> ``[B]``, without checks or jit (a
    traceable building block, e.g. for ``vmap`` over a stacked ensemble).

    The rows go in groups of about ``TILE_PAIRS / n_samples`` (a ``lax.map``), so each
    decoder pass works on about ``TILE_PAIRS`` (example, sample) pairs."""
    group = max(1, TILE_PAIRS // (n_samples if method in SAMPLED else 1))
    one = lambda xi: _score_one(model, xi[None], key, method, n_samples)[0]  # noqa: E731
    if group >= xb.shape[0]:
        return jax.vmap(one)(xb)
    return jax.lax.map(one, xb, batch_size=group)


@eqx.filter_jit
def _score_block(model: AbstractVAE, xb: Array, key: PRNGKeyArray, method: str, n_samples: int) -> Array:
    return score_block(model, xb, key, method, n_samples)


def check_method(method: str) -> str:
    """``method`` when it is one of :data:`METHODS`; a clear error otherwise."""
    return one_of(method, METHODS, "anomaly score method")


def score(
    model: AbstractVAE,
    x: ArrayLike,
    key: PRNGKeyArray,
    *,
    method: str = "elbo",
    n_samples: int = 16,
    batch_size: int = 512,
) -> Array:
    """Anomaly score of each example of ``x`` (higher = more anomalous).

    :param model: a trained :class:`vaekit.VAE`.
    :param x: ``[batch, *data]``, validated like training data (finite, numeric,
        matching the model's data shape).
    :param key: PRNG key; the same key gives the same scores.
    :param method: one of :data:`METHODS` (see the module docstring).
    :param n_samples: ``L``, latent samples per example for the stochastic methods
        (importance samples for ``log_likelihood``).
    :param batch_size: examples per compiled block (memory vs. speed).
    :returns: ``[batch]`` float32 scores.
    """
    check_method(method)
    positive_int(n_samples, "n_samples")
    positive_int(batch_size, "batch_size")
    model = resolve(model)
    xa = check_data(model, x, "x")
    n = xa.shape[0]
    block = batch_size
    if method == "log_likelihood":  # bound the (example, sample) pairs alive at once
        block = max(1, min(batch_size, 2**16 // n_samples))
    out = []
    for start in range(0, n, block):
        xb = xa[start : start + block]
        pad = block - xb.shape[0]
        if pad:  # one compiled shape for every block
            xb = jnp.concatenate([xb, jnp.repeat(xb[-1:], pad, 0)])
        out.append(_score_block(model, xb, key, method, n_samples)[: block - pad])
    return jnp.concatenate(out)


def _named(method: str, doc: str, name: str | None = None):
    def f(model: AbstractVAE, x: ArrayLike, key: PRNGKeyArray, *, n_samples: int = 16, batch_size: int = 512) -> Array:
        return score(model, x, key, method=method, n_samples=n_samples, batch_size=batch_size)

    f.__name__ = f.__qualname__ = name or method
    f.__doc__ = f"{doc}\n\n``x [batch, *data]`` -> ``[batch]``; see :func:`score`."
    return f


negative_elbo = _named(
    "elbo",
    'Negative ELBO averaged over ``n_samples`` latent draws (``method="elbo"`` of :func:`score`).',
    "negative_elbo",
)
log_likelihood = _named("log_likelihood", "Negative importance-sampled ``log p(x)`` (``n_samples`` samples).")
reconstruction = _named("reconstruction", "``-(1/L) sum_l log p(x | z_l)``, ``z_l ~ q(z|x)``.")
reconstruction_mean = _named("reconstruction_mean", "``-log p(x | z = mean of q(z|x))``.")
reconstruction_probability = _named(
    "reconstruction_probability",
    "An & Cho (2015): ``-log (1/L) sum_l p(x | z_l)``, ``z_l ~ q(z|x)``, as a log-mean-exp.",
)
latent = _named("latent", "``-log p(mu)`` under the prior, ``mu`` the mean of ``q(z|x)``.")
jacodeco = _named(
    "jacodeco",
    """JacoDeco (Smidl, Bim & Pevny 2019, "Anomaly scores for generative models",
arXiv:1905.11890).

The density of ``x`` near the decoder's manifold, by the change of variables of the
decoder mean ``f`` at the posterior mean ``mu``:
``log p(x) ~= log p(x | mu) + log p(mu) - 1/2 log det(J^T J)``, where ``J = df/dz (mu)``
``[n_data, n_latent]`` and ``1/2 log det(J^T J) = sum_i log s_i(J)`` (its singular
values; ``jax.jacfwd`` + SVD). The score is the negation.""",
)
