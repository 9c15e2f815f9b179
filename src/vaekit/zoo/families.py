"""Inverse-CDF reparameterized families and their conditional (encoder/decoder) forms.

A draw is ``x = F^{-1}(u; theta)`` with ``u ~ Uniform(0, 1)``, so ``dx/dtheta`` is the
derivative of the closed-form inverse CDF (the pathwise / reparameterization gradient).

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
``softplus(raw) + floor``; ``Cauchy``/``Logistic``/``Gumbel`` take the ``variance=``
options of ``Gaussian`` (net outputs ``2d`` for ``"diag"``); ``Exponential`` needs
``d`` outputs, ``Kumaraswamy`` and ``Weibull`` ``2d``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions import constraints
from numpyro.distributions.kl import kl_divergence as _registry
from numpyro.distributions.util import promote_shapes

from ..core._conditionals import Conditional, _LocScale, _event_dims, _positive, _split

EULER_GAMMA = 0.5772156649015329


def _uniform(key: PRNGKeyArray, shape: tuple[int, ...]) -> Array:
    """``u`` strictly inside (0, 1) so every inverse CDF stays finite."""
    tiny = jnp.finfo(jnp.float32).tiny
    return jax.random.uniform(key, shape, minval=tiny, maxval=1.0)


class InverseCDF(nd.Distribution):
    """Base class: a numpyro distribution sampled by ``icdf(Uniform(0, 1))``.

    Subclasses set ``arg_constraints``, ``support`` and implement ``icdf``, ``cdf``
    and ``log_prob``. Every parameter is reparameterized.
    """

    arg_constraints: ClassVar[dict[str, Any]] = {}
    _names: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *params: Any, validate_args: bool | None = None):
        arrays = promote_shapes(*[jnp.asarray(p, dtype=jnp.result_type(float)) for p in params])
        shape = jax.lax.broadcast_shapes(*[jnp.shape(a) for a in arrays])
        for name, a in zip(self._names, arrays):
            setattr(self, name, jnp.broadcast_to(a, shape))
        super().__init__(batch_shape=shape, validate_args=validate_args)

    @property
    def reparametrized_params(self) -> list[str]:  # type: ignore[override]
        return list(self._names)

    def icdf(self, u: Array) -> Array:
        raise NotImplementedError

    def sample(self, key: PRNGKeyArray, sample_shape: tuple[int, ...] = ()) -> Array:
        return self.icdf(_uniform(key, tuple(sample_shape) + self.batch_shape))

    def rsample(self, key, sample_shape=()):
        return self.sample(key, sample_shape)


class Exponential(InverseCDF):
    """Exponential with ``rate``: density ``rate * exp(-rate * x)``."""

    arg_constraints = {"rate": constraints.positive}
    support = constraints.positive
    _names = ("rate",)
    pytree_data_fields = ("rate",)

    def icdf(self, u):
        return -jnp.log1p(-u) / self.rate

    def cdf(self, x):
        return -jnp.expm1(-self.rate * x)

    def log_prob(self, x):
        return jnp.log(self.rate) - self.rate * x

    @property
    def mean(self):
        return 1.0 / self.rate

    @property
    def variance(self):
        return self.rate**-2


class _LocScaleICDF(InverseCDF):
    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    _names = ("loc", "scale")
    pytree_data_fields = ("loc", "scale")

    def __init__(self, loc=0.0, scale=1.0, *, validate_args=None):
        super().__init__(loc, scale, validate_args=validate_args)


class Cauchy(_LocScaleICDF):
    """Cauchy ``(loc, scale)``; mean and variance are undefined (NaN / inf)."""

    def icdf(self, u):
        return self.loc + self.scale * jnp.tan(math.pi * (u - 0.5))

    def cdf(self, x):
        return 0.5 + jnp.arctan((x - self.loc) / self.scale) / math.pi

    def log_prob(self, x):
        z = (x - self.loc) / self.scale
        return -math.log(math.pi) - jnp.log(self.scale) - jnp.log1p(z**2)

    @property
    def mean(self):
        return jnp.full(self.batch_shape, jnp.nan)

    @property
    def variance(self):
        return jnp.full(self.batch_shape, jnp.inf)


class Logistic(_LocScaleICDF):
    """Logistic ``(loc, scale)``: CDF ``sigmoid((x - loc) / scale)``."""

    def icdf(self, u):
        return self.loc + self.scale * (jnp.log(u) - jnp.log1p(-u))

    def cdf(self, x):
        return jax.nn.sigmoid((x - self.loc) / self.scale)

    def log_prob(self, x):
        z = (x - self.loc) / self.scale
        return -z - jnp.log(self.scale) - 2.0 * jax.nn.softplus(-z)

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return (math.pi * self.scale) ** 2 / 3.0


class Gumbel(_LocScaleICDF):
    """Gumbel (maximum) ``(loc, scale)``: CDF ``exp(-exp(-(x - loc) / scale))``."""

    def icdf(self, u):
        return self.loc - self.scale * jnp.log(-jnp.log(u))

    def cdf(self, x):
        return jnp.exp(-jnp.exp(-(x - self.loc) / self.scale))

    def log_prob(self, x):
        z = (x - self.loc) / self.scale
        return -(z + jnp.exp(-z)) - jnp.log(self.scale)

    @property
    def mean(self):
        return self.loc + EULER_GAMMA * self.scale

    @property
    def variance(self):
        return (math.pi * self.scale) ** 2 / 6.0


class Kumaraswamy(InverseCDF):
    """Kumaraswamy ``(a, b)`` on (0, 1): CDF ``1 - (1 - x^a)^b`` (a Beta look-alike)."""

    arg_constraints = {"concentration1": constraints.positive, "concentration0": constraints.positive}
    support = constraints.open_interval(0.0, 1.0)
    _names = ("concentration1", "concentration0")
    pytree_data_fields = ("concentration1", "concentration0")

    def icdf(self, u):
        a, b = self.concentration1, self.concentration0
        # (1 - (1 - u)^(1/b))^(1/a) in a form that keeps precision near 0 and 1
        inner = -jnp.expm1(jnp.log1p(-u) / b)
        x = jnp.exp(jnp.log(inner) / a)
        eps = jnp.finfo(x.dtype).eps
        return jnp.clip(x, eps, 1.0 - eps)

    def cdf(self, x):
        a, b = self.concentration1, self.concentration0
        return -jnp.expm1(b * jnp.log1p(-(x**a)))

    def log_prob(self, x):
        a, b = self.concentration1, self.concentration0
        return jnp.log(a) + jnp.log(b) + (a - 1) * jnp.log(x) + (b - 1) * jnp.log1p(-(x**a))

    @property
    def mean(self):
        a, b = self.concentration1, self.concentration0
        return jnp.exp(
            jnp.log(b) + jax.scipy.special.gammaln(1 + 1 / a) + jax.scipy.special.gammaln(b)
            - jax.scipy.special.gammaln(1 + 1 / a + b)
        )


class Weibull(InverseCDF):
    """Weibull ``(scale, concentration)``: CDF ``1 - exp(-(x / scale)^concentration)``."""

    arg_constraints = {"scale": constraints.positive, "concentration": constraints.positive}
    support = constraints.positive
    _names = ("scale", "concentration")
    pytree_data_fields = ("scale", "concentration")

    def icdf(self, u):
        return self.scale * jnp.exp(jnp.log(-jnp.log1p(-u)) / self.concentration)

    def cdf(self, x):
        return -jnp.expm1(-((x / self.scale) ** self.concentration))

    def log_prob(self, x):
        k, lam = self.concentration, self.scale
        z = x / lam
        return jnp.log(k) - jnp.log(lam) + (k - 1) * jnp.log(z) - z**k

    @property
    def mean(self):
        return self.scale * jnp.exp(jax.scipy.special.gammaln(1 + 1 / self.concentration))


# --- closed-form KLs -------------------------------------------------------------------


@_registry.register(Exponential, Exponential)
def _kl_exponential(p, q):
    r = q.rate / p.rate
    return -jnp.log(r) + r - 1.0


@_registry.register(Kumaraswamy, nd.Beta)
def _kl_kumaraswamy_beta(p, q):  # numpyro's series form (Nalisnick & Smyth 2017)
    return _registry(nd.Kumaraswamy(p.concentration1, p.concentration0), q)


@_registry.register(Weibull, nd.Gamma)
def _kl_weibull_gamma(p, q):
    return _registry(nd.Weibull(p.scale, p.concentration), q)


# --- conditional forms -----------------------------------------------------------------


class CauchyConditional(_LocScale):
    """Cauchy ``(loc, scale)`` per dimension (inverse-CDF reparameterized); options as ``Gaussian``."""

    family: ClassVar[type[nd.Distribution]] = Cauchy


class LogisticConditional(_LocScale):
    """Logistic ``(loc, scale)`` per dimension (inverse-CDF reparameterized); options as ``Gaussian``."""

    family: ClassVar[type[nd.Distribution]] = Logistic


class GumbelConditional(_LocScale):
    """Gumbel ``(loc, scale)`` per dimension (inverse-CDF reparameterized); options as ``Gaussian``."""

    family: ClassVar[type[nd.Distribution]] = Gumbel

    def mean(self, x, batch_ndim: int = 1):
        return self.dist(x, batch_ndim).base_dist.mean


class ExponentialConditional(Conditional):
    """Exponential with ``rate = softplus(net(x)) + min_rate``; net outputs ``d``."""

    support: ClassVar[Any] = constraints.positive
    min_rate: float = eqx.field(static=True)

    def __init__(self, net, *, min_rate: float = 1e-3):
        self.net = net
        self.min_rate = float(min_rate)

    def _params(self, x):
        return (_positive(self.net(x), "softplus", self.min_rate),)

    def _build(self, params, batch_ndim):
        (rate,) = params
        return Exponential(rate).to_event(_event_dims(rate, batch_ndim))


class _TwoPositive(Conditional):
    floor: float = eqx.field(static=True)
    family: ClassVar[type[nd.Distribution]] = Kumaraswamy
    what: ClassVar[str] = ""

    def __init__(self, net, *, floor: float = 1e-3):
        self.net = net
        self.floor = float(floor)

    def _params(self, x):
        a, b = _split(self.net(x), 2, type(self).__name__, self.what)
        return _positive(a, "softplus", self.floor), _positive(b, "softplus", self.floor)

    def _build(self, params, batch_ndim):
        a, b = params
        return self.family(a, b).to_event(_event_dims(a, batch_ndim))


class KumaraswamyConditional(_TwoPositive):
    """Kumaraswamy ``(a, b)`` per dimension on (0, 1); net outputs ``2d`` (a then b)."""

    support: ClassVar[Any] = constraints.open_interval(0.0, 1.0)
    family: ClassVar[type[nd.Distribution]] = Kumaraswamy
    what: ClassVar[str] = "two concentrations per dimension (2*d)"


class WeibullConditional(_TwoPositive):
    """Weibull ``(scale, concentration)`` per dimension; net outputs ``2d``."""

    support: ClassVar[Any] = constraints.positive
    family: ClassVar[type[nd.Distribution]] = Weibull
    what: ClassVar[str] = "a scale and a concentration per dimension (2*d)"


#: distribution class -> conditional class, for the families of this module
CONDITIONALS: dict[str, type[Conditional]] = {
    "exponential": ExponentialConditional,
    "cauchy": CauchyConditional,
    "logistic": LogisticConditional,
    "gumbel": GumbelConditional,
    "kumaraswamy": KumaraswamyConditional,
    "weibull": WeibullConditional,
}
