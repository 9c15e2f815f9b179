"""Objectives and estimators: ELBO, IWAE bound, importance-sampled log-likelihood.

All functions take a batch ``x: [batch, *data]`` and return per-example values
``[batch]`` in nats. They are pure and work under ``jit``, ``vmap`` and ``grad``.

Gradient estimators (``estimator=``):

* ``"reparam"``: differentiate through ``z = g(eps, phi)`` (location-scale families;
  Gamma/Beta/Dirichlet through implicit gradients of numpyro's samplers).
* ``"reinforce"``: score function ``E[(f(z) - b) grad log q(z|x)]`` (:func:`score_function`). The returned value
  is still the objective; only its gradient changes. The baseline ``b`` is the
  leave-one-out mean over the other latent samples (``n_samples > 1``) or over the
  other examples of the batch (``n_samples == 1``), so the estimator stays unbiased.
  For the IWAE bound the VIMCO leave-one-out baseline is used.
* ``"auto"``: ``"reparam"`` when the encoder distribution has a reparameterized
  sampler (numpyro's ``has_rsample``), else ``"reinforce"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of, positive_int
from ._checks import support_fix, support_hint
from ._fixed import resolve
from ._kl import KL_METHODS, closed_form, kl_divergence
from ._model import AbstractVAE

ESTIMATORS = ("auto", "reparam", "reinforce")


def check_options(kl: str | None = None, estimator: str | None = None, **ints: int) -> None:
    """Refuse an unknown ``kl`` or ``estimator`` and ints (given by name) below 1."""
    if kl is not None:
        one_of(kl, KL_METHODS, "kl")
    if estimator is not None:
        one_of(estimator, ESTIMATORS, "estimator")
    for name, v in ints.items():
        positive_int(v, name)


def resolve_estimator(q: nd.Distribution, estimator: str) -> str:
    """``"auto"`` -> ``"reparam"`` if ``q`` has a reparameterized sampler, else ``"reinforce"``."""
    check_options(estimator=estimator)
    if estimator == "auto":
        return "reparam" if q.has_rsample else "reinforce"
    if estimator == "reparam" and not q.has_rsample:
        raise ValueError(
            f"estimator='reparam': the encoder distribution {type(q).__name__} has no "
            "reparameterized sampler. Use estimator='reinforce' (or 'auto')."
        )
    return estimator


def _draw(q: nd.Distribution, key: PRNGKeyArray, n: int, estimator: str) -> Array:
    if estimator == "reparam":
        return q.rsample(key, (n,))
    return jax.lax.stop_gradient(q.sample(key, (n,)))


def loo_mean(f: Array, axis: int) -> Array:
    """Leave-one-out mean along ``axis`` (0 if that axis has length 1): the baseline of
    each entry is the mean of the others, which does not depend on it."""
    n = f.shape[axis]
    if n == 1:
        return jnp.zeros_like(f)
    return (jnp.sum(f, axis, keepdims=True) - f) / (n - 1)


def score_function(signal: Array, logq: Array) -> Array:
    """The score-function (REINFORCE, Williams 1992) term: zero in value, gradient
    ``signal * grad log q`` (``signal`` is not differentiated). Every REINFORCE estimator
    of vaekit adds it: ``signal`` is the learning signal minus a baseline."""
    return jax.lax.stop_gradient(signal) * (logq - jax.lax.stop_gradient(logq))


def _check_support(model: AbstractVAE, x: Array, name: str) -> None:
    """Refuse data outside the decoder's support (its log-density there is meaningless,
    yet often finite). Skipped when ``x`` is traced (inside ``jit``/``vmap``/``grad``):
    ``vk.fit`` checks its data once, up front."""
    if isinstance(x, jax.core.Tracer):
        return
    ok = model.decoder.support_check(x)
    if isinstance(ok, jax.core.Tracer) or bool(jnp.all(ok)):
        return
    bad = jnp.logical_not(ok)
    example = x.reshape(-1)[jnp.argmax(bad.reshape(-1))] if bad.shape == x.shape else None
    raise ValueError(
        f"{name}: x has values outside the support of the decoder {type(model.decoder).__name__} "
        f"({support_hint(model.decoder)}): {int(jnp.sum(bad))} bad value(s)"
        + (f", e.g. {float(example)!r}" if example is not None else "")
        + f". {support_fix(model.decoder)}"
    )


class ElboParts(NamedTuple):
    """The pieces of the ELBO estimate of a batch (see :func:`elbo_parts`)."""

    value: Array  # [batch] the ELBO estimate
    signal: Array  # [n_samples, batch] the learning signal f of each latent sample
    logq: Array  # [n_samples, batch] log q(z|x) of the samples
    estimator: str  # "reparam" or "reinforce"


def elbo_parts(
    model: AbstractVAE,
    x: Array,
    key: PRNGKeyArray,
    *,
    beta: float | Array = 1.0,
    n_samples: int = 1,
    kl: str = "auto",
    estimator: str = "auto",
) -> ElboParts:
    """The ELBO of ``x [batch, *data]`` with its learning signal, before any score-function
    term: ``f = log p(x|z)`` when the KL is taken in closed form (``value = mean(f) -
    beta KL``), else ``f = log p(x|z) + beta (log p(z) - log q(z|x))`` (``value =
    mean(f)``); ``z`` are ``n_samples`` draws from ``q(z|x)`` with ``key``."""
    q = model.posterior(x)
    p = model.prior_dist()
    est = resolve_estimator(q, estimator)
    z = _draw(q, key, n_samples, est)  # [S, B, *latent]
    logpx = model.likelihood(z, batch_ndim=2).log_prob(x)  # [S, B]
    analytic = None if kl == "mc" else closed_form(q, p)
    if analytic is None and kl == "analytic":
        kl_divergence(q, p, method="analytic")  # raises the error that names the pair
    logq = q.log_prob(z)  # [S, B]
    if analytic is not None:
        return ElboParts(jnp.mean(logpx, 0) - beta * analytic, logpx, logq, est)
    f = logpx + beta * (p.log_prob(z) - logq)
    return ElboParts(jnp.mean(f, 0), f, logq, est)


def elbo(
    model: AbstractVAE,
    x: ArrayLike,
    key: PRNGKeyArray,
    *,
    beta: float | Array = 1.0,
    n_samples: int = 1,
    kl: str = "auto",
    estimator: str = "auto",
) -> Array:
    """Evidence lower bound ``E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))``.

    :param x: ``[batch, *data]``.
    :param beta: weight of the KL term (beta-VAE; KL warm-up).
    :param n_samples: latent samples per example (averaged).
    :param kl: ``"auto"``, ``"analytic"`` or ``"mc"`` (see :func:`vaekit.kl_divergence`).
    :param estimator: ``"auto"``, ``"reparam"`` or ``"reinforce"``.
    :returns: ``[batch]`` ELBO per example, nats.
    """
    check_options(kl=kl, estimator=estimator, n_samples=n_samples)
    model = resolve(model)
    x = jnp.asarray(x)
    _check_support(model, x, "vk.elbo")
    parts = elbo_parts(model, x, key, beta=beta, n_samples=n_samples, kl=kl, estimator=estimator)
    if parts.estimator == "reinforce":
        f = parts.signal
        baseline = loo_mean(f, 0 if n_samples > 1 else 1)
        return parts.value + jnp.mean(score_function(f - baseline, parts.logq), 0)
    return parts.value


#: (example, latent sample) pairs the evaluation functions pass through the decoder at
#: once: enough rows for efficient matmuls, few enough that the decoder's activations stay
#: in the CPU caches (a 784-500-2 decoder with its Bernoulli log-prob ran 1.3-2x faster
#: on tiles of 2048-8192 pairs than on 32,768 or more at once; BENCHMARKS.md).
TILE_PAIRS = 4096


def decoder_log_prob(model: AbstractVAE, z: Any, x: Array) -> Array:
    """``log p(x | z)`` for ``z [k, batch, *latent]`` and ``x [batch, *data]``: ``[k, batch]``.

    When ``k * batch`` exceeds ``2 * TILE_PAIRS`` the decoder runs over the samples in
    tiles of about ``TILE_PAIRS`` pairs (a ``lax.map``; the values are those of one
    pass, up to float rounding)."""
    leaves = jax.tree_util.tree_leaves(z)
    k, b = leaves[0].shape[:2]
    kc = max(1, TILE_PAIRS // b)
    if k * b <= 2 * TILE_PAIRS or k <= kc:
        return model.likelihood(z, batch_ndim=2).log_prob(x)
    n = -(-k // kc)

    def tiles(a: Array) -> Array:
        if n * kc > k:  # pad with copies of the last sample, dropped below
            a = jnp.concatenate([a, jnp.broadcast_to(a[-1:], (n * kc - k, *a.shape[1:]))])
        return jnp.reshape(a, (n, kc, *a.shape[1:]))

    out = jax.lax.map(lambda zc: model.likelihood(zc, batch_ndim=2).log_prob(x), jax.tree.map(tiles, z))
    return jnp.reshape(out, (n * kc, b))[:k]


def log_weights_given(
    model: AbstractVAE, q: nd.Distribution, x: Array, key: PRNGKeyArray, k: int, estimator: str
) -> tuple[Array, Array]:
    """:func:`log_weights` with the encoder's distribution ``q = model.posterior(x)`` given."""
    z = _draw(q, key, k, estimator)  # [K, B, *latent]
    logq = q.log_prob(z)
    logw = decoder_log_prob(model, z, x) + model.prior_dist().log_prob(z) - logq
    return logw, logq


def log_weights(model: AbstractVAE, x: Array, key: PRNGKeyArray, k: int, estimator: str) -> tuple[Array, Array]:
    """Importance log-weights ``log p(x, z_i) - log q(z_i|x)`` of ``k`` draws ``z_i ~ q(z|x)``
    and their ``log q``: both ``[k, batch]``."""
    return log_weights_given(model, model.posterior(x), x, key, k, estimator)


def iwae_bound(model: AbstractVAE, x: ArrayLike, key: PRNGKeyArray, *, k: int, estimator: str = "auto") -> Array:
    """Importance-weighted bound ``E[log (1/k) sum_i p(x, z_i) / q(z_i|x)]`` (Burda et al. 2015).

    ``k = 1`` is the ELBO with a Monte Carlo KL. Non-decreasing in ``k`` and at most
    ``log p(x)``.

    :returns: ``[batch]`` nats.
    """
    check_options(estimator=estimator, k=k)
    model = resolve(model)
    x = jnp.asarray(x)
    _check_support(model, x, "vk.iwae_bound")
    est = resolve_estimator(model.posterior(x), estimator)
    logw, logq = log_weights(model, x, key, k, est)  # the decoder in tiles when k * batch is large
    value = jax.nn.logsumexp(logw, 0) - math.log(k)
    if est == "reinforce":
        # VIMCO (Mnih & Rezende 2016): baseline for sample j replaces log w_j by the
        # mean of the other log-weights.
        if k > 1:
            others = (jnp.sum(logw, 0, keepdims=True) - logw) / (k - 1)
            eye = jnp.eye(k, dtype=bool)[:, :, None]  # [j, i, 1]
            swapped = jnp.where(eye, others[:, None, :], logw[None, :, :])
            base = jax.nn.logsumexp(swapped, 1) - math.log(k)  # [K, B]
        else:
            base = loo_mean(logw, 1)
        value = value + jnp.sum(score_function(value[None] - base, logq), 0)
    return value


def _stream_logsumexp(carry, new):
    m, s = carry
    m2 = jnp.maximum(m, jnp.max(new, 0))
    s = s * jnp.exp(m - m2) + jnp.sum(jnp.exp(new - m2[None]), 0)
    return m2, s


@eqx.filter_jit
def _ll_block(model, xb, keys, n_samples: int, chunk: int, est: str):
    """Log-likelihood of one block of examples: ``xb [b, *data]`` -> ``[b]``.

    Each example is encoded once; its samples go in chunks of ``chunk`` (keys
    ``fold_in(key_i, c)``) into a streaming log-sum-exp, and the examples in groups of
    about ``TILE_PAIRS // chunk`` (a ``lax.map``), so that each decoder pass works on
    about ``TILE_PAIRS`` (example, sample) pairs."""
    n_chunks = -(-n_samples // chunk)

    def one_example(inp):
        xi, ki = inp
        xi = xi[None]
        q = model.posterior(xi)

        def one_chunk(carry, c):
            logw = log_weights_given(model, q, xi, jax.random.fold_in(ki, c), chunk, est)[0][:, 0]
            idx = c * chunk + jnp.arange(chunk)
            logw = jnp.where(idx < n_samples, logw, -jnp.inf)
            return _stream_logsumexp(carry, logw), None

        init = (jnp.full((), -jnp.inf), jnp.zeros(()))
        (m, s), _ = jax.lax.scan(one_chunk, init, jnp.arange(n_chunks))
        return m + jnp.log(s) - math.log(n_samples)

    group = max(1, min(xb.shape[0], TILE_PAIRS // chunk))
    return jax.lax.map(one_example, (xb, keys), batch_size=group)


def log_likelihood(
    model: AbstractVAE,
    x: ArrayLike,
    key: PRNGKeyArray,
    *,
    n_samples: int = 5000,
    chunk_size: int = 500,
    block_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Array:
    """Importance-sampled ``log p(x) ~= log (1/K) sum_k p(x, z_k) / q(z_k|x)``, ``z_k ~ q``.

    Consistent: the estimate tends to ``log p(x)`` as ``n_samples`` grows, and its
    expectation is a lower bound (the IWAE bound with ``k = n_samples``).

    Memory is bounded: examples go in blocks of ``block_size`` (one compiled call each;
    ``max(1, 2**16 // chunk_size)`` by default) and samples in chunks of ``chunk_size``,
    with a streaming log-sum-exp. Each example is encoded once, and within a block the
    decoder runs on groups of about ``TILE_PAIRS // chunk_size`` examples (at least
    one), i.e. on about 4,096 (example, sample) pairs at a time (with the default
    ``chunk_size``: 8 examples x 500 samples, about 4,000 x (widest layer) x 4 bytes of
    activations), whatever the number of examples or samples. The result for an example
    does not depend on the blocking or the grouping (its keys are ``fold_in(key, index)``).

    :param x: ``[batch, *data]``.
    :param progress: called with the number of examples finished after each block
        (e.g. a progress bar's ``update``); the blocks are then waited for one by one.
    :returns: ``[batch]`` nats.
    """
    check_options(n_samples=n_samples, chunk_size=chunk_size)
    model = resolve(model)
    x = jnp.asarray(x)
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError("log_likelihood needs a non-empty batch x of shape [batch, *data].")
    _check_support(model, x, "vk.log_likelihood")
    # Only the value matters here; non-reparameterizable latents are simply sampled.
    est = "reparam" if model.posterior(x[:1]).has_rsample else "reinforce"
    chunk = min(chunk_size, n_samples)
    block = block_size or max(1, 2**16 // chunk)
    n = x.shape[0]
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n))
    out = []
    for start in range(0, n, block):
        xb, kb = x[start : start + block], keys[start : start + block]
        pad = block - xb.shape[0] if n > block else 0
        if pad:  # keep one compiled shape for every block
            xb = jnp.concatenate([xb, jnp.repeat(xb[-1:], pad, 0)])
            kb = jnp.concatenate([kb, jnp.repeat(kb[-1:], pad, 0)])
        out.append(_ll_block(model, xb, kb, n_samples, chunk, est)[: block - pad])
        if progress is not None:
            progress(int(out[-1].block_until_ready().shape[0]))
    return jnp.concatenate(out)
