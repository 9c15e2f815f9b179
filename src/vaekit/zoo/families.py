"""Reparameterized families beyond the Gaussian, and their conditional (encoder/decoder) forms.

The distributions are numpyro's, which sample them by their inverse CDF ``x = F^{-1}(u;
theta)``, ``u ~ Uniform(0, 1)``, so ``dx/dtheta`` is the pathwise (reparameterization)
gradient. vaekit adds what numpyro lacks: the inverse CDF (and CDF) of the Kumaraswamy
and Weibull distributions, a Weibull sampler whose gradient stays finite at ``u -> 0``,
and the closed-form KL between two exponential distributions.

==================  ====================  ========================================  ==========
distribution        parameters            inverse CDF ``F^{-1}(u)``                 support
==================  ====================  ========================================  ==========
``Exponential``     rate                  ``-log(1 - u) / rate``                    (0, inf)
``Cauchy``          loc, scale            ``loc + scale tan(pi (u - 1/2))``         real
``Logistic``        loc, scale            ``loc + scale (log u - log(1 - u))``      real
``Gumbel``          loc, scale            ``loc - scale log(-log u)``               real
``Kumaraswamy``     a, b                  ``(1 - (1 - u)^(1/b))^(1/a)``             (0, 1)
``Weibull``         scale, concentration  ``scale (-log(1 - u))^(1/concentration)`` (0, inf)
==================  ====================  ========================================  ==========

The conditional forms (``vk.Exponential(net)`` etc.) read their parameters from a
network exactly like :class:`vaekit.Gaussian`: positive parameters are
``softplus(raw) + floor``; ``CauchyConditional``/``LogisticConditional``/``GumbelConditional``
take the ``variance=`` options of ``Gaussian`` (net outputs ``2d`` for ``"diag"``);
``ExponentialConditional`` needs ``d`` outputs, ``KumaraswamyConditional`` and
``WeibullConditional`` ``2d``. (``vk.Cauchy`` is the conditional, ``vk.families.Cauchy``
the distribution.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions import constraints
from numpyro.distributions.kl import kl_divergence as _registry

from ..core import AbstractFamily, AbstractLocScale, event_dims, positive, split_outputs

# numpyro's own classes: sampled by the inverse CDF, reparameterized, with cdf and icdf.
Exponential = nd.Exponential
Cauchy = nd.Cauchy
Logistic = nd.Logistic
Gumbel = nd.Gumbel


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...]) -> Array:
    """``u`` strictly inside (0, 1) so every inverse CDF and its gradient stay finite."""
    tiny = jnp.finfo(jnp.float32).tiny
    return jax.random.uniform(key, shape, minval=tiny, maxval=1.0)


class Kumaraswamy(nd.Kumaraswamy):
    """numpyro's Kumaraswamy ``(a, b)`` on (0, 1), with its CDF ``1 - (1 - x^a)^b`` and
    inverse CDF (numpyro has neither)."""

    def icdf(self, u):
        a, b = self.concentration1, self.concentration0
        # (1 - (1 - u)^(1/b))^(1/a) in a form that keeps precision near 0 and 1
        inner = -jnp.expm1(jnp.log1p(-u) / b)
        x = jnp.exp(jnp.log(inner) / a)
        eps = jnp.finfo(x.dtype).eps
        return jnp.clip(x, eps, 1.0 - eps)

    def cdf(self, value):
        a, b = self.concentration1, self.concentration0
        return -jnp.expm1(b * jnp.log1p(-(value**a)))


class Weibull(nd.Weibull):
    """numpyro's Weibull ``(scale, concentration)`` with its inverse CDF, sampled from
    ``u`` strictly inside (0, 1): ``jax.random.weibull_min`` can draw ``u = 0``, where
    the gradient with respect to the concentration is NaN."""

    def icdf(self, u):
        return self.scale * jnp.exp(jnp.log(-jnp.log1p(-u)) / self.concentration)

    def sample(self, key, sample_shape=()):
        return self.icdf(_uniform(key, tuple(sample_shape) + self.batch_shape))


# --- closed-form KLs (numpyro has Kumaraswamy-Beta and Weibull-Gamma) ------------------


@_registry.register(nd.Exponential, nd.Exponential)
def _kl_exponential(p, q):
    r = q.rate / p.rate
    return -jnp.log(r) + r - 1.0


# --- conditional forms -----------------------------------------------------------------


class CauchyConditional(AbstractLocScale):
    """Cauchy ``(loc, scale)`` per dimension (inverse-CDF reparameterized); options as
    ``Gaussian``. Its mean is undefined: :meth:`mean` gives the location. Exported as
    ``vk.Cauchy``; the distribution is ``vk.families.Cauchy`` (numpyro's)."""

    def _base(self, loc, scale):
        return Cauchy(loc, scale)


class LogisticConditional(AbstractLocScale):
    """Logistic ``(loc, scale)`` per dimension (inverse-CDF reparameterized); options as ``Gaussian``."""

    def _base(self, loc, scale):
        return Logistic(loc, scale)


class GumbelConditional(AbstractLocScale):
    """Gumbel ``(loc, scale)`` per dimension (inverse-CDF reparameterized); options as
    ``Gaussian``. Its mean is ``loc + 0.5772 scale``."""

    def _base(self, loc, scale):
        return Gumbel(loc, scale)


class ExponentialConditional(AbstractFamily):
    """Exponential with ``rate = softplus(net(x)) + min_rate``; net outputs ``d``."""

    min_rate: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = constraints.positive

    def __init__(self, net: Callable[[Array], Array], *, min_rate: float = 1e-3):
        self.net = net
        self.min_rate = float(min_rate)

    def _params(self, x):
        return (positive(self.net(x), "softplus", self.min_rate),)

    def _build(self, params, batch_ndim):
        (rate,) = params
        return Exponential(rate).to_event(event_dims(rate, batch_ndim))


class KumaraswamyConditional(AbstractFamily):
    """Kumaraswamy ``(a, b)`` per dimension on (0, 1); net outputs ``2d`` (a then b)."""

    floor: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = constraints.open_interval(0.0, 1.0)

    def __init__(self, net: Callable[[Array], Array], *, floor: float = 1e-3):
        self.net = net
        self.floor = float(floor)

    def _params(self, x):
        a, b = split_outputs(self.net(x), 2, "KumaraswamyConditional", "two concentrations per dimension (2*d)")
        return positive(a, "softplus", self.floor), positive(b, "softplus", self.floor)

    def _build(self, params, batch_ndim):
        a, b = params
        return Kumaraswamy(a, b).to_event(event_dims(a, batch_ndim))


class WeibullConditional(AbstractFamily):
    """Weibull ``(scale, concentration)`` per dimension; net outputs ``2d``."""

    floor: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = constraints.positive

    def __init__(self, net: Callable[[Array], Array], *, floor: float = 1e-3):
        self.net = net
        self.floor = float(floor)

    def _params(self, x):
        a, b = split_outputs(self.net(x), 2, "WeibullConditional", "a scale and a concentration per dimension (2*d)")
        return positive(a, "softplus", self.floor), positive(b, "softplus", self.floor)

    def _build(self, params, batch_ndim):
        scale, concentration = params
        return Weibull(scale, concentration).to_event(event_dims(scale, batch_ndim))


#: latent name -> conditional class, for the families of this module
CONDITIONALS: dict[str, type[AbstractFamily]] = {
    "exponential": ExponentialConditional,
    "cauchy": CauchyConditional,
    "logistic": LogisticConditional,
    "gumbel": GumbelConditional,
    "kumaraswamy": KumaraswamyConditional,
    "weibull": WeibullConditional,
}
