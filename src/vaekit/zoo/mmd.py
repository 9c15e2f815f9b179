"""Maximum mean discrepancy (MMD) regulariser for InfoVAE / WAE-MMD.

``MMD^2(q, p) = E k(z, z') + E k(y, y') - 2 E k(z, y)`` between aggregate-posterior codes
``z`` and prior draws ``y``, estimated by the unbiased U-statistic (Gretton et al. 2012).

Kernels (``h = scale``, ``d`` = latent dimension):

* ``"rbf"``: ``exp(-|a - b|^2 / (2 h^2))``
* ``"imq"`` (inverse multiquadric, WAE): ``C / (C + |a - b|^2)`` with ``C = 2 d h^2``
  (Tolstikhin et al. 2018, arXiv 1711.01558).

:func:`mmd_objective` is a loss for ``vk.fit(objective=...)``:
``-E log p(x|z) + beta KL(q(z|x) || p(z)) + weight * MMD^2``. WAE-MMD is ``beta=0``;
InfoVAE (Zhao et al. 2017, arXiv 1706.02262) with its ``alpha, lambda`` is
``beta = 1 - alpha, weight = alpha + lambda - 1``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of
from ..core import AbstractVAE, kl_divergence, resolve

KERNELS = ("rbf", "imq")
CODES = ("sample", "mean")


def _check(kernel: str, scale: float) -> None:
    one_of(kernel, KERNELS, "kernel")
    if not scale > 0:
        raise ValueError(f"MMD kernel scale must be positive, got {scale!r}.")


def kernel_matrix(a: ArrayLike, b: ArrayLike, kernel: str = "rbf", scale: float = 1.0) -> Array:
    """``k(a_i, b_j)``: ``[n, m]`` for ``a [n, d]``, ``b [m, d]``."""
    _check(kernel, scale)
    a, b = jnp.asarray(a), jnp.asarray(b)
    d2 = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, -1)
    if kernel == "rbf":
        return jnp.exp(-d2 / (2.0 * scale**2))
    c = 2.0 * a.shape[-1] * scale**2
    return c / (c + d2)


def mmd(x: ArrayLike, y: ArrayLike, *, kernel: str = "rbf", scale: float = 1.0) -> Array:
    """Unbiased estimate of ``MMD^2`` between samples ``x [n, *d]`` and ``y [m, *d]`` (n, m >= 2)."""
    x = jnp.reshape(jnp.asarray(x), (jnp.shape(x)[0], -1))
    y = jnp.reshape(jnp.asarray(y), (jnp.shape(y)[0], -1))
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise ValueError(f"mmd needs at least 2 samples on each side, got {n} and {m}.")
    kxx = kernel_matrix(x, x, kernel, scale)
    kyy = kernel_matrix(y, y, kernel, scale)
    kxy = kernel_matrix(x, y, kernel, scale)
    sxx = (jnp.sum(kxx) - jnp.trace(kxx)) / (n * (n - 1))
    syy = (jnp.sum(kyy) - jnp.trace(kyy)) / (m * (m - 1))
    return sxx + syy - 2.0 * jnp.mean(kxy)


def mmd_objective(
    *,
    weight: float = 10.0,
    beta: float = 0.0,
    kernel: str = "imq",
    scale: float = 1.0,
    codes: str = "sample",
) -> Callable[[AbstractVAE, Array, PRNGKeyArray, Array], Array]:
    """Per-example loss ``-log p(x|z) + beta KL + weight MMD^2(codes, prior draws)``.

    :param codes: ``"sample"`` (``z ~ q(z|x)``, reparameterized) or ``"mean"``
        (the encoder mean, as in deterministic WAE encoders).
    :param kernel: ``"rbf"`` or ``"imq"``.
    :returns: ``(model, x, key, step) -> [batch]`` for ``vk.fit(objective=...)``.
    """
    _check(kernel, scale)
    one_of(codes, CODES, "codes")

    def loss(model, x, key, step):
        del step
        model = resolve(model)
        kz, kp, kk = jax.random.split(key, 3)
        q = model.posterior(x)
        z = q.rsample(kz)  # [B, *latent]
        logpx = model.likelihood(z).log_prob(x)
        codes_ = model.encoder.mean(x) if codes == "mean" else z
        prior = model.prior_dist()
        y = prior.sample(kp, (x.shape[0],))
        out = -logpx + weight * mmd(codes_, y, kernel=kernel, scale=scale)
        if beta:
            out = out + beta * kl_divergence(q, prior, method="auto", key=kk)
        return out

    return loss
