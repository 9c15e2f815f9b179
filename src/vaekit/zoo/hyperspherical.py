"""Hyperspherical latents: the von Mises-Fisher and power spherical distributions on the
unit sphere ``S^{d-1}`` of ``R^d``, the uniform distribution there, and their conditional
(encoder) forms (the S-VAE of Davidson et al. 2018, arXiv 1804.00891; the power spherical
distribution of De Cao & Aziz 2020, arXiv 2006.04437).

``d`` is always the dimension of the space the unit vectors live in (the event shape is
``[d]``; the sphere itself has dimension ``d - 1``).

* :class:`VonMisesFisherDistribution` ``(loc, concentration)``: density
  ``C_d(k) exp(k mu^T z)``, ``C_d(k) = k^(d/2-1) / ((2 pi)^(d/2) I_(d/2-1)(k))``. The
  log-normalizer uses :func:`log_bessel_ive`, stable for every ``k > 0`` and ``d`` (no
  overflow at ``k = 1e4`` or ``d = 1000``). Sampled by Wood's (1994) rejection sampler
  (a ``lax.while_loop``) for ``w = mu^T z`` and a uniform tangent direction, rotated onto
  ``mu`` by a Householder reflection. Gradients with respect to the concentration are
  exact through the acceptance step by implicit reparameterization (Figurnov et al. 2018,
  arXiv 1805.08498): ``dw/dk = -(dF/dk)(w) / p(w)`` with ``F`` the CDF of ``w``, whose
  ``k``-derivative is a one-dimensional integral computed by Gauss-Legendre quadrature.
* :class:`PowerSphericalDistribution` ``(loc, concentration)``: density
  ``C (1 + mu^T z)^k``; ``(1 + w) / 2 ~ Beta((d-1)/2 + k, (d-1)/2)``, so sampling needs no
  rejection and is reparameterized through numpyro's Beta.
* :class:`HypersphericalUniformDistribution` ``(d)``; the closed-form KLs of both
  families to it are registered in numpyro's KL registry (so ``vk.elbo`` uses them).

Conditionals: :class:`VonMisesFisher` and :class:`PowerSpherical` read ``d + 1`` network
outputs: a direction (normalized to unit length) and an unconstrained concentration
(``softplus(raw) + min_concentration``). Prior: :class:`HypersphericalUniform`.
"""

# no ``from __future__ import annotations``: equinox reads class annotations at creation.
import functools
import math
from collections.abc import Callable
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
from jax.scipy.special import digamma, gammaln
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions import constraints
from numpyro.distributions.kl import kl_divergence as _registry

from .._validate import int_at_least
from ..core import AbstractFamily, Prior, event_dims

# --- Bessel functions ----------------------------------------------------------------------

_DEBYE_MIN_ORDER = 15.0  # below this order, shift up and recur down (stable for I_v)


def _debye_log_ive(v: Array, x: Array) -> Array:
    """``log(I_v(x) e^{-x})`` by the uniform asymptotic (Debye) expansion, DLMF 10.41.3 with
    the terms ``u_1 .. u_4`` (10.41.10); relative error below 1e-9 for ``v >= 15``, any
    ``x > 0``. Written so that no large terms cancel: ``v eta(x/v) - x`` is
    ``v^2 / (x + r) - v asinh(v / x)`` with ``r = sqrt(v^2 + x^2)``."""
    r = jnp.sqrt(v * v + x * x)
    t = v / r
    t2 = t * t
    u1 = t * (3.0 - 5.0 * t2) / 24.0
    u2 = t2 * (81.0 + t2 * (-462.0 + t2 * 385.0)) / 1152.0
    u3 = t * t2 * (30375.0 + t2 * (-369603.0 + t2 * (765765.0 - t2 * 425425.0))) / 414720.0
    u4 = (
        t2
        * t2
        * (4465125.0 + t2 * (-94121676.0 + t2 * (349922430.0 + t2 * (-446185740.0 + t2 * 185910725.0))))
        / 39813120.0
    )
    iv = 1.0 / v
    series = jnp.log1p(iv * (u1 + iv * (u2 + iv * (u3 + iv * u4))))
    return v * v / (x + r) - v * jnp.arcsinh(v / x) - 0.5 * math.log(2 * math.pi) - 0.25 * jnp.log(r * r) + series


def log_bessel_ive(v: float, x: ArrayLike) -> tuple[Array, Array]:
    """``(log I_v(x) - x, I_{v+1}(x) / I_v(x))`` for a fixed order ``v >= 0`` and ``x > 0``.

    Orders of at least 15 use the Debye expansion directly; lower orders start from it at
    order ``v + n >= 15`` and recur down, ``I_{u-1} = (2u/x) I_u + I_{u+1}`` (stable for
    ``I``, whose values grow as the order falls), carrying the ratio along. Differentiable
    in ``x`` (``d/dx log I_v(x) = v/x + I_{v+1}(x)/I_v(x)``).
    """
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        x = x.astype(jnp.float32)
    v = float(v)
    if v < 0:
        raise ValueError(f"log_bessel_ive needs an order v >= 0, got {v}.")
    n = max(0, math.ceil(_DEBYE_MIN_ORDER - v))
    top = v + n
    log_i = _debye_log_ive(jnp.asarray(top, x.dtype), x)
    ratio = jnp.exp(_debye_log_ive(jnp.asarray(top + 1.0, x.dtype), x) - log_i)  # I_{top+1} / I_top
    for k in range(n):
        u = top - k  # from (I_u, rho_u = I_{u+1}/I_u) to order u - 1
        step = 2.0 * u / x + ratio  # I_{u-1} / I_u
        log_i = log_i + jnp.log(step)
        ratio = 1.0 / step
    return log_i, ratio


def _log_sphere_area(d: int) -> float:
    """``log |S^{d-1}|``, the log surface area of the unit sphere in ``R^d``."""
    return math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)


# --- the uniform distribution on the sphere ------------------------------------------------


class _Sphere(constraints.Constraint):
    """Unit vectors (last axis), up to ``tol`` in their norm."""

    event_dim = 1

    def __init__(self, tol: float = 1e-3):
        self.tol = tol

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.abs(jnp.linalg.norm(x, axis=-1) - 1.0) < self.tol

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype).at[..., 0].set(1.0)

    def tree_flatten(self):
        return (), ((), {"tol": self.tol})


sphere = _Sphere()


def _uniform_on_sphere(key: PRNGKeyArray, shape: tuple[int, ...], d: int, dtype=jnp.float32) -> Array:
    g = jax.random.normal(key, (*shape, d), dtype)
    return g / jnp.linalg.norm(g, axis=-1, keepdims=True)


class HypersphericalUniformDistribution(nd.Distribution):
    """The uniform distribution on the unit sphere of ``R^d`` (event shape ``[d]``)."""

    arg_constraints: ClassVar[dict] = {}
    support = sphere
    reparametrized_params: ClassVar[list] = []
    pytree_aux_fields = ("d",)

    def __init__(self, d: int, *, validate_args=None):
        self.d = int_at_least(d, 2, "HypersphericalUniform d (the dimension of R^d)")
        super().__init__(batch_shape=(), event_shape=(self.d,), validate_args=validate_args)

    def sample(self, key, sample_shape=()):
        return _uniform_on_sphere(key, tuple(sample_shape) + tuple(self.batch_shape), self.d)

    def log_prob(self, value):
        value = jnp.asarray(value)
        return jnp.full(value.shape[:-1], -_log_sphere_area(self.d), dtype=value.dtype)

    @property
    def mean(self):
        return jnp.zeros(self.d)

    def entropy(self):
        return jnp.asarray(_log_sphere_area(self.d))


# --- shared pieces: Householder rotation, unit-norm loc --------------------------------------


def _householder(loc: Array, y: Array) -> Array:
    """Rotate ``y [..., d]`` (mode at ``e_1``) so that ``e_1`` goes to the unit vector
    ``loc [..., d]``: the reflection ``H = I - 2 u u^T / u^T u`` with ``u = e_1 - loc``,
    followed by nothing (``H e_1 = loc``); ``H`` is the identity when ``loc = e_1``."""
    e1 = jnp.zeros_like(loc).at[..., 0].set(1.0)
    u = e1 - loc
    uu = jnp.sum(u * u, -1, keepdims=True)
    small = uu < 1e-12
    u = jnp.where(small, jnp.zeros_like(u), u)
    uu = jnp.where(small, 1.0, uu)
    return y - 2.0 * u * jnp.sum(u * y, -1, keepdims=True) / uu


def _tangent(key: PRNGKeyArray, shape: tuple[int, ...], d: int, dtype) -> Array:
    """Uniform unit vectors of ``R^{d-1}``: ``[*shape, d - 1]``."""
    return _uniform_on_sphere(key, shape, d - 1, dtype)


def _check_loc(loc: Array, name: str) -> None:
    if loc.ndim < 1 or loc.shape[-1] < 2:
        raise ValueError(
            f"{name} needs loc of shape [..., d] with d >= 2 (unit vectors of R^d), got shape {loc.shape}."
        )
    if not isinstance(loc, jax.core.Tracer):
        norm = np.linalg.norm(np.asarray(loc, np.float64), axis=-1)
        if not np.all(np.abs(norm - 1.0) < 1e-3):
            raise ValueError(
                f"{name} needs unit-norm loc (mean direction); got norms from {norm.min():.4g} to "
                f"{norm.max():.4g}. Pass loc / jnp.linalg.norm(loc, axis=-1, keepdims=True)."
            )


def _batch(loc: Array, concentration: Array) -> tuple[Array, Array, tuple[int, ...]]:
    batch = jax.lax.broadcast_shapes(loc.shape[:-1], concentration.shape)
    return (
        jnp.broadcast_to(loc, (*batch, loc.shape[-1])),
        jnp.broadcast_to(concentration, batch),
        batch,
    )


# --- von Mises-Fisher ----------------------------------------------------------------------

_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(96)
_GL_U = (_GL_NODES + 1.0) / 2.0  # on [0, 1]
_GL_W = _GL_WEIGHTS / 2.0
_STRETCH = 12.0  # nodes t = L (e^{c u} - 1) / (e^c - 1): spacings from 1e-5 L to L / 8


def _dw_dkappa(w: Array, kappa: Array, d: int) -> Array:
    """``dw/dk`` of the vMF's ``w = mu^T z`` at fixed CDF value: ``-(dF/dk)(w) / p(w)``.

    With ``w = cos(theta_w)``, ``A = E[w]`` and ``f(theta) = (cos theta - A) exp(k (cos
    theta - w)) sin^(d-2) theta / sin^(d-3) theta_w``, it is ``-int_{theta_w}^{pi} f`` =
    ``int_0^{theta_w} f`` (the two agree because ``E[w - A] = 0``). The log of the integrand
    is unimodal in ``theta`` with its maximum at the mode ``theta*``; the side on which it
    falls monotonically away from ``theta_w`` is integrated, over a grid that is dense near
    ``theta_w`` and geometric away from it (so every decay length from ``1e-5`` of the
    interval to all of it is resolved).
    """
    _, a_mean = log_bessel_ive(d / 2.0 - 1.0, kappa)
    theta_w = jnp.arccos(jnp.clip(w, -1.0, 1.0))
    # the mode of p(theta) ~ exp(k cos theta) sin^(d-2) theta: k sin^2 = (d-2) cos
    dm2 = d - 2.0
    cos_mode = (jnp.sqrt(dm2 * dm2 + 4.0 * kappa * kappa) - dm2) / (2.0 * kappa)
    upper = w <= cos_mode  # theta_w beyond the mode: integrate theta_w .. pi
    length = jnp.where(upper, math.pi - theta_w, theta_w)
    u = jnp.asarray(_GL_U, w.dtype)
    t = length[..., None] * jnp.expm1(_STRETCH * u) / math.expm1(_STRETCH)  # distance from theta_w
    dt = length[..., None] * _STRETCH * jnp.exp(_STRETCH * u) / math.expm1(_STRETCH)
    theta = jnp.where(upper[..., None], theta_w[..., None] + t, theta_w[..., None] - t)
    sin_w = jnp.sin(theta_w)[..., None]
    sin_t = jnp.sin(theta)
    log_ratio = kappa[..., None] * (jnp.cos(theta) - w[..., None])
    if d != 2:
        log_ratio = log_ratio + dm2 * (jnp.log(jnp.maximum(sin_t, 1e-30)) - jnp.log(jnp.maximum(sin_w, 1e-30)))
    f = (jnp.cos(theta) - a_mean[..., None]) * jnp.exp(log_ratio) * sin_w
    integral = jnp.sum(f * dt * jnp.asarray(_GL_W, w.dtype), -1)
    return jnp.where(upper, -integral, integral)


@functools.partial(jax.custom_jvp, nondiff_argnums=(3,))
def _implicit_w(w: Array, one_minus_w: Array, kappa: Array, d: int) -> tuple[Array, Array]:
    """``(w, 1 - w)`` of a sample; their derivative in ``kappa`` by implicit reparameterization."""
    return w, one_minus_w


@_implicit_w.defjvp
def _implicit_w_jvp(d, primals, tangents):
    w, one_minus_w, kappa = primals
    dw = _dw_dkappa(w, kappa, d) * tangents[2]
    return (w, one_minus_w), (dw, -dw)


_CHI2_MAX_DOF = 64  # the proposal's Beta from 2 (d - 1) normals up to here (fast to compile)


def _wood(key: PRNGKeyArray, kappa: Array, d: int) -> tuple[Array, Array]:
    """Wood's (1994) rejection sampler for ``w = mu^T z``: ``(w, 1 - w)`` for every entry
    of ``kappa`` (no gradient; see :func:`_implicit_w`). Proposal ``w = (1 - (1+b) e) /
    (1 - (1-b) e)``, ``e ~ Beta((d-1)/2, (d-1)/2)``; accepted when ``k (w - x0) + (d-1)
    log((1 - x0 w) / (1 - x0^2)) >= log u``. ``1 - w = 2 b e / (1 - (1-b) e)`` keeps its
    precision when ``w`` is close to 1 (large ``k``)."""
    kappa = jax.lax.stop_gradient(kappa)
    m1 = d - 1.0
    b = m1 / (2.0 * kappa + jnp.sqrt(4.0 * kappa * kappa + m1 * m1))
    one_minus_x0 = 2.0 * b / (1.0 + b)
    x0 = 1.0 - one_minus_x0
    log_1mx0sq = jnp.log(one_minus_x0) + jnp.log1p(x0)
    shape = kappa.shape

    def symmetric_beta(k):  # Beta((d-1)/2, (d-1)/2) = X / (X + Y), X, Y ~ chi^2_{d-1}
        if d - 1 > _CHI2_MAX_DOF:
            return jax.random.beta(k, m1 / 2.0, m1 / 2.0, shape, kappa.dtype)
        g = jnp.sum(jnp.square(jax.random.normal(k, (2, *shape, d - 1), kappa.dtype)), -1)
        return g[0] / (g[0] + g[1])

    def body(state):
        i, w, omw, done = state
        k1, k2 = jax.random.split(jax.random.fold_in(key, i))
        e = symmetric_beta(k1)
        denom = 1.0 - (1.0 - b) * e
        omw_new = 2.0 * b * e / denom
        w_new = (1.0 - (1.0 + b) * e) / denom
        log_t = kappa * (one_minus_x0 - omw_new) + m1 * (jnp.log(one_minus_x0 + x0 * omw_new) - log_1mx0sq)
        u = jax.random.uniform(k2, shape, minval=jnp.finfo(kappa.dtype).tiny)
        accept = jnp.logical_and(~done, log_t >= jnp.log(u))
        return (
            i + 1,
            jnp.where(accept, w_new, w),
            jnp.where(accept, omw_new, omw),
            done | accept,
        )

    def cond(state):
        return ~jnp.all(state[3])

    init = (
        jnp.asarray(0),
        jnp.zeros(shape, kappa.dtype),
        jnp.ones(shape, kappa.dtype),
        jnp.zeros(shape, bool),
    )
    _, w, omw, _ = jax.lax.while_loop(cond, body, init)
    return w, omw


def vmf_log_normalizer(concentration: ArrayLike, d: int) -> Array:
    """``log C_d(k) + k``: the vMF's log-normalizer plus ``k`` (what stays O(log k) for
    large ``k``); ``log p(z) = log C_d(k) + k mu^T z``."""
    k = jnp.asarray(concentration)
    log_ive, _ = log_bessel_ive(d / 2.0 - 1.0, k)
    return (d / 2.0 - 1.0) * jnp.log(k) - (d / 2.0) * math.log(2 * math.pi) - log_ive


def mean_resultant_length(concentration: ArrayLike, d: int) -> Array:
    """``A_d(k) = E[mu^T z] = I_{d/2}(k) / I_{d/2-1}(k)`` for the vMF in ``R^d``."""
    return log_bessel_ive(d / 2.0 - 1.0, jnp.asarray(concentration))[1]


class VonMisesFisherDistribution(nd.Distribution):
    """von Mises-Fisher distribution on the unit sphere of ``R^d``.

    :param loc: ``[*batch, d]`` unit-norm mean direction.
    :param concentration: ``[*batch]`` (or broadcastable) positive concentration ``k``.

    ``rsample`` is reparameterized in both parameters (implicit gradients for ``k``, see the
    module docstring); ``log_prob`` takes ``[*sample, *batch, d]`` unit vectors.
    """

    arg_constraints: ClassVar[dict] = {
        "loc": constraints.real_vector,
        "concentration": constraints.positive,
    }
    support = sphere
    reparametrized_params: ClassVar[list] = ["loc", "concentration"]
    pytree_data_fields = ("loc", "concentration")

    def __init__(self, loc: ArrayLike, concentration: ArrayLike, *, validate_args=None):
        loc = jnp.asarray(loc)
        _check_loc(loc, "VonMisesFisherDistribution")
        concentration = jnp.asarray(concentration, dtype=loc.dtype)
        self.loc, self.concentration, batch = _batch(loc, concentration)
        super().__init__(batch_shape=batch, event_shape=(loc.shape[-1],), validate_args=validate_args)

    @property
    def d(self) -> int:
        return self.event_shape[0]

    def rsample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + tuple(self.batch_shape)
        kw, kv = jax.random.split(key)
        kappa = jnp.broadcast_to(self.concentration, shape)
        w, omw = _wood(kw, kappa, self.d)
        w, omw = _implicit_w(w, omw, kappa, self.d)
        v = _tangent(kv, shape, self.d, self.loc.dtype)
        r = jnp.sqrt(jnp.maximum(omw * (1.0 + w), 0.0))
        y = jnp.concatenate([w[..., None], r[..., None] * v], -1)
        return _householder(jnp.broadcast_to(self.loc, (*shape, self.d)), y)

    def sample(self, key, sample_shape=()):
        return jax.lax.stop_gradient(self.rsample(key, sample_shape))

    def log_prob(self, value):
        value = jnp.asarray(value)
        k = self.concentration
        cos = jnp.sum(self.loc * value, -1)
        return vmf_log_normalizer(k, self.d) + k * (cos - 1.0)

    @property
    def mean(self):
        return mean_resultant_length(self.concentration, self.d)[..., None] * self.loc

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        k = self.concentration
        return -vmf_log_normalizer(k, self.d) - k * (mean_resultant_length(k, self.d) - 1.0)


# --- power spherical ----------------------------------------------------------------------


class PowerSphericalDistribution(nd.Distribution):
    """Power spherical distribution (De Cao & Aziz 2020) on the unit sphere of ``R^d``:
    density ``C (1 + mu^T z)^k``.

    :param loc: ``[*batch, d]`` unit-norm mean direction.
    :param concentration: ``[*batch]`` (or broadcastable) non-negative ``k``.
    """

    arg_constraints: ClassVar[dict] = {
        "loc": constraints.real_vector,
        "concentration": constraints.nonnegative,
    }
    support = sphere
    reparametrized_params: ClassVar[list] = ["loc", "concentration"]
    pytree_data_fields = ("loc", "concentration")

    def __init__(self, loc: ArrayLike, concentration: ArrayLike, *, validate_args=None):
        loc = jnp.asarray(loc)
        _check_loc(loc, "PowerSphericalDistribution")
        concentration = jnp.asarray(concentration, dtype=loc.dtype)
        self.loc, self.concentration, batch = _batch(loc, concentration)
        super().__init__(batch_shape=batch, event_shape=(loc.shape[-1],), validate_args=validate_args)

    @property
    def d(self) -> int:
        return self.event_shape[0]

    def _ab(self):
        beta = (self.d - 1.0) / 2.0
        return beta + self.concentration, jnp.asarray(beta, self.loc.dtype)

    def log_normalizer(self) -> Array:
        """``log C = -((a + b) log 2 + b log pi + lgamma(a) - lgamma(a + b))``."""
        a, b = self._ab()
        return -((a + b) * math.log(2.0) + b * math.log(math.pi) + gammaln(a) - gammaln(a + b))

    def rsample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + tuple(self.batch_shape)
        kz, kv = jax.random.split(key)
        a, b = self._ab()
        z = nd.Beta(a, jnp.broadcast_to(b, a.shape)).rsample(kz, tuple(sample_shape))
        t = 2.0 * z - 1.0
        r = 2.0 * jnp.sqrt(jnp.maximum(z * (1.0 - z), 0.0))  # sqrt(1 - t^2)
        v = _tangent(kv, shape, self.d, self.loc.dtype)
        y = jnp.concatenate([t[..., None], r[..., None] * v], -1)
        return _householder(jnp.broadcast_to(self.loc, (*shape, self.d)), y)

    def sample(self, key, sample_shape=()):
        return jax.lax.stop_gradient(self.rsample(key, sample_shape))

    def log_prob(self, value):
        value = jnp.asarray(value)
        cos = jnp.sum(self.loc * value, -1)
        return self.log_normalizer() + self.concentration * jnp.log1p(jnp.maximum(cos, -1.0))

    @property
    def mean(self):
        a, b = self._ab()
        return ((a - b) / (a + b))[..., None] * self.loc

    @property
    def mode(self):
        return self.loc

    def entropy(self):
        a, b = self._ab()
        return -(self.log_normalizer() + self.concentration * (math.log(2.0) + digamma(a) - digamma(a + b)))


# --- closed-form KLs to the uniform distribution ---------------------------------------------


def _check_dims(q, p) -> None:
    if q.d != p.d:
        raise ValueError(f"KL between distributions on spheres of different dimensions: R^{q.d} and R^{p.d}.")


@_registry.register(VonMisesFisherDistribution, HypersphericalUniformDistribution)
def _kl_vmf_uniform(q, p):
    _check_dims(q, p)
    return -q.entropy() + _log_sphere_area(q.d)


@_registry.register(PowerSphericalDistribution, HypersphericalUniformDistribution)
def _kl_ps_uniform(q, p):
    _check_dims(q, p)
    return -q.entropy() + _log_sphere_area(q.d)


# --- prior and conditionals ------------------------------------------------------------------


class HypersphericalUniform(Prior):
    """The uniform prior on the unit sphere of ``R^dim`` (no parameters)."""

    dim: int = eqx.field(static=True)

    def __init__(self, dim: int):
        self.dim = int_at_least(dim, 2, "HypersphericalUniform(dim): dim (the dimension of R^dim)")

    def dist(self):
        return HypersphericalUniformDistribution(self.dim)


class _Spherical(AbstractFamily):
    """Abstract: ``d + 1`` network outputs -> unit direction and concentration."""

    min_concentration: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = sphere

    def __init__(self, net: Callable[[Array], Array], *, min_concentration: float = 1.0):
        self.net = net
        self.min_concentration = float(min_concentration)

    def _params(self, x):
        out = self.net(x)
        name = type(self).__name__
        if out.shape[-1] < 3:
            raise ValueError(
                f"{name} needs d + 1 network outputs (a direction in R^d, d >= 2, and a "
                f"concentration); got {out.shape[-1]}."
            )
        direction, raw = out[..., :-1], out[..., -1]
        norm = jnp.sqrt(jnp.sum(direction * direction, -1, keepdims=True) + 1e-12)
        return direction / norm, jax.nn.softplus(raw) + self.min_concentration


class VonMisesFisher(_Spherical):
    """von Mises-Fisher posterior (S-VAE, Davidson et al. 2018): the network outputs
    ``d + 1`` values, a direction in ``R^d`` (normalized) and a raw concentration
    (``softplus(raw) + min_concentration``, 1 by default as in the paper's code). Use with
    :class:`HypersphericalUniform` ``(d)``."""

    def _build(self, params, batch_ndim):
        loc, kappa = params
        return VonMisesFisherDistribution(loc, kappa).to_event(event_dims(loc, batch_ndim, 1))


class PowerSpherical(_Spherical):
    """Power spherical posterior (De Cao & Aziz 2020); network outputs as
    :class:`VonMisesFisher`."""

    def _build(self, params, batch_ndim):
        loc, kappa = params
        return PowerSphericalDistribution(loc, kappa).to_event(event_dims(loc, batch_ndim, 1))
