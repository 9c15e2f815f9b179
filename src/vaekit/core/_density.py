"""Priors and conditionals given as log-density functions (the aevb interface).

* :class:`DensityPrior` ``(log_prob, sample=None, event_shape=...)``: ``p(z)`` from a
  function of one latent ``z [*event]`` (and, optionally, trainable ``params``). KL terms
  against it are Monte Carlo; ``vk.sample`` needs ``sample``.
* :class:`DensityConditional` ``(net, log_prob, event_shape=...)``: ``p(x | z)`` (a decoder)
  from a log-likelihood function ``log_prob(x, out)`` of one example ``x [*event]`` and the
  network's output ``out = net(z)`` for it.

Both wrap the functions in :class:`FunctionDistribution`, a numpyro distribution that
applies them to every example of a batch with ``jax.vmap``.
"""

# no ``from __future__ import annotations``: equinox reads class annotations at creation.
import math
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jax.typing import ArrayLike
from jaxtyping import Array
from numpyro.distributions import constraints

from ._conditionals import Conditional, check_input
from ._fixed import resolve, value
from ._priors import Prior


def _shape(event_shape: Any, name: str) -> tuple[int, ...]:
    if isinstance(event_shape, int) and not isinstance(event_shape, bool):
        event_shape = (event_shape,)
    try:
        shape = tuple(int(s) for s in event_shape)  # pyright: ignore[reportGeneralTypeIssues]
    except TypeError:
        raise TypeError(f"{name} needs event_shape=<shape of one value>, e.g. (784,); got {event_shape!r}.") from None
    if any(s < 1 for s in shape):
        raise ValueError(f"{name}: event_shape must have positive sizes, got {shape}.")
    return shape


def _flat_map(fn: Callable, lead: tuple[int, ...], *args: Array) -> Array:
    """``fn`` over the ``lead`` leading axes of every argument (flattened, ``jax.vmap``)."""
    n = math.prod(lead)
    flat = [jnp.reshape(a, (n, *a.shape[len(lead) :])) for a in args]
    out = jax.vmap(fn)(*flat)
    return jnp.reshape(out, (*lead, *out.shape[1:]))


class FunctionDistribution(nd.Distribution):
    """A numpyro distribution from functions of one value.

    :param log_prob_fn: ``log_prob_fn(y, out) -> scalar`` for one value ``y [*event]`` and
        its parameters ``out`` (one row of ``params``; ``None`` when ``params`` is ``None``).
    :param event_shape: the shape of one value.
    :param params: ``[*batch, ...]`` parameters (the batch shape is their first
        ``batch_ndim`` axes), or ``None`` (batch shape ``()``).
    :param sample_fn: ``sample_fn(key, out) -> y [*event]``, or ``None``: sampling then
        raises an error that says what to pass (``what`` names the owner in it).
    :param mean_fn: ``mean_fn(out) -> [*event]``, or ``None``.
    :param reparameterized: whether ``sample_fn`` is differentiable in ``out``
        (``rsample`` then differentiates through it).
    """

    arg_constraints = {}  # noqa: RUF012 (numpyro's class attribute)
    pytree_data_fields = ("params",)
    pytree_aux_fields = (
        "log_prob_fn",
        "sample_fn",
        "mean_fn",
        "what",
        "_support",
        "reparametrized_params",
    )

    def __init__(
        self,
        log_prob_fn: Callable,
        event_shape: tuple[int, ...],
        *,
        params: Any = None,
        batch_ndim: int = 0,
        sample_fn: Callable | None = None,
        mean_fn: Callable | None = None,
        support: constraints.Constraint = constraints.real,
        reparameterized: bool = False,
        what: str = "this distribution",
        validate_args=None,
    ):
        self.log_prob_fn, self.sample_fn, self.mean_fn, self.what = (
            log_prob_fn,
            sample_fn,
            mean_fn,
            what,
        )
        self.params = params
        self._support = support
        self.reparametrized_params = ("params",) if reparameterized else ()
        batch = () if params is None else tuple(jax.tree_util.tree_leaves(params)[0].shape[:batch_ndim])
        super().__init__(
            batch_shape=batch,
            event_shape=tuple(event_shape),
            validate_args=validate_args,
        )

    @property
    def has_rsample(self) -> bool:
        return bool(self.reparametrized_params) and self.sample_fn is not None

    def _params_to(self, lead: tuple[int, ...]) -> Any:
        b = len(self.batch_shape)
        return jax.tree_util.tree_map(lambda p: jnp.broadcast_to(p, (*lead, *p.shape[b:])), self.params)

    def log_prob(self, value: ArrayLike) -> Array:
        y = jnp.asarray(value)
        ev = len(self.event_shape)
        if tuple(y.shape[y.ndim - ev :]) != tuple(self.event_shape):
            raise ValueError(
                f"{self.what}: values must end in the event shape {self.event_shape}, got shape {tuple(y.shape)}."
            )
        lead = jax.lax.broadcast_shapes(tuple(y.shape[: y.ndim - ev]), tuple(self.batch_shape))
        y = jnp.broadcast_to(y, (*lead, *self.event_shape))
        if self.params is None:
            return _flat_map(lambda yi: self.log_prob_fn(yi, None), lead, y)
        return _flat_map(lambda yi, pi: self.log_prob_fn(yi, pi), lead, y, *[self._params_to(lead)])

    def _draw(self, key, sample_shape):
        if self.sample_fn is None:
            raise ValueError(
                f"{self.what} has no sampler, so it cannot be sampled (e.g. by vk.sample). Pass "
                "sample=<function> when you build it (see its docstring); training and "
                "log-likelihoods need only its log-density."
            )
        lead = (*tuple(sample_shape), *self.batch_shape)
        if not lead:
            return self.sample_fn(key, self.params)
        keys = jax.random.split(key, math.prod(lead))
        keys = jnp.reshape(keys, (*lead, *keys.shape[1:]))
        if self.params is None:
            return _flat_map(lambda k: self.sample_fn(k, None), lead, keys)  # pyright: ignore[reportOptionalCall]
        return _flat_map(self.sample_fn, lead, keys, self._params_to(lead))

    def rsample(self, key, sample_shape=()):
        return self._draw(key, sample_shape)

    def sample(self, key, sample_shape=()):
        return jax.lax.stop_gradient(self._draw(key, sample_shape))

    @property
    def mean(self):
        if self.mean_fn is None:
            raise ValueError(f"{self.what} has no mean function; pass mean=<function> when you build it.")
        if self.params is None:
            return self.mean_fn(None)
        lead = tuple(self.batch_shape)
        if not lead:
            return self.mean_fn(self.params)
        return _flat_map(self.mean_fn, lead, self.params)


class DensityPrior(Prior):
    """A prior given by its log-density: ``log_prob(z) -> scalar`` for one latent ``z``
    of shape ``event_shape`` (or ``log_prob(z, params)`` when ``params``, a pytree of
    trainable arrays, is given).

    The KL term against it is estimated by Monte Carlo (no closed form is known). ``vk.sample``
    needs ``sample(key) -> one z`` (``sample(key, params)`` with ``params``); without it
    ``vk.sample`` fails with an error that says so.

    Example: ``vk.DensityPrior(lambda z: -0.5 * jnp.sum(z**2) - z.size * 0.9189385, event_shape=(2,))``.
    """

    density: Callable = eqx.field(static=True)
    sampler: Callable | None = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    params: Any

    def __init__(
        self,
        log_prob: Callable,
        sample: Callable | None = None,
        *,
        event_shape: int | tuple[int, ...],
        params: Any = None,
    ):
        if not callable(log_prob):
            raise TypeError(f"DensityPrior needs a function log_prob(z) -> scalar, got {type(log_prob).__name__}.")
        if sample is not None and not callable(sample):
            raise TypeError(f"DensityPrior sample must be a function sample(key) -> z, got {type(sample).__name__}.")
        self.density, self.sampler = log_prob, sample
        self.shape = _shape(event_shape, "DensityPrior")
        self.params = params

    def dist(self) -> nd.Distribution:
        params = jax.tree_util.tree_map(value, self.params) if self.params is not None else None
        if params is None:
            lp, sf = (
                (lambda z, _: self.density(z)),
                (None if self.sampler is None else (lambda k, _: self.sampler(k))),  # pyright: ignore[reportOptionalCall]
            )
        else:
            lp, sf = self.density, self.sampler
        return FunctionDistribution(lp, self.shape, params=params, sample_fn=sf, what="This vk.DensityPrior")

    def _check(self) -> None:
        z = jax.ShapeDtypeStruct(self.shape, jnp.float32)
        out = jax.eval_shape(lambda z: resolve(self).dist().log_prob(z), z)
        if out.shape != ():
            raise ValueError(
                f"DensityPrior log_prob must return a scalar for one z of shape {self.shape}, got shape {out.shape}."
            )

    def __check_init__(self):
        self._check()


class DensityConditional(Conditional):
    """A conditional ``p(y | x)`` (typically a decoder ``p(x | z)``) from a log-likelihood
    function: ``log_prob(y, out) -> scalar`` for one value ``y`` of shape ``event_shape`` and
    the network's output ``out = net(x)`` for it.

    :param mean: ``mean(out) -> [*event]`` (needed by ``vk.sample``/``vk.reconstruct``).
    :param sample: ``sample(key, out) -> y`` (needed to draw from it; differentiable in
        ``out`` if ``reparameterized=True``, which lets it serve as an encoder).
    :param support: numpyro constraint the data must satisfy (checked by ``vk.fit``);
        ``constraints.real`` by default.

    Example, a Bernoulli decoder: ``vk.DensityConditional(net, lambda x, l: jnp.sum(x * l -
    jax.nn.softplus(l)), event_shape=(784,), mean=jax.nn.sigmoid)``.
    """

    net: Callable[[Array], Any]
    log_likelihood: Callable = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    mean_fn: Callable | None = eqx.field(static=True)
    sample_fn: Callable | None = eqx.field(static=True)
    support: constraints.Constraint = eqx.field(static=True)
    reparameterized: bool = eqx.field(static=True)

    def __init__(
        self,
        net: Callable[[Array], Any],
        log_prob: Callable,
        *,
        event_shape: int | tuple[int, ...],
        mean: Callable | None = None,
        sample: Callable | None = None,
        support: constraints.Constraint = constraints.real,
        reparameterized: bool = False,
    ):
        if not callable(log_prob):
            raise TypeError(
                f"DensityConditional needs a function log_prob(y, out) -> scalar, got {type(log_prob).__name__}."
            )
        self.net = net
        self.log_likelihood = log_prob
        self.shape = _shape(event_shape, "DensityConditional")
        self.mean_fn, self.sample_fn = mean, sample
        self.support = support
        self.reparameterized = bool(reparameterized)

    def dist(self, x: ArrayLike, batch_ndim: int = 1) -> nd.Distribution:
        self_ = resolve(self)
        x = jnp.asarray(x)
        if batch_ndim >= 1:
            check_input(self_, x, batch_ndim)  # type: ignore[arg-type]
            out = _flat_map(self_.net, tuple(x.shape[:batch_ndim]), x)
        else:
            out = self_.net(x)
        return FunctionDistribution(
            self.log_likelihood,
            self.shape,
            params=out,
            batch_ndim=batch_ndim,
            sample_fn=self.sample_fn,
            mean_fn=self.mean_fn,
            support=self.support,
            reparameterized=self.reparameterized,
            what="This vk.DensityConditional",
        )

    def mean(self, x: ArrayLike, batch_ndim: int = 1) -> Array:
        return self.dist(x, batch_ndim).mean

    def parameters(self, x: ArrayLike, batch_ndim: int = 1) -> dict[str, Array]:
        return {"out": self.dist(x, batch_ndim).params}

    def support_check(self, y: Any) -> Any:
        return self.support(jnp.asarray(y))
