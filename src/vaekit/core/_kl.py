"""KL divergences: numpyro's closed-form registry, extended, with a Monte Carlo fallback.

Closed forms added here (numpyro has Normal, Beta, Dirichlet, Gamma, CategoricalProbs,
Kumaraswamy-Beta, Weibull-Gamma and Independent/Expanded wrappers):
Laplace-Laplace, BernoulliLogits-BernoulliLogits, CategoricalLogits-CategoricalLogits,
OneHotCategorical-OneHotCategorical.

The closed forms are registered in numpyro's own dispatcher
(``numpyro.distributions.kl.kl_divergence``) when vaekit is imported, so after ``import
vaekit`` numpyro's ``kl_divergence`` knows these pairs too. The registrations are the
ones numpyro itself would need; none replaces a numpyro rule.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions.kl import kl_divergence as _registry

from .._validate import one_of
from ._onehot import OneHotCategoricalLogits

KL_METHODS = ("auto", "analytic", "mc")


@_registry.register(nd.Laplace, nd.Laplace)
def _kl_laplace(p, q):
    # KL = log(b_q/b_p) + |mu_p - mu_q|/b_q + (b_p/b_q) exp(-|mu_p - mu_q|/b_p) - 1
    d = jnp.abs(p.loc - q.loc)
    r = p.scale / q.scale
    return -jnp.log(r) + d / q.scale + r * jnp.exp(-d / p.scale) - 1.0


@_registry.register(nd.BernoulliLogits, nd.BernoulliLogits)
def _kl_bernoulli(p, q):
    lp, lq = p.logits, q.logits
    return jax.nn.sigmoid(lp) * (jax.nn.log_sigmoid(lp) - jax.nn.log_sigmoid(lq)) + jax.nn.sigmoid(-lp) * (
        jax.nn.log_sigmoid(-lp) - jax.nn.log_sigmoid(-lq)
    )


def _kl_logits(lp, lq):
    a, b = jax.nn.log_softmax(lp, -1), jax.nn.log_softmax(lq, -1)
    return jnp.sum(jnp.exp(a) * (a - b), -1)


@_registry.register(nd.CategoricalLogits, nd.CategoricalLogits)
def _kl_categorical(p, q):
    return _kl_logits(p.logits, q.logits)


@_registry.register(OneHotCategoricalLogits, OneHotCategoricalLogits)
def _kl_onehot(p, q):
    return _kl_logits(p.logits, q.logits)


def has_analytic_kl(q: nd.Distribution, p: nd.Distribution) -> bool:
    """True when a closed form is registered for ``KL(q || p)``."""
    try:
        jax.eval_shape(lambda q, p: _registry(q, p), q, p)
    except NotImplementedError:
        return False
    return True


def closed_form(q: nd.Distribution, p: nd.Distribution) -> Array | None:
    """``KL(q || p)`` from the closed-form registry, or ``None`` when none is registered."""
    try:
        return _registry(q, p)
    except NotImplementedError:
        return None


def kl_divergence(
    q: nd.Distribution,
    p: nd.Distribution,
    *,
    method: str = "auto",
    key: PRNGKeyArray | None = None,
    n_samples: int = 1,
) -> Array:
    """``KL(q || p)`` with ``q``'s batch shape.

    :param method: ``"auto"`` (closed form when registered, else Monte Carlo),
        ``"analytic"`` (error when none is registered) or ``"mc"``.
    :param key: needed for Monte Carlo.
    :param n_samples: Monte Carlo samples (reparameterized when ``q`` allows it).
    """
    one_of(method, KL_METHODS, "kl")
    exact = closed_form(q, p) if method != "mc" else None
    if exact is not None:
        return exact
    if method == "analytic":
        raise ValueError(
            f"kl='analytic': no closed-form KL is known for {_name(q)} against "
            f"{_name(p)}. Use kl='mc' (Monte Carlo) or kl='auto'."
        )
    if key is None:
        raise ValueError("Monte Carlo KL needs key=<PRNG key>.")
    z = q.rsample(key, (n_samples,)) if q.has_rsample else q.sample(key, (n_samples,))
    return jnp.mean(q.log_prob(z) - p.log_prob(z), 0)


def _name(d: nd.Distribution) -> str:
    while isinstance(d, nd.Independent):
        d = d.base_dist
    return type(d).__name__
