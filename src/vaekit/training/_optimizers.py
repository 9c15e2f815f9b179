"""Optimizers: the default recipe (clipping, Adam, skipping non-finite steps) and the
optax transformation that fuses clipping with the skip."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array


def default_optimizer(
    learning_rate: float | optax.Schedule = 1e-3,
    clip_norm: float | None = 100.0,
    *,
    betas: tuple[float, float] = (0.9, 0.999),
    weight_decay: float = 0.0,
    skip_nonfinite: bool = True,
):
    """Global-norm clipping, Adam, and skipping non-finite updates.

    Equal arguments give the same (pure) transformation object, so repeated
    :func:`fit` calls with equal settings reuse the compiled epoch instead of
    recompiling.

    The recipe of the Dirichlet-VAE original (ClipNorm, NoNaN, ADAM): an update whose
    gradient has a NaN/inf is dropped (up to 10 in a row, then it is applied so the
    failure shows); that recipe is ``default_optimizer(lr, 1.0, betas=(0.9, 0.99))``.

    :param clip_norm: global-norm clipping threshold (None: no clipping).
    :param betas: Adam's ``(b1, b2)``.
    :param weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019); 0: Adam.
    :param skip_nonfinite: drop updates whose gradient has a NaN/inf.
    """
    try:
        b1, b2 = (float(b) for b in betas)
    except (TypeError, ValueError):
        raise ValueError(f"betas must be two numbers (b1, b2), got {betas!r}.") from None
    if not (0 <= b1 < 1 and 0 <= b2 < 1):
        raise ValueError(f"betas must lie in [0, 1), got {betas!r}.")
    if clip_norm is not None and not clip_norm > 0:
        raise ValueError(f"clip_norm must be positive (or None for no clipping), got {clip_norm!r}.")
    if not weight_decay >= 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay!r}.")
    if (b1, b2, weight_decay, skip_nonfinite) == (0.9, 0.999, 0.0, True) and clip_norm is not None:
        return cached(_default_optimizer, learning_rate, clip_norm)  # the same object as before
    return cached(_optimizer, learning_rate, clip_norm, b1, b2, float(weight_decay), bool(skip_nonfinite))


def _default_optimizer(learning_rate, clip_norm):
    return clip_skip_adam(learning_rate, clip_norm, max_consecutive_errors=10)


def _optimizer(learning_rate, clip_norm, b1, b2, weight_decay, skip_nonfinite):
    if weight_decay:
        inner = optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)
    else:
        inner = optax.adam(learning_rate, b1=b1, b2=b2)
    if skip_nonfinite:
        clip = float("inf") if clip_norm is None else clip_norm
        if not weight_decay:
            return clip_skip_adam(learning_rate, clip, b1=b1, b2=b2, max_consecutive_errors=10)
        return clip_skip_nonfinite(inner, clip, max_consecutive_errors=10)
    if clip_norm is None:
        return inner
    return optax.chain(optax.clip_by_global_norm(clip_norm), inner)


class SkipNonFiniteState(NamedTuple):
    """State of :func:`clip_skip_nonfinite`: the inner state and counts of skipped steps."""

    inner_state: Any
    notfinite_count: Array  # consecutive non-finite gradients so far
    total_notfinite: Array


def clip_skip_nonfinite(
    inner: optax.GradientTransformation, clip_norm: float, *, max_consecutive_errors: int = 10
) -> optax.GradientTransformation:
    """Global-norm clipping, then ``inner``; a step whose gradient is not finite is skipped.

    The same updates as ``optax.apply_if_finite(optax.chain(optax.clip_by_global_norm(
    clip_norm), inner), max_consecutive_errors)``, but cheaper per step: one global norm
    serves both the finiteness check (a NaN or inf anywhere makes the norm non-finite)
    and the clipping, and a skipped step keeps the old state through ``jnp.where``
    selects that XLA fuses into ``inner``'s elementwise loops, instead of a ``lax.cond``
    that materialises the state (0.76 -> 0.53 ms per step for the 0.8 M parameters of
    the reference model on 2 CPU cores; BENCHMARKS.md). A skipped step returns zero
    updates and leaves ``inner``'s state unchanged; after ``max_consecutive_errors``
    skips in a row the update is applied anyway, so the failure shows. A finite gradient
    whose norm overflows float32 also counts as non-finite.
    """

    def init(params):
        zero = jnp.zeros([], jnp.int32)
        return SkipNonFiniteState(inner.init(params), zero, zero)

    def update(updates, state, params=None):
        updates, finite, count, apply = _clip_and_check(updates, state, clip_norm, max_consecutive_errors)
        new_updates, new_inner = inner.update(updates, state.inner_state, params)
        new_updates = jax.tree.map(lambda u: jnp.where(apply, u, jnp.zeros_like(u)), new_updates)
        new_inner = jax.tree.map(lambda n, o: jnp.where(apply, n, o), new_inner, state.inner_state)
        total = state.total_notfinite + (~finite).astype(jnp.int32)
        return new_updates, SkipNonFiniteState(new_inner, count, total)

    return optax.GradientTransformation(init, update)


def _clip_and_check(grads, state: SkipNonFiniteState, clip_norm: float, max_consecutive_errors: int):
    """Clipped gradients and the skip decision shared by :func:`clip_skip_nonfinite` and
    :func:`clip_skip_adam`: ``(clipped, finite, consecutive non-finite count, apply)``."""
    norm = optax.tree.norm(grads)
    finite = jnp.isfinite(norm)
    count = jnp.where(finite, 0, state.notfinite_count + 1)
    apply = finite | (count > max_consecutive_errors)
    # as optax.clip_by_global_norm, as one scalar factor: a multiplication XLA fuses into
    # each consumer, where a per-element division is computed once and stored
    scale = jnp.where(norm < clip_norm, 1.0, clip_norm / norm)
    return jax.tree.map(lambda t: t * scale.astype(t.dtype), grads), finite, count, apply


def clip_skip_adam(
    learning_rate: float | optax.Schedule,
    clip_norm: float,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    max_consecutive_errors: int = 10,
) -> optax.GradientTransformation:
    """``clip_skip_nonfinite(optax.adam(learning_rate, b1, b2, eps), clip_norm)`` with the
    same state (checkpoints of either load into the other) and the same updates, written
    so that each step reads Adam's moments once.

    With the optax composition XLA computes the new moments twice per step: once to
    store them and once, fused, inside the parameter update, which still needs the old
    moments after they were overwritten, so it copies them first (two extra passes over
    every large parameter). Here the new (selected) moments are materialised first
    (``lax.optimization_barrier``) and the update reads them.
    """
    ref = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
    lr_tx = optax.scale_by_learning_rate(learning_rate)

    def init(params):
        zero = jnp.zeros([], jnp.int32)
        return SkipNonFiniteState(ref.init(params), zero, zero)

    def update(grads, state, params=None):
        g, finite, count, apply = _clip_and_check(grads, state, clip_norm, max_consecutive_errors)
        adam, lr_state = state.inner_state
        keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(apply, n, o), new, old)  # noqa: E731
        mu = keep(optax.tree.update_moment(g, adam.mu, b1, 1), adam.mu)
        nu = keep(optax.tree.update_moment_per_elem_norm(g, adam.nu, b2, 2), adam.nu)
        step = optax.safe_increment(adam.count)
        mu, nu = jax.lax.optimization_barrier((mu, nu))
        mu_hat = optax.tree.bias_correction(mu, b1, step)
        nu_hat = optax.tree.bias_correction(nu, b2, step)
        updates = jax.tree.map(lambda m, v: m / (jnp.sqrt(v) + eps), mu_hat, nu_hat)
        updates, new_lr_state = lr_tx.update(updates, lr_state, params)
        updates = jax.tree.map(lambda u: jnp.where(apply, u, jnp.zeros_like(u)), updates)
        adam = type(adam)(count=jnp.where(apply, step, adam.count), mu=mu, nu=nu)
        total = state.total_notfinite + (~finite).astype(jnp.int32)
        return updates, SkipNonFiniteState((adam, keep(new_lr_state, lr_state)), count, total)

    return optax.GradientTransformation(init, update)


# Why a cache: an optax transformation (and a loss function) is a pair of closures, and
# ``eqx.filter_jit`` tells closures apart by identity, so two equal optimizers built by two
# calls would compile the epoch twice. Pure factories called with equal arguments
# therefore return the very same object (tests/training/test_scale.py checks this).
@functools.lru_cache(maxsize=64)
def _cached_call(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def cached(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, memoised when the arguments are hashable (pure factories only)."""
    try:
        return _cached_call(fn, *args)
    except TypeError:  # unhashable argument
        return fn(*args)
