"""Conditional distributions p(y | x): a network plus a parametric family.

Each class wraps a callable network ``net(x) -> array`` that maps *one* example to the
unconstrained parameters of a family, and turns its output into a numpyro
``Distribution`` whose event shape is the data shape. Batches go through ``jax.vmap``.

Output layout of the network (``d`` = number of data dimensions):

============================  ===========================================  ==========
class                          network output (last axis)                  parameters
============================  ===========================================  ==========
``Gaussian(variance="diag")``  ``2d``: mean, unconstrained scale          loc, scale
``Gaussian("scalar")``         ``d + 1``: mean, one unconstrained scale   loc, scale
``Gaussian("shared")``         ``d``: mean; scale is a learned ``[d]``    loc, scale
``Gaussian("fixed")``          ``d``: mean; ``scale=`` given, not trained loc, scale
``Laplace``, ``StudentT``      as ``Gaussian``                            loc, scale
``Bernoulli``                  ``d`` logits                               logits
``ContinuousBernoulli``        ``d`` logits                               logits
``Beta``                       ``2d``: two unconstrained concentrations   c1, c0
``Dirichlet``                  ``d`` unconstrained concentrations         alpha
``Categorical``                ``d * num_classes`` logits                 logits
============================  ===========================================  ==========

Positive parameters are ``softplus(raw) + min_scale`` (or ``exp(raw) + min_scale``).
"""

# no ``from __future__ import annotations``: equinox reads ``eqx.AbstractVar`` annotations at
# class creation, and cannot read them as strings.
import abc
import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions import constraints

from .._validate import int_at_least, one_of, positive_array
from ._fixed import Fixed, fixed, resolve, value
from ._onehot import OneHotCategoricalLogits

VARIANCES = ("diag", "scalar", "shared", "fixed")
SCALE_FNS = ("softplus", "exp")


def positive(raw: Array, fn: str, floor: float) -> Array:
    """``softplus(raw) + floor`` (``fn="softplus"``) or ``exp(raw) + floor``."""
    return (jax.nn.softplus(raw) if fn == "softplus" else jnp.exp(raw)) + floor


def _inverse_positive(y: float, fn: str, floor: float) -> float:
    y = max(float(y) - floor, 1e-12)
    if fn == "exp":
        return math.log(y)
    return y + math.log(-math.expm1(-y))  # inverse softplus


def split_outputs(out: Array, n: int, name: str, what: str) -> list[Array]:
    """``out`` cut into ``n`` equal parts along its last axis (a clear error otherwise)."""
    size = out.shape[-1]
    if size % n:
        raise ValueError(
            f"{name} expects the network's last output axis to hold {what}, so its size "
            f"must be a multiple of {n}; got {size}."
        )
    return jnp.split(out, n, axis=-1)


def _out_size(net: Any, size: int | None, name: str) -> int:
    if size is not None:
        return int(size)
    s = getattr(net, "out_size", None)
    if isinstance(s, int):
        return s
    raise ValueError(f"{name} cannot tell the data size from this network; pass size=<number of data dimensions>.")


def event_dims(p: Array, batch_ndim: int, base_event: int = 0) -> int:
    """Axes of ``p [*batch, ...]`` that become event axes (beyond the ``base_event`` ones)."""
    return p.ndim - batch_ndim - base_event


def mean_of(d: nd.Distribution) -> Array:
    """The mean of a distribution built by a conditional: numpyro's ``mean``; the location
    where the mean is undefined (Cauchy, Student-t with ``df <= 1``); class probabilities
    ``[..., k]`` for categorical indices."""
    base = d
    while isinstance(base, nd.Independent):
        base = base.base_dist
    if isinstance(base, nd.CategoricalLogits):
        return jax.nn.softmax(base.logits, -1)
    m = base.mean
    loc = getattr(base, "loc", None)
    if loc is not None:
        return jnp.where(jnp.isnan(m), loc, m)
    return m


class Conditional(eqx.Module):
    """Abstract base of every conditional distribution ``p(y | x)``.

    Concrete classes implement :meth:`dist`, :meth:`mean`, :meth:`parameters` and
    :meth:`support_check`; ``sample`` and ``log_prob`` follow from :meth:`dist`.
    """

    @abc.abstractmethod
    def dist(self, x: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        """The distribution for inputs ``x [*batch, *input]`` with ``batch_ndim`` batch axes:
        batch shape ``batch``, event shape the shape of one ``y``."""

    @abc.abstractmethod
    def mean(self, x: ArrayLike, batch_ndim: int = 1) -> Array:
        """Mean of ``p(. | x)``: ``[*batch, *event]``."""

    @abc.abstractmethod
    def parameters(self, x: ArrayLike, batch_ndim: int = 1) -> dict[str, Array]:
        """The family's parameters for inputs ``x``, by name."""

    @abc.abstractmethod
    def support_check(self, y: Any) -> Any:
        """Elementwise bool: is each value of ``y`` inside the family's support."""

    def sample(self, key: PRNGKeyArray, x: ArrayLike, batch_ndim: int = 1) -> Array:
        """One draw from ``p(. | x)``: ``[*batch, *event]``."""
        return self.dist(x, batch_ndim).sample(key)

    def log_prob(self, y: ArrayLike, x: ArrayLike, batch_ndim: int = 1) -> Array:
        """``log p(y | x)`` summed over the event: ``[*batch]``."""
        return self.dist(x, batch_ndim).log_prob(jnp.asarray(y))


class AbstractFamily(Conditional):
    """Abstract: a network ``net(x) -> raw parameters`` for one example plus a parametric
    family. Concrete classes implement ``_params`` (one example -> tuple of arrays) and
    ``_build`` (parameters with ``batch_ndim`` leading batch axes -> distribution), and set
    ``support``, the numpyro constraint that holds the values ``y``."""

    net: Callable[[Array], Array]
    support: eqx.AbstractVar[constraints.Constraint]

    @abc.abstractmethod
    def _params(self, x: Array) -> tuple[Array, ...]:
        """Raw network output for one example -> the family's parameters."""

    @abc.abstractmethod
    def _build(self, params: tuple[Array, ...], batch_ndim: int) -> nd.Distribution:
        """Parameters with ``batch_ndim`` leading batch axes -> the distribution."""

    def dist(self, x: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        self_ = resolve(self)
        x = jnp.asarray(x)
        if batch_ndim >= 1:
            check_input(self_, x, batch_ndim)
        if batch_ndim == 0:
            params = self_._params(x)
        else:
            lead = x.shape[:batch_ndim]
            flat = jnp.reshape(x, (-1, *x.shape[batch_ndim:]))
            if getattr(self_.net, "stateful", False) is True:  # BatchNorm & co: vaekit.nets.stateful
                params = self_.net.map_batch(self_, flat)  # type: ignore[attr-defined]
            else:
                params = jax.vmap(self_._params)(flat)
            params = tuple(jnp.reshape(p, (*lead, *p.shape[1:])) for p in params)
        return self_._build(params, batch_ndim)

    def mean(self, x: ArrayLike, batch_ndim: int = 1) -> Array:
        return mean_of(self.dist(x, batch_ndim))

    def parameters(self, x: ArrayLike, batch_ndim: int = 1) -> dict[str, Array]:
        d = self.dist(x, batch_ndim)
        base = d.base_dist if isinstance(d, nd.Independent) else d
        return {k: getattr(base, k) for k in type(base).arg_constraints}

    def support_check(self, y: Any) -> Any:
        return self.support(jnp.asarray(y))


def input_size(net: Any) -> int | None:
    """Values per example that ``net`` takes, when the network says (``in_size`` or ``in_shape``)."""
    inner = getattr(net, "net", None)
    size = getattr(net, "in_size", None)
    if isinstance(size, int) and not isinstance(size, bool):
        return size
    shape = getattr(net, "in_shape", None)
    if isinstance(shape, tuple) and all(isinstance(s, int) for s in shape):
        return math.prod(shape)
    if inner is not None and inner is not net and not isinstance(net, Conditional):
        return input_size(inner)  # e.g. Unflatten(MLP)
    return None


def check_input(cond: AbstractFamily, x: Array, batch_ndim: int) -> None:
    """Trace-time shape check: ``x`` must be ``[*batch, *example]`` with the network's input size."""
    size = input_size(cond.net)
    if size is None or x.ndim < batch_ndim:
        return
    per = math.prod(x.shape[batch_ndim:])
    if per == size:
        return
    name = type(cond).__name__
    lead = ", ".join(["batch"] * batch_ndim)
    msg = f"{name} expects inputs of shape [{lead}, {size}] ({size} values per example), got shape {tuple(x.shape)}"
    if math.prod(x.shape) == size or (x.ndim == batch_ndim and per == 1):
        msg += (
            ": the batch axis is missing. Pass x[None] for a single example; the model's functions "
            "(vk.elbo, encoder/decoder .dist/.mean) take batches, so call them on the whole batch "
            "instead of wrapping them in jax.vmap."
        )
    else:
        msg += f" ({per} values per example). Reshape the data or build the model for it."
    raise ValueError(msg)


class AbstractLocScale(AbstractFamily):
    """Abstract: location-scale families with the four variance options of ``Gaussian``.
    Concrete classes implement ``_base(loc, scale)``, the per-dimension distribution."""

    variance: str = eqx.field(static=True)
    raw_scale: Array | Fixed | None
    min_scale: float = eqx.field(static=True)
    scale_fn: str = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = constraints.real

    def __init__(
        self,
        net: Callable[[Array], Array],
        variance: Literal["diag", "scalar", "shared", "fixed"] = "diag",
        *,
        scale: ArrayLike | None = None,
        size: int | None = None,
        min_scale: float = 1e-4,
        scale_fn: Literal["softplus", "exp"] = "softplus",
        init_scale: float = 1.0,
    ):
        _init_loc_scale(self, net, variance, scale, size, min_scale, scale_fn, init_scale)

    @abc.abstractmethod
    def _base(self, loc: Array, scale: Array) -> nd.Distribution:
        """The family with location ``loc`` and scale ``scale`` (same shapes)."""

    def _params(self, x: Array) -> tuple[Array, ...]:
        out = self.net(x)
        name = type(self).__name__
        if self.variance == "diag":
            loc, raw = split_outputs(out, 2, name, "a mean and a scale per dimension (2*d)")
            scale = positive(raw, self.scale_fn, self.min_scale)
        elif self.variance == "scalar":
            loc, raw = out[..., :-1], out[..., -1:]
            scale = jnp.broadcast_to(positive(raw, self.scale_fn, self.min_scale), loc.shape)
        elif self.variance == "shared":
            loc = out
            scale = jnp.broadcast_to(positive(value(self.raw_scale), self.scale_fn, self.min_scale), loc.shape)
        else:  # fixed
            loc = out
            scale = jnp.broadcast_to(value(self.raw_scale), loc.shape)
        return loc, scale

    def _build(self, params, batch_ndim):
        loc, scale = params
        return self._base(loc, scale).to_event(event_dims(loc, batch_ndim))


def _init_loc_scale(self, net, variance, scale, size, min_scale, scale_fn, init_scale) -> None:
    """The fields of an :class:`AbstractLocScale` (shared by every location-scale ``__init__``)."""
    name = type(self).__name__
    one_of(variance, VARIANCES, "variance")
    one_of(scale_fn, SCALE_FNS, "scale_fn")
    self.net = net
    self.variance = variance
    self.min_scale = float(min_scale)
    self.scale_fn = scale_fn
    if variance == "fixed":
        if scale is None:
            raise ValueError(f'{name}(variance="fixed") needs scale=<positive value>.')
        s = jnp.asarray(scale, dtype=jnp.float32)
        try:
            positive_array(s, f"{name} scale")
        except ValueError:
            raise ValueError(f"{name} scale must be positive, got {scale!r}.") from None
        self.raw_scale = fixed(s)
    elif variance == "shared":
        d = _out_size(net, size, name)
        r = _inverse_positive(init_scale, scale_fn, self.min_scale)
        self.raw_scale = jnp.full((d,), r, dtype=jnp.float32)
    else:
        if scale is not None:
            raise ValueError(f'{name}: scale= is only used with variance="fixed"; got variance={variance!r}.')
        self.raw_scale = None


class Gaussian(AbstractLocScale):
    """Gaussian ``N(loc, scale^2)`` per dimension.

    :param net: network for one example.
    :param variance: ``"diag"`` (net outputs ``2d``), ``"scalar"`` (``d + 1``),
        ``"shared"`` (``d``; learned per-dimension scale, needs ``size=`` unless the
        network has ``out_size``), ``"fixed"`` (``d``; ``scale=`` given, not trained).
    :param min_scale: floor added to every scale.
    :param scale_fn: ``"softplus"`` or ``"exp"`` for the unconstrained scale.
    """

    def _base(self, loc, scale):
        return nd.Normal(loc, scale)


class Laplace(AbstractLocScale):
    """Laplace ``(loc, scale)`` per dimension; same options as :class:`Gaussian`."""

    def _base(self, loc, scale):
        return nd.Laplace(loc, scale)


class StudentT(AbstractLocScale):
    """Student-t ``(df, loc, scale)`` per dimension; options as :class:`Gaussian`.

    :param df: degrees of freedom (initial value when ``learn_df=True``).
    :param learn_df: train one shared ``df`` (kept above 1e-3).
    """

    log_df: Array | Fixed

    def __init__(
        self,
        net: Callable[[Array], Array],
        variance: Literal["diag", "scalar", "shared", "fixed"] = "diag",
        *,
        df: float = 3.0,
        learn_df: bool = False,
        scale: ArrayLike | None = None,
        size: int | None = None,
        min_scale: float = 1e-4,
        scale_fn: Literal["softplus", "exp"] = "softplus",
        init_scale: float = 1.0,
    ):
        _init_loc_scale(self, net, variance, scale, size, min_scale, scale_fn, init_scale)
        if not df > 0:
            raise ValueError(f"StudentT df must be positive, got {df!r}.")
        ldf = jnp.asarray(math.log(df), dtype=jnp.float32)
        self.log_df = ldf if learn_df else fixed(ldf)

    def _base(self, loc, scale):
        return nd.StudentT(jnp.exp(value(self.log_df)), loc, scale)


class Bernoulli(AbstractFamily):
    """Bernoulli with logits ``net(x)``; data in {0, 1}.

    ``log_prob`` is ``y log sigmoid(l) + (1 - y) log sigmoid(-l)`` with a stable
    log-sigmoid: exact and finite for ``|logits|`` up to 1e4 and beyond, with the right
    gradient everywhere (also at ``l = 0``, where numpyro's ``|l|`` form gives 1, not 1/2).
    """

    support: ClassVar[constraints.Constraint] = constraints.boolean

    def __init__(self, net: Callable[[Array], Array]):
        self.net = net

    def _params(self, x):
        return (self.net(x),)

    def _build(self, params, batch_ndim):
        (logits,) = params
        return _BernoulliLogits(logits).to_event(event_dims(logits, batch_ndim))


class ContinuousBernoulli(AbstractFamily):
    """Continuous Bernoulli with logits ``net(x)``; data in [0, 1] (grey levels kept).

    Loaiza-Ganem & Cunningham 2019 (arXiv 1907.06845): the density
    ``C(l) l^y (1 - l)^(1 - y)`` on ``[0, 1]`` with ``l = sigmoid(logits)`` and the
    normalizer ``C(l) = 2 artanh(1 - 2l) / (1 - 2l)`` (``C = 2`` at ``l = 1/2``), a proper
    likelihood for intensities where a Bernoulli decoder on grey values is not one.
    The log normalizer is computed stably for every logit, including near 0 (a series)
    and for large ``|logits|``. Samples are reparameterized (inverse CDF).
    """

    support: ClassVar[constraints.Constraint] = constraints.unit_interval

    def __init__(self, net: Callable[[Array], Array]):
        self.net = net

    def _params(self, x):
        return (self.net(x),)

    def _build(self, params, batch_ndim):
        (logits,) = params
        return ContinuousBernoulliLogits(logits).to_event(event_dims(logits, batch_ndim))


class Beta(AbstractFamily):
    """Beta with concentrations from ``2d`` outputs; data strictly inside (0, 1)."""

    min_concentration: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = constraints.open_interval(0.0, 1.0)

    def __init__(self, net: Callable[[Array], Array], *, min_concentration: float = 1e-3):
        self.net = net
        self.min_concentration = float(min_concentration)

    def _params(self, x):
        a, b = split_outputs(self.net(x), 2, "Beta", "two concentrations per dimension (2*d)")
        return positive(a, "softplus", self.min_concentration), positive(b, "softplus", self.min_concentration)

    def _build(self, params, batch_ndim):
        c1, c0 = params
        return nd.Beta(c1, c0).to_event(event_dims(c1, batch_ndim))


class SimplexWithin(constraints.Constraint):
    """Points of the probability simplex (last axis), up to ``tol`` in their sum."""

    event_dim = 1

    def __init__(self, tol: float = 1e-4):
        self.tol = tol

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.all(x >= 0, -1) & (jnp.abs(jnp.sum(x, -1) - 1.0) < self.tol)

    def feasible_like(self, prototype):
        return jnp.full_like(prototype, 1.0 / prototype.shape[-1])


class AbstractDirichlet(AbstractFamily):
    """Abstract: a Dirichlet over the last axis with concentration ``softplus(net(x)) + floor``.
    Concrete classes choose the numpyro distribution (``_build``)."""

    min_concentration: float = eqx.field(static=True)
    support: ClassVar[constraints.Constraint] = SimplexWithin(1e-4)

    def _params(self, x):
        return (positive(self.net(x), "softplus", self.min_concentration),)


class Dirichlet(AbstractDirichlet):
    """Dirichlet over the last axis with concentration ``softplus(net(x)) + floor``.

    Samples are reparameterized by implicit gradients of the Gamma sampler.
    """

    def __init__(self, net: Callable[[Array], Array], *, min_concentration: float = 1e-3):
        self.net = net
        self.min_concentration = float(min_concentration)

    def _build(self, params, batch_ndim):
        (alpha,) = params
        return nd.Dirichlet(alpha).to_event(event_dims(alpha, batch_ndim, 1))


class _OneHot(constraints.Constraint):
    """One-hot rows (last axis): every value 0 or 1, exactly one 1."""

    event_dim = 1

    def __call__(self, x):
        x = jnp.asarray(x)
        return jnp.all((x == 0) | (x == 1), -1) & (jnp.sum(x, -1) == 1)

    def feasible_like(self, prototype):
        return jnp.zeros_like(prototype).at[..., 0].set(1)


class Categorical(AbstractFamily):
    """``d`` categorical variables with ``num_classes`` each; net outputs ``d * k`` logits.

    With ``one_hot=False`` values are class indices ``[d]``; with ``one_hot=True``
    values are one-hot ``[d, k]`` (use this form for categorical latents). The mean is
    the class probabilities ``[*batch, d, k]`` (the mean of the one-hot form).
    """

    num_classes: int = eqx.field(static=True)
    one_hot: bool = eqx.field(static=True)

    def __init__(self, net: Callable[[Array], Array], num_classes: int, *, one_hot: bool = False):
        self.net = net
        self.num_classes = int_at_least(num_classes, 2, "Categorical num_classes")
        self.one_hot = one_hot

    @property
    def support(self) -> constraints.Constraint:
        if self.one_hot:
            return _OneHot()
        return constraints.integer_interval(0, self.num_classes - 1)

    def _params(self, x):
        out = self.net(x)
        k = self.num_classes
        if out.shape[-1] % k:
            raise ValueError(
                f"Categorical with num_classes={k} needs a network output size that is a "
                f"multiple of {k}; got {out.shape[-1]}."
            )
        return (jnp.reshape(out, (*out.shape[:-1], -1, k)),)

    def _build(self, params, batch_ndim):
        (logits,) = params
        if self.one_hot:
            return OneHotCategoricalLogits(logits).to_event(event_dims(logits, batch_ndim, 1))
        return _IntCategorical(logits).to_event(event_dims(logits, batch_ndim, 1))


@jax.custom_jvp
def softplus(x: Array) -> Array:
    """``log(1 + exp(x))``, stable for any ``|x|``, with derivative ``sigmoid(x)``.

    The same values as ``jax.nn.softplus`` but several times cheaper on CPU (one ``exp``
    and one ``log1p`` per element; ``jax.nn.softplus`` goes through ``logaddexp``): the
    Bernoulli log-likelihood of a 784-pixel image is one softplus per pixel, a large
    part of a decoder's elementwise work.
    """
    return jnp.maximum(x, 0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    e = jnp.exp(-jnp.abs(x))
    sigmoid = jnp.where(x >= 0, 1.0, e) / (1.0 + e)
    return jnp.maximum(x, 0) + jnp.log1p(e), sigmoid * t


class _BernoulliLogits(nd.BernoulliLogits):
    """BernoulliLogits with a log-prob whose gradient is right at logits == 0.

    ``y l - softplus(l)`` equals ``y log sigmoid(l) + (1 - y) log sigmoid(-l)`` and needs
    one softplus instead of two (:func:`softplus` is stable for any ``|l|``).
    """

    def log_prob(self, value):
        value = jnp.asarray(value, dtype=self.logits.dtype)
        return value * self.logits - softplus(self.logits)


def _safe(small: Array, eta: Array, fill: float = 1.0) -> Array:
    """``eta`` with the entries where ``small`` replaced by ``fill`` (NaN-free gradients)."""
    return jnp.where(small, fill, eta)


def cb_log_normalizer(logits: ArrayLike) -> Array:
    """``log C`` of the continuous Bernoulli with ``logits``: ``log(eta / tanh(eta / 2))``.

    ``log |eta| - log(-expm1(-|eta|)) + log1p(exp(-|eta|))`` away from 0 (exact for any
    ``|eta|``), the series ``log 2 + eta^2/12 - 7 eta^4/1440 + 31 eta^6/90720`` below
    ``|eta| = 0.1`` (error below 1e-12 there).
    """
    eta = jnp.asarray(logits)
    small = jnp.abs(eta) < 0.1
    a = jnp.abs(_safe(small, eta))
    far = jnp.log(a) - jnp.log(-jnp.expm1(-a)) + jnp.log1p(jnp.exp(-a))
    e2 = jnp.square(jnp.where(small, eta, 0.0))
    near = math.log(2.0) + e2 / 12 - 7 * e2**2 / 1440 + 31 * e2**3 / 90720
    return jnp.where(small, near, far)


def cb_mean(logits: ArrayLike) -> Array:
    """Mean of the continuous Bernoulli: ``1 / (1 - exp(-eta)) - 1 / eta`` (1/2 at 0)."""
    eta = jnp.asarray(logits)
    small = jnp.abs(eta) < 0.1
    e = _safe(small, eta)
    far = 1.0 / (-jnp.expm1(-e)) - 1.0 / e
    es = jnp.where(small, eta, 0.0)
    near = 0.5 + es / 12 - es**3 / 720
    return jnp.where(small, near, far)


def cb_variance(logits: ArrayLike) -> Array:
    """Variance of the continuous Bernoulli: ``1/eta^2 - 1/(4 sinh^2(eta/2))`` (1/12 at 0)."""
    eta = jnp.asarray(logits)
    small = jnp.abs(eta) < 0.5
    e = _safe(small, eta)
    far = 1.0 / e**2 - 0.25 / jnp.square(jnp.sinh(e / 2))
    e2 = jnp.square(jnp.where(small, eta, 0.0))
    near = 1.0 / 12 - e2 / 240 + e2**2 / 6048
    return jnp.where(small, near, far)


def cb_icdf(u: ArrayLike, logits: ArrayLike) -> Array:
    """Inverse CDF: ``log(1 + u (exp(eta) - 1)) / eta`` (``u`` at ``eta = 0``)."""
    u, eta = jnp.asarray(u), jnp.asarray(logits)
    a = jnp.abs(eta)
    small, large = a < 1e-3, a > 10.0
    e = _safe(small, eta)
    mid = jnp.log1p(u * jnp.expm1(jnp.clip(e, -10.0, 10.0))) / e
    big = jnp.logaddexp(jnp.log1p(-u), jnp.log(u) + e) / e  # for |eta| > 10, no overflow
    es = jnp.where(small, eta, 0.0)
    near = u + es * u * (1 - u) / 2 + es**2 * u * (1 - u) * (1 - 2 * u) / 6
    return jnp.clip(jnp.where(small, near, jnp.where(large, big, mid)), 0.0, 1.0)


class ContinuousBernoulliLogits(nd.Distribution):
    """The continuous Bernoulli distribution on ``[0, 1]`` (numpyro interface).

    ``log_prob(y) = y * logits - softplus(logits) + log C(logits)``; see
    :class:`ContinuousBernoulli`.
    """

    arg_constraints = {"logits": constraints.real}
    support = constraints.unit_interval
    reparametrized_params = ["logits"]
    pytree_data_fields = ("logits",)

    def __init__(self, logits, *, validate_args=None):
        self.logits = jnp.asarray(logits)
        super().__init__(batch_shape=jnp.shape(self.logits), validate_args=validate_args)

    def log_prob(self, value):
        value = jnp.asarray(value, dtype=self.logits.dtype)
        return value * self.logits - softplus(self.logits) + cb_log_normalizer(self.logits)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + tuple(self.batch_shape)
        u = jax.random.uniform(key, shape, dtype=self.logits.dtype, minval=jnp.finfo(self.logits.dtype).tiny)
        return cb_icdf(u, self.logits)

    def rsample(self, key, sample_shape=()):
        return self.sample(key, sample_shape)

    def cdf(self, value):
        """``expm1(eta y) / expm1(eta)`` (``y`` at ``eta = 0``)."""
        eta = self.logits
        small = jnp.abs(eta) < 1e-3
        e = _safe(small, eta)
        big = jnp.abs(e) > 10.0
        # large |eta|: exp(eta (y - 1)) style forms avoid overflow
        ratio = jnp.where(
            big,
            jnp.where(
                e > 0,
                jnp.exp(e * (value - 1.0)) * -jnp.expm1(-e * value) / -jnp.expm1(-e),
                jnp.expm1(e * value) / jnp.expm1(e),
            ),
            jnp.expm1(jnp.clip(e, -10.0, 10.0) * value) / jnp.expm1(jnp.clip(e, -10.0, 10.0)),
        )
        return jnp.where(small, value, ratio)

    def icdf(self, u):
        return cb_icdf(u, self.logits)

    @property
    def mean(self):
        return cb_mean(self.logits)

    @property
    def variance(self):
        return cb_variance(self.logits)


class _IntCategorical(nd.CategoricalLogits):
    """numpyro's CategoricalLogits that accepts float-typed class indices."""

    def log_prob(self, value):
        return super().log_prob(jnp.asarray(value).astype(jnp.int32))
