"""An ensemble of VAEs stacked along a leading axis, trained and scored as one model.

The ``M`` members share their architecture; their parameters are stacked (leaf shapes
``[M, ...]``, built with ``eqx.filter_vmap``). Training runs every member together in one
compiled ``lax.while_loop`` over epochs (a ``lax.scan`` over the steps of an epoch, with
``jax.vmap`` over the members), with early stopping on each member's validation loss;
scoring is vmapped over the members too. The compiled programs depend only on shapes
and static settings, so fits of the same shape reuse them.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike
from jaxtyping import Array, PRNGKeyArray

from ..core import AbstractVAE, kl_divergence
from ..core import elbo as _elbo
from . import scores as _scores


def member(stacked: AbstractVAE, i: int) -> AbstractVAE:
    """Member ``i`` of a stacked ensemble, as a plain model."""
    arrays, static = eqx.partition(stacked, eqx.is_array)
    return eqx.combine(jax.tree.map(lambda a: a[i], arrays), static)


def stack(models: list[AbstractVAE]) -> AbstractVAE:
    """Stack models of one architecture along a new leading axis (inverse of :func:`member`)."""
    arrays = [eqx.filter(m, eqx.is_array) for m in models]
    static = eqx.filter(models[0], eqx.is_array, inverse=True)
    return eqx.combine(jax.tree.map(lambda *a: jnp.stack(a), *arrays), static)


def _neg_elbo_rows(params, static, x: Array, key: PRNGKeyArray, n_samples: int = 1) -> Array:
    return -_elbo(eqx.combine(params, static), x, key, n_samples=n_samples)


def _neg_elbo_mean(params, static, x: Array, key: PRNGKeyArray) -> Array:
    return jnp.mean(_neg_elbo_rows(params, static, x, key))


def bucket(n: int) -> int:
    """Rows a set of ``n`` rows is padded to (a power of two, at least 16): fits whose
    sizes share a bucket share one compiled program."""
    return max(16, 1 << (max(1, n) - 1).bit_length())


@eqx.filter_jit
def _train(
    stacked,
    xt,
    n_t,
    xv,
    n_v,
    key,
    optimizer,
    batch_size,
    max_epochs,
    patience,
    val_samples,
):
    """``stacked`` members ``[M, ...]``; ``xt [N_t, d]`` (the first ``n_t`` rows valid),
    ``xv [N_v, d]`` (the first ``n_v`` valid), shared by the members. ``n_t``, ``n_v``,
    ``max_epochs`` and ``patience`` are traced (no recompilation when they change).
    Returns ``(best_params, best_epoch [M], best_val [M])``."""
    params, static = eqx.partition(stacked, eqx.is_inexact_array)
    n_models = jax.tree.leaves(params)[0].shape[0]
    big_t = xt.shape[0]
    spe = jnp.maximum(1, n_t // batch_size)  # optimizer steps per epoch
    grad = jax.grad(_neg_elbo_mean)
    v_mask = (jnp.arange(xv.shape[0]) < n_v).astype(xv.dtype)

    def one(p_m, s_m, i_m, k_m):
        g = grad(p_m, static, xt[i_m], k_m)
        upd, s_m = optimizer.update(g, s_m, p_m)
        return optax.apply_updates(p_m, upd), s_m

    def val_loss(p, k):
        rows = jax.vmap(lambda p_m: _neg_elbo_rows(p_m, static, xv, k, val_samples))(p)  # [M, N_v]
        return jnp.sum(jnp.where(v_mask > 0, rows, 0.0), 1) / n_v

    def epoch(carry):
        p, s, best_p, best_v, best_e, wait, e, k = carry
        k, kp, ks, kv = jax.random.split(k, 4)
        # a permutation of the n_t valid rows first, padding rows last
        u = jax.random.uniform(kp, (n_models, big_t))
        perm = jnp.argsort(jnp.where(jnp.arange(big_t) < n_t, u, 2.0), axis=1)

        def step(i, ps):
            idx = jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size, axis=1)  # [M, bs]
            keys = jax.random.split(jax.random.fold_in(ks, i), n_models)
            return jax.vmap(one)(ps[0], ps[1], idx, keys)

        p, s = jax.lax.fori_loop(0, spe, step, (p, s))
        e = e + 1
        v = val_loss(p, kv)
        active = wait < patience
        better = active & jnp.isfinite(v) & ((v < best_v - 1e-4 * jnp.abs(best_v)) | ~jnp.isfinite(best_v))

        def pick(new, old):
            return jnp.where(better.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)

        best_p = jax.tree.map(pick, p, best_p)
        best_v = jnp.where(better, v, best_v)
        best_e = jnp.where(better, e, best_e)
        wait = jnp.where(better, 0, jnp.where(active, wait + 1, wait))
        return p, s, best_p, best_v, best_e, wait, e, k

    def cond(carry):
        wait, e = carry[5], carry[6]
        return (e < max_epochs) & jnp.any(wait < patience)

    s0 = jax.vmap(optimizer.init)(params)
    inf = jnp.full((n_models,), jnp.inf, xt.dtype)
    zeros = jnp.zeros((n_models,), jnp.int32)
    init = (params, s0, params, inf, zeros, zeros, jnp.int32(0), key)
    out = jax.lax.while_loop(cond, epoch, init)
    return out[2], out[4], out[3]


def _padded(x, n_rows: int):
    x = jnp.asarray(x)
    return jnp.concatenate([x, jnp.zeros((n_rows - x.shape[0], *x.shape[1:]), x.dtype)]) if n_rows > x.shape[0] else x


def train(
    stacked: AbstractVAE,
    xt: ArrayLike,
    xv: ArrayLike,
    key: PRNGKeyArray,
    *,
    optimizer: optax.GradientTransformation,
    batch_size: int,
    max_epochs: int,
    patience: int,
    val_samples: int = 4,
) -> tuple[AbstractVAE, Array, Array]:
    """Train the stacked members together on ``xt [n_t, d]`` (Adam steps on minibatches
    of ``batch_size <= n_t``, each member with its own shuffling and noise), stopping each
    member ``patience`` epochs after its validation negative ELBO on ``xv [n_v, d]`` last
    improved (or after ``max_epochs``), and keeping its best parameters.

    :returns: ``(stacked best models, best epoch [M], best validation loss [M])``.
    """
    n_t, n_v = int(np.shape(xt)[0]), int(np.shape(xv)[0])
    best, epochs, val = _train(
        stacked,
        _padded(xt, bucket(n_t)),
        jnp.int32(n_t),
        _padded(xv, bucket(n_v)),
        jnp.int32(n_v),
        key,
        optimizer,
        int(batch_size),
        jnp.int32(max_epochs),
        jnp.int32(patience),
        int(val_samples),
    )
    return (
        eqx.combine(best, eqx.filter(stacked, eqx.is_inexact_array, inverse=True)),
        epochs,
        val,
    )


@eqx.filter_jit
def _score_block(stacked: AbstractVAE, xb: Array, key: PRNGKeyArray, method: str, n_samples: int) -> Array:
    return eqx.filter_vmap(lambda m: _scores.score_block(m, xb, key, method, n_samples))(stacked)


@eqx.filter_jit
def _parts_block(stacked: AbstractVAE, xb: Array, key: PRNGKeyArray, n_samples: int) -> tuple[Array, Array]:
    return eqx.filter_vmap(lambda m: elbo_terms(m, xb, key, n_samples))(stacked)


def elbo_terms(model: AbstractVAE, x: Array, key: PRNGKeyArray, n_samples: int) -> tuple[Array, Array]:
    """The negative ELBO of each row of ``x [B, d]`` split by feature, for a factorized
    decoder: ``(nll [B, d], kl [B])`` with ``nll[:, j] = -(1/L) sum_l log p(x_j | z_l)``,
    ``z_l ~ q(z|x)`` (the same key for every row), and ``kl = KL(q(z|x) || p(z))`` in
    closed form; ``nll.sum(1) + kl`` is the ``elbo`` score."""

    def one(xi):
        xi = xi[None]
        q = model.posterior(xi)
        z = q.sample(key, (n_samples,))  # [L, 1, k]
        lik = model.likelihood(z, batch_ndim=2)
        base = getattr(lik, "base_dist", lik)
        kl = kl_divergence(q, model.prior_dist(), method="analytic")
        return -jnp.mean(base.log_prob(xi), 0)[0], kl[0]  # [d], []

    return jax.vmap(one)(x)


def blocks(n: int, block: int):
    """``(start, stop)`` of the row blocks of ``n`` rows."""
    return [(a, min(n, a + block)) for a in range(0, n, block)]


def _pad(xb, block: int):
    pad = block - xb.shape[0]
    if pad:  # one compiled shape for every block
        xb = jnp.concatenate([xb, jnp.repeat(xb[-1:], pad, 0)])
    return xb, pad


def score(
    stacked: AbstractVAE,
    xb: ArrayLike,
    key: PRNGKeyArray,
    method: str,
    n_samples: int,
    block: int,
) -> Array:
    """Per-member scores ``[M, B]`` of one chunk of rows ``xb [B, d]`` (``B <= block``)."""
    xp, pad = _pad(jnp.asarray(xb), block)
    return _score_block(stacked, xp, key, method, n_samples)[:, : block - pad]


def parts(stacked: AbstractVAE, xb: ArrayLike, key: PRNGKeyArray, n_samples: int, block: int) -> tuple[Array, Array]:
    """Per-member :func:`elbo_terms` ``([M, B, d], [M, B])`` of one chunk ``xb [B, d]``."""
    xp, pad = _pad(jnp.asarray(xb), block)
    nll, kl = _parts_block(stacked, xp, key, n_samples)
    return nll[:, : block - pad], kl[:, : block - pad]


def block_rows(method: str, n_samples: int, n_models: int, budget: int = 2**16) -> int:
    """Rows per compiled block, so that about ``budget`` (row, sample, member) triples are
    alive at once."""
    return max(8, min(512, 2 ** int(math.log2(max(1, budget // (n_samples * n_models))))))
