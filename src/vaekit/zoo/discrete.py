"""Discrete latents: REINFORCE with baselines, and the Gumbel-softmax / Concrete relaxation.

Bernoulli and categorical latents use the existing conditionals as encoders
(``vk.Bernoulli(net)``, ``vk.Categorical(net, k, one_hot=True)``) with
``vk.BernoulliPrior`` / ``vk.CategoricalPrior``.

* :func:`reinforce_objective`: score-function (REINFORCE, Williams 1992) loss for
  ``vk.fit(objective=...)`` with a variance-reducing baseline ``b``:
  ``"loo"`` (leave-one-out mean of the other samples/examples), ``"learned"`` (an
  input-dependent baseline network ``b(x)`` held in a :class:`BaselineVAE` and fitted
  by least squares to the learning signal, as in NVIL, Mnih & Gregor 2014), both, or
  none. Any baseline that does not depend on the sample keeps the gradient unbiased.
  VIMCO (Mnih & Rezende 2016) is ``vk.fit(objective="iwae", n_samples=k,
  estimator="reinforce")``.
* :class:`GumbelSoftmax`: the Concrete / Gumbel-softmax relaxation (Maddison et al.
  2017, arXiv 1611.00712; Jang et al. 2017, arXiv 1611.01144): ``z = softmax((logits +
  g) / tau)``, reparameterized, with the exact Concrete density; pair it with
  :class:`ConcretePrior` (KL by Monte Carlo).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.scipy.special import gammaln
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions import constraints

from .._validate import int_at_least, one_of, positive_int
from ..core import (
    AbstractFamily,
    AbstractVAE,
    Conditional,
    Fixed,
    OneHotCategoricalLogits,
    Prior,
    elbo_parts,
    event_dims,
    fixed,
    loo_mean,
    resolve,
    score_function,
    value,
)

BASELINES = ("loo", "learned", "loo+learned", "none")


class Concrete(nd.Distribution):
    """Concrete (Gumbel-softmax) distribution over the simplex of the last axis.

    Density (Maddison et al. 2017, eq. 10) for ``y`` on the simplex, ``n`` classes:
    ``(n-1)! tau^(n-1) prod_k (p_k y_k^(-tau-1)) / (sum_k p_k y_k^(-tau))^n``.
    """

    arg_constraints = {"logits": constraints.real_vector, "temperature": constraints.positive}
    support = constraints.simplex
    reparametrized_params = ["logits"]
    pytree_data_fields = ("logits", "temperature")

    def __init__(self, logits, temperature=0.5, *, validate_args=None):
        self.logits = jnp.asarray(logits)
        self.temperature = jnp.asarray(temperature, dtype=self.logits.dtype)
        super().__init__(
            batch_shape=self.logits.shape[:-1], event_shape=self.logits.shape[-1:], validate_args=validate_args
        )

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return True

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        g = jax.random.gumbel(key, shape)
        y = jax.nn.softmax((self.logits + g) / self.temperature, -1)
        tiny = jnp.finfo(y.dtype).tiny
        return jnp.clip(y, tiny, 1.0)

    def rsample(self, key, sample_shape=()):
        return self.sample(key, sample_shape)

    def log_prob(self, y):
        n = self.logits.shape[-1]
        tau = self.temperature
        logp = jax.nn.log_softmax(self.logits, -1)
        logy = jnp.log(jnp.clip(y, jnp.finfo(jnp.result_type(y)).tiny, 1.0))
        return (
            gammaln(n)
            + (n - 1) * jnp.log(tau)
            + jnp.sum(logp - (tau + 1) * logy, -1)
            - n * jax.nn.logsumexp(logp - tau * logy, -1)
        )

    @property
    def mean(self):
        return jax.nn.softmax(self.logits, -1)  # the tau -> 0 limit; used as the code


class GumbelSoftmax(AbstractFamily):
    """``d`` relaxed one-hot latents with ``num_classes`` each; net outputs ``d * k`` logits.

    :param temperature: Concrete temperature ``tau`` (lower = closer to one-hot, higher
        gradient variance; Maddison et al. suggest ``2/3``).
    """

    num_classes: int = eqx.field(static=True)
    temperature: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = constraints.simplex

    def __init__(self, net: Callable[[Array], Array], num_classes: int, *, temperature: float = 2.0 / 3.0):
        num_classes = int_at_least(num_classes, 2, "GumbelSoftmax num_classes")
        if not temperature > 0:
            raise ValueError(f"GumbelSoftmax temperature must be positive, got {temperature!r}.")
        self.net = net
        self.num_classes = num_classes
        self.temperature = float(temperature)

    def _params(self, x):
        out = self.net(x)
        k = self.num_classes
        if out.shape[-1] % k:
            raise ValueError(
                f"GumbelSoftmax with num_classes={k} needs a network output size that is a "
                f"multiple of {k}; got {out.shape[-1]}."
            )
        return (jnp.reshape(out, (*out.shape[:-1], -1, k)),)

    def _build(self, params, batch_ndim):
        (logits,) = params
        return Concrete(logits, self.temperature).to_event(event_dims(logits, batch_ndim, 1))


class ConcretePrior(Prior):
    """``dim`` relaxed one-hot latents, uniform logits, temperature ``temperature``."""

    logits: Array | Fixed
    temperature: float = eqx.field(static=True)

    def __init__(self, dim: int, num_classes: int, *, temperature: float = 2.0 / 3.0):
        dim = positive_int(dim, "ConcretePrior dim")
        num_classes = int_at_least(num_classes, 2, "ConcretePrior num_classes")
        self.logits = fixed(jnp.zeros((dim, num_classes)))
        self.temperature = float(temperature)

    def dist(self):
        return Concrete(value(self.logits), self.temperature).to_event(1)


class BaselineVAE(AbstractVAE):
    """A VAE with a learned REINFORCE baseline ``b(x)`` (for :func:`reinforce_objective`).

    :param baseline: a network ``x -> [1]`` or ``x -> []`` for one example (e.g.
        ``vk.MLP(n_features, 1, (32,), key=k)``), or ``None`` for a learned constant.
    """

    baseline: Any
    baseline_offset: Array

    def __init__(self, prior: Prior, encoder: Conditional, decoder: Conditional, baseline: Any = None):
        self.prior = prior
        self.encoder = encoder
        self.decoder = decoder
        self.baseline = baseline
        self.baseline_offset = jnp.zeros(())

    def prior_dist(self) -> nd.Distribution:
        return resolve(self.prior).dist()

    def baseline_value(self, x: Array) -> Array:
        """``b(x)``: ``[batch]``."""
        m = resolve(self)
        if m.baseline is None:
            return jnp.broadcast_to(m.baseline_offset, x.shape[:1])
        out = jax.vmap(m.baseline)(x)
        return jnp.reshape(out, (x.shape[0],)) + m.baseline_offset


def reinforce_surrogate(
    model: AbstractVAE,
    x: Array,
    key: PRNGKeyArray,
    *,
    n_samples: int = 1,
    baseline: str = "loo",
    beta: float = 1.0,
) -> Array:
    """Per-example surrogate whose value is the ELBO and whose gradient is REINFORCE.

    ``value = E_q[f] (- beta KL analytically when known)``, gradient
    ``mean_s (f_s - b) grad log q(z_s|x)`` plus the pathwise terms of ``f``, where
    ``f = log p(x|z) (+ beta (log p(z) - log q(z|x)) without a closed-form KL)``: the
    ELBO's own learning signal (:func:`vaekit.core.elbo_parts`) and score-function term
    (:func:`vaekit.core.score_function`). With a learned baseline the squared error
    ``(f - b(x))^2`` is added with zero value, so its gradient fits ``b``.

    :returns: ``[batch]`` (maximise).
    """
    one_of(baseline, BASELINES, "baseline")
    positive_int(n_samples, "n_samples")
    learned = baseline in ("learned", "loo+learned")
    if learned and not isinstance(model, BaselineVAE):
        raise TypeError(
            f"baseline={baseline!r} needs a vk.BaselineVAE (a VAE with a baseline network); "
            f"got {type(model).__name__}. Use baseline='loo' for a plain VAE."
        )
    model = resolve(model)
    x = jnp.asarray(x)
    parts = elbo_parts(model, x, key, beta=beta, n_samples=n_samples, estimator="reinforce")
    sg = jax.lax.stop_gradient
    f = parts.signal
    b = jnp.zeros_like(f)
    if baseline in ("loo", "loo+learned"):
        b = b + loo_mean(sg(f), 0 if n_samples > 1 else 1)
    out = parts.value
    if learned:
        bx = model.baseline_value(x)[None]  # [1, B]
        resid = sg(f) - b - bx
        b = b + sg(bx)
        fit = jnp.mean(resid**2, 0)
        out = out - (fit - sg(fit))
    return out + jnp.mean(score_function(f - b, parts.logq), 0)


def reinforce_objective(
    *, n_samples: int = 1, baseline: str = "loo", beta: float | Callable[[Array], Array] = 1.0
) -> Callable[[AbstractVAE, Array, PRNGKeyArray, Array], Array]:
    """A loss ``(model, x, key, step) -> [batch]`` for ``vk.fit(objective=...)``.

    :param baseline: ``"loo"``, ``"learned"`` (needs :class:`BaselineVAE`),
        ``"loo+learned"`` or ``"none"``.
    :param beta: KL weight or schedule ``beta(step)``.
    """
    one_of(baseline, BASELINES, "baseline")

    def loss(model, x, key, step):
        b = beta(step) if callable(beta) else beta
        return -reinforce_surrogate(model, x, key, n_samples=n_samples, baseline=baseline, beta=b)

    return loss


def exact_elbo(model: AbstractVAE, x: Array) -> Array:
    """ELBO by enumerating every latent state (tiny Bernoulli/one-hot latents only).

    :returns: ``[batch]``.
    """
    model = resolve(model)
    x = jnp.asarray(x)
    q = model.posterior(x)
    p = model.prior_dist()
    states = _states(q)
    logq = q.log_prob(states[:, None])  # [N, B]
    zs = jnp.broadcast_to(states[:, None], (states.shape[0], x.shape[0], *states.shape[1:]))
    f = model.likelihood(zs, batch_ndim=2).log_prob(x) + p.log_prob(states)[:, None] - logq
    return jnp.sum(jnp.exp(logq) * f, 0)


def _states(q: nd.Distribution) -> Array:
    base = q
    while isinstance(base, nd.Independent):
        base = base.base_dist
    shape = q.event_shape
    if isinstance(base, nd.BernoulliLogits):
        d = math.prod(shape)
        if d > 16:
            raise ValueError(f"exact_elbo enumerates 2^d states; d={d} is too many (<= 16).")
        bits = (jnp.arange(2**d)[:, None] >> jnp.arange(d)[None]) & 1
        return jnp.reshape(bits.astype(jnp.float32), (-1, *shape))
    if isinstance(base, OneHotCategoricalLogits):
        *lead, k = shape
        d = math.prod(lead)
        if k**d > 2**16:
            raise ValueError(f"exact_elbo would enumerate {k}^{d} states; too many.")
        idx = jnp.stack(jnp.meshgrid(*[jnp.arange(k)] * d, indexing="ij"), -1).reshape(-1, d)
        return jnp.reshape(jax.nn.one_hot(idx, k), (-1, *shape))
    raise ValueError(f"exact_elbo supports Bernoulli and one-hot Categorical latents, got {type(base).__name__}.")
