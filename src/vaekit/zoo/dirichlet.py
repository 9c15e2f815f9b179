"""Dirichlet VAE pieces (Joo, Lee, Park & Moon 2019, "Dirichlet Variational Autoencoder",
arXiv 1901.02739).

* Samplers for the Dirichlet posterior, chosen by ``sampler=``:

  - ``"implicit"``: numpyro's Gamma sampler with implicit reparameterization gradients
    (Figurnov et al. 2018) - exact samples.
  - ``"knowles"``: the paper's approximate inverse Gamma CDF (Knowles 2015),
    ``F^{-1}(u; a) ~= (u a Gamma(a))^(1/a)`` (the leading term of the CDF at small
    ``x``), differentiated directly. Accurate for small ``a`` only. ``newton_steps=n``
    refines it by ``n`` Newton steps on the true CDF (in ``log x``); the gradient
    is then the implicit one, ``dx/da = -(dF/da) / f(x)``.

  Gamma draws ``g_k`` are normalised in log space, ``z = softmax(log g)``, so tiny
  concentrations do not give ``0 / 0``.

* KL terms, chosen by ``kl=``: ``"dirichlet"`` (exact ``KL(Dir(a) || Dir(b))``) or
  ``"multigamma"`` (the paper's KL between the underlying Gamma vectors,
  ``sum_k lgamma(b_k) - lgamma(a_k) + (a_k - b_k) digamma(a_k)``, an upper bound on
  the Dirichlet KL).

* :func:`moment_prior_update`: a ``vk.fit`` callback that sets the prior's
  concentration by the method of moments from the posterior means.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.scipy.special import digamma, gammainc, gammaln
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions.kl import kl_divergence as _registry

from .._validate import int_at_least, one_of, positive_array
from ..core import AbstractDirichlet, Fixed, Prior, event_dims, fixed, value

SAMPLERS = ("implicit", "knowles")
DIRICHLET_KLS = ("dirichlet", "multigamma")


def knowles_log_gamma(u: Array, alpha: Array, newton_steps: int = 0) -> Array:
    """``log F^{-1}(u; alpha)`` for ``Gamma(alpha, 1)``, approximately (Knowles 2015).

    :param u: uniforms in (0, 1), broadcastable with ``alpha``.
    :param newton_steps: Newton refinements on the exact CDF (0 = the paper's formula).
    :returns: ``log x`` with the broadcast shape.
    """
    t = (jnp.log(u) + jnp.log(alpha) + gammaln(alpha)) / alpha
    if newton_steps <= 0:
        return t

    def step(t, a):
        x = jnp.exp(t)
        # dF/dt = f(x) x = exp(a log x - x - lgamma(a))
        dens = jnp.exp(a * t - x - gammaln(a))
        delta = (gammainc(a, x) - u) / jnp.maximum(dens, 1e-30)
        return t - jnp.clip(delta, -2.0, 2.0)

    a0 = jax.lax.stop_gradient(alpha)
    t = jax.lax.stop_gradient(t)
    for _ in range(newton_steps - 1):
        t = step(t, a0)
    # last step differentiable in alpha only: at the root it gives the implicit gradient
    return step(jax.lax.stop_gradient(t), alpha)


class DirichletPosterior(nd.Dirichlet):
    """``nd.Dirichlet`` whose sampler and KL are chosen by options (see module doc)."""

    pytree_aux_fields = ("sampler", "kl_form", "newton_steps")

    def __init__(
        self,
        concentration: ArrayLike,
        *,
        sampler: str = "implicit",
        kl_form: str = "dirichlet",
        newton_steps: int = 0,
        validate_args: bool | None = None,
    ):
        one_of(sampler, SAMPLERS, "sampler")
        one_of(kl_form, DIRICHLET_KLS, "kl")
        self.sampler = sampler
        self.kl_form = kl_form
        self.newton_steps = int(newton_steps)
        super().__init__(concentration, validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        if self.sampler == "implicit":
            return super().sample(key, sample_shape)
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        tiny = jnp.finfo(jnp.float32).tiny
        u = jax.random.uniform(key, shape, minval=tiny, maxval=1.0)
        logg = knowles_log_gamma(u, self.concentration, self.newton_steps)
        z = jax.nn.softmax(logg, -1)
        eps = jnp.finfo(z.dtype).tiny
        return jnp.clip(z, eps, 1.0 - jnp.finfo(z.dtype).eps)

    def rsample(self, key, sample_shape=()):
        return self.sample(key, sample_shape)


def multigamma_kl(alpha_q: Array, alpha_p: Array) -> Array:
    """``KL(prod_k Gamma(alpha_q_k, 1) || prod_k Gamma(alpha_p_k, 1))`` over the last axis."""
    return jnp.sum(gammaln(alpha_p) - gammaln(alpha_q) + (alpha_q - alpha_p) * digamma(alpha_q), -1)


def dirichlet_kl(alpha_q: Array, alpha_p: Array) -> Array:
    """Exact ``KL(Dir(alpha_q) || Dir(alpha_p))`` over the last axis."""
    a0, b0 = jnp.sum(alpha_q, -1), jnp.sum(alpha_p, -1)
    return (
        gammaln(a0)
        - jnp.sum(gammaln(alpha_q), -1)
        - gammaln(b0)
        + jnp.sum(gammaln(alpha_p), -1)
        + jnp.sum((alpha_q - alpha_p) * (digamma(alpha_q) - digamma(a0)[..., None]), -1)
    )


@_registry.register(DirichletPosterior, nd.Dirichlet)
def _kl_dirichlet_posterior(q, p):
    if q.kl_form == "multigamma":
        return multigamma_kl(q.concentration, p.concentration)
    return dirichlet_kl(q.concentration, p.concentration)


class DirichletLatent(AbstractDirichlet):
    """Dirichlet encoder ``q(z|x) = Dir(softplus(net(x)) + floor)`` for the Dirichlet VAE.

    :param sampler: ``"implicit"`` or ``"knowles"`` (see module doc).
    :param kl: ``"dirichlet"`` (exact) or ``"multigamma"`` (the paper's).
    :param newton_steps: refinements of the Knowles sampler (0 = the paper's formula).
    """

    sampler: str = eqx.field(static=True)
    kl_form: str = eqx.field(static=True)
    newton_steps: int = eqx.field(static=True)

    def __init__(
        self,
        net: Callable[[Array], Array],
        *,
        sampler: str = "implicit",
        kl: str = "dirichlet",
        newton_steps: int = 0,
        min_concentration: float = 1e-3,
    ):
        one_of(sampler, SAMPLERS, "sampler")
        one_of(kl, DIRICHLET_KLS, "kl")
        self.net = net
        self.min_concentration = float(min_concentration)
        self.sampler = sampler
        self.kl_form = kl
        self.newton_steps = int(newton_steps)

    def _build(self, params, batch_ndim):
        (alpha,) = params
        d = DirichletPosterior(alpha, sampler=self.sampler, kl_form=self.kl_form, newton_steps=self.newton_steps)
        return d.to_event(event_dims(alpha, batch_ndim, 1))


class DirichletPrior(Prior):
    """Dirichlet prior over ``dim`` simplex coordinates with concentration ``alpha``.

    Fixed by default (Joo et al. 2019 use ``alpha = 0.98``); ``trainable=True`` learns
    ``log alpha`` by gradient, and :func:`moment_prior_update` sets it by the method of
    moments between epochs.
    """

    log_alpha: Array | Fixed

    def __init__(self, dim: int, alpha: ArrayLike = 0.98, *, trainable: bool = False):
        dim = int_at_least(dim, 2, "DirichletPrior(dim): dim")
        a = jnp.broadcast_to(jnp.asarray(alpha, dtype=jnp.float32), (dim,))
        positive_array(a, "DirichletPrior alpha")
        self.log_alpha = jnp.log(a) if trainable else fixed(jnp.log(a))

    @property
    def alpha(self) -> Array:
        return jnp.exp(value(self.log_alpha))

    def dist(self):
        return nd.Dirichlet(jnp.exp(value(self.log_alpha)))


def moments_concentration(p: ArrayLike) -> Array:
    """Method-of-moments Dirichlet concentration from simplex points ``p [n, K]``.

    ``alpha = m * s`` with the mean ``m`` and precision
    ``s = exp(mean_k log(m_k (1 - m_k) / v_k - 1))`` (Ronning 1989), ``v`` the
    per-coordinate variance.
    """
    p = jnp.asarray(p, dtype=jnp.float32)
    m = jnp.mean(p, 0)
    v = jnp.var(p, 0)
    ratio = jnp.maximum(m * (1 - m) / jnp.maximum(v, 1e-12) - 1.0, 1e-6)
    return m * jnp.exp(jnp.mean(jnp.log(ratio)))


def moment_prior_update(
    x: ArrayLike,
    *,
    key: PRNGKeyArray | None = None,
    every: int = 1,
    batch_size: int = 1024,
    min_alpha: float = 1e-3,
    max_alpha: float = 1e3,
) -> Callable[[Any], Any]:
    """A ``vk.fit`` callback: every ``every`` epochs set the prior's concentration to the
    method-of-moments estimate from one posterior draw ``z_n ~ q(z|x_n)`` per example
    (moments of the aggregate posterior), clipped to ``[min_alpha, max_alpha]``.

    The model's prior must be a :class:`DirichletPrior`.
    """
    xs = jnp.asarray(x, dtype=jnp.float32)
    key = jax.random.key(0) if key is None else key

    def callback(state):
        prior = state.model.prior
        if not isinstance(prior, DirichletPrior):
            raise TypeError(
                f"moment_prior_update needs a model with a vk.DirichletPrior prior, got {type(prior).__name__}."
            )
        if state.epoch % every:
            return None
        k = jax.random.fold_in(key, state.epoch)
        draws = jnp.concatenate(
            [
                state.model.posterior(xs[i : i + batch_size]).sample(jax.random.fold_in(k, i))
                for i in range(0, xs.shape[0], batch_size)
            ]
        )
        alpha = jnp.clip(moments_concentration(draws), min_alpha, max_alpha)
        new = fixed(jnp.log(alpha)) if isinstance(prior.log_alpha, Fixed) else jnp.log(alpha)
        model = eqx.tree_at(lambda m: m.prior.log_alpha, state.model, new)
        return state._replace(model=model)

    return callback
