"""Flow posteriors: a base encoder distribution pushed through bijections.

``q(z|x)`` is ``z = f_L o ... o f_1(eps)``, ``eps ~ base(x)``, with density by the change
of variables ``log q(z|x) = log base(eps|x) - sum_l log|det df_l/d.|``. The layers are
numpyro :class:`~numpyro.distributions.transforms.Transform` objects built from
trainable equinox modules, so any numpyro transform (``AffineTransform`` etc., via
:class:`Transform`) composes with them. Flow parameters are global (shared by all
inputs); the base carries the amortisation. The KL term has no closed form, so the
ELBO uses the Monte Carlo KL.

* :class:`Planar`: ``f(z) = z + u_hat tanh(w.z + b)`` (Rezende & Mohamed 2015, arXiv
  1505.05770); ``u_hat`` keeps ``w.u_hat >= -1`` so ``f`` is invertible. The inverse
  solves a 1-D monotone equation by bisection, then one Newton step so that gradients
  through the inverse are the implicit ones.
* :class:`IAF`: affine autoregressive layer ``z = eps * exp(s(eps)) + m(eps)`` with a
  MADE network (Kingma et al. 2016, arXiv 1606.04934); log-det ``sum s``. The inverse
  takes ``d`` passes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpyro.distributions as nd
from jaxtyping import Array, PRNGKeyArray
from numpyro.distributions import constraints
from numpyro.distributions.transforms import Transform as _NTransform

from .._validate import int_at_least, positive_int
from ..core import Conditional, resolve


class _PlanarTransform(_NTransform):
    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, w: Array, u: Array, b: Array):
        self.w, self.u, self.b = w, u, b

    def __call__(self, x):
        return x + self.u * jnp.tanh(x @ self.w + self.b)[..., None]

    def _inverse(self, y):
        c = self.w @ self.u  # >= -1 by construction
        t = y @ self.w  # solve a + c tanh(a + b) = t for a = w.x
        g = lambda a: a + c * jnp.tanh(a + self.b) - t  # noqa: E731
        sg = jax.lax.stop_gradient
        lo, hi = sg(t - jnp.abs(c) - 1.0), sg(t + jnp.abs(c) + 1.0)

        def bisect(_, lh):
            lo, hi = lh
            mid = 0.5 * (lo + hi)
            pos = sg(g(mid)) > 0
            return jnp.where(pos, lo, mid), jnp.where(pos, mid, hi)

        lo, hi = jax.lax.fori_loop(0, 60, bisect, (lo, hi))
        a = sg(0.5 * (lo + hi))
        a = a - g(a) / (1.0 + c * (1.0 - jnp.tanh(a + self.b) ** 2))
        return y - self.u * jnp.tanh(a + self.b)[..., None]

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        h = 1.0 - jnp.tanh(x @ self.w + self.b) ** 2
        return jnp.log(jnp.abs(1.0 + h * (self.w @ self.u)))

    def tree_flatten(self):
        return (self.w, self.u, self.b), (("w", "u", "b"), {})


class Planar(eqx.Module):
    """A planar flow layer on ``d``-dimensional latents.

    :param dim: latent dimension.
    :param init_scale: standard deviation of the initial ``w`` and ``u`` (small: near identity).
    """

    w: Array
    u: Array
    b: Array

    def __init__(self, dim: int, *, key: PRNGKeyArray, init_scale: float = 0.01):
        dim = positive_int(dim, "Planar(dim): dim")
        kw, ku = jax.random.split(key)
        self.w = init_scale * jax.random.normal(kw, (dim,))
        self.u = init_scale * jax.random.normal(ku, (dim,))
        self.b = jnp.zeros(())

    def transform(self) -> _NTransform:
        wu = self.w @ self.u
        u_hat = self.u + (-1.0 + jax.nn.softplus(wu) - wu) * self.w / (self.w @ self.w + 1e-8)
        return _PlanarTransform(self.w, u_hat, self.b)


class _MADE(eqx.Module):
    """Masked MLP ``d -> hidden -> 2d`` whose outputs ``i`` depend only on inputs ``< i``."""

    weights: tuple[Array, ...]
    biases: tuple[Array, ...]
    masks: tuple[Array, ...]
    dim: int = eqx.field(static=True)

    def __init__(self, dim: int, hidden: Sequence[int], key: PRNGKeyArray):
        deg_in = jnp.arange(1, dim + 1)
        degs = [deg_in]
        for h in hidden:
            degs.append(jnp.arange(h) % max(dim - 1, 1) + 1)
        deg_out = jnp.concatenate([deg_in, deg_in])
        masks = [(d1[None, :] >= d0[:, None]).astype(jnp.float32) for d0, d1 in zip(degs[:-1], degs[1:])]
        masks.append((deg_out[None, :] > degs[-1][:, None]).astype(jnp.float32))
        sizes = [dim, *hidden, 2 * dim]
        keys = jax.random.split(key, len(sizes) - 1)
        ws = []
        for i, (a, b, k) in enumerate(zip(sizes[:-1], sizes[1:], keys)):
            last = i == len(sizes) - 2
            ws.append(jnp.zeros((a, b)) if last else jax.random.normal(k, (a, b)) / jnp.sqrt(a))
        self.weights = tuple(ws)
        self.biases = tuple(jnp.zeros(b) for b in sizes[1:])
        self.masks = tuple(masks)
        self.dim = dim

    def __call__(self, x: Array) -> tuple[Array, Array]:
        h = x
        n = len(self.weights)
        for i, (w, b, m) in enumerate(zip(self.weights, self.biases, jax.lax.stop_gradient(self.masks))):
            h = h @ (w * m) + b
            if i < n - 1:
                h = jax.nn.relu(h)
        return h[..., : self.dim], h[..., self.dim :]


class _AffineAutoregressive(_NTransform):
    domain = constraints.real_vector
    codomain = constraints.real_vector

    def __init__(self, made: _MADE):
        self.made = made

    def _shift_log_scale(self, x):
        m, s = self.made(x)
        return m, jnp.clip(s, -5.0, 3.0)

    def __call__(self, x):
        m, s = self._shift_log_scale(x)
        return x * jnp.exp(s) + m

    def _inverse(self, y):
        x = jnp.zeros_like(y)
        for _ in range(self.made.dim):  # output i depends on x[:i] only
            m, s = self._shift_log_scale(x)
            x = (y - m) * jnp.exp(-s)
        return x

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        return jnp.sum(self._shift_log_scale(x)[1], -1)

    def tree_flatten(self):
        return (self.made,), (("made",), {})


class IAF(eqx.Module):
    """An affine autoregressive (IAF-style) layer with a MADE network; starts as identity.

    :param dim: latent dimension (>= 2).
    :param hidden: MADE hidden widths.
    """

    made: _MADE

    def __init__(self, dim: int, hidden: Sequence[int] = (32,), *, key: PRNGKeyArray):
        dim = int_at_least(dim, 2, "IAF(dim): dim")
        self.made = _MADE(dim, tuple(int(h) for h in hidden), key)

    def transform(self) -> _NTransform:
        return _AffineAutoregressive(self.made)


class Transform(eqx.Module):
    """Wrap a fixed numpyro transform (e.g. ``AffineTransform``) as a flow layer.

    ``make()`` must return the numpyro transform; its arrays are not trained.
    """

    make: Callable[[], _NTransform]

    def transform(self) -> _NTransform:
        return self.make()


class FlowPosterior(Conditional):
    """``q(z|x)``: a base conditional (e.g. ``vk.Gaussian``) followed by flow layers.

    :param base: a :class:`vaekit.Conditional` over ``[d]`` latents (its ``net`` is the
        encoder network).
    :param layers: flow layers (:class:`Planar`, :class:`IAF`, :class:`Transform`), applied in order.
    """

    base: Conditional
    layers: tuple[Any, ...]

    def __init__(self, base: Conditional, layers: Sequence[Any]):
        if not isinstance(base, Conditional):
            raise TypeError(f"FlowPosterior base must be a vaekit Conditional, got {type(base).__name__}.")
        for layer in layers:
            if not hasattr(layer, "transform"):
                raise TypeError(
                    f"FlowPosterior layers must be vk.Planar, vk.IAF or vk.flows.Transform, got {type(layer).__name__}."
                )
        self.base = base
        self.layers = tuple(layers)

    def dist(self, x, batch_ndim: int = 1):
        self_ = resolve(self)
        d = self_.base.dist(x, batch_ndim)
        if not self_.layers:
            return d
        return nd.TransformedDistribution(d, [layer.transform() for layer in self_.layers])

    def mean(self, x, batch_ndim: int = 1):
        """The base mean pushed through the flow (not the exact mean of ``q``)."""
        self_ = resolve(self)
        z = self_.base.mean(x, batch_ndim)
        for layer in self_.layers:
            z = layer.transform()(z)
        return z

    def parameters(self, x, batch_ndim: int = 1):
        """The base's parameters (the flow's own are global, not per example)."""
        return self.base.parameters(x, batch_ndim)

    def support_check(self, y):
        return self.base.support_check(y)
