"""The compiled training step: the loss of a batch, one epoch as one ``fori_loop`` (or a
chunk of streamed batches as one ``scan``), and the evaluation loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of
from ..core import AbstractVAE, check_options, elbo, iwae_bound, trainable
from ..nets import stateful
from ._optimizers import cached

OBJECTIVES = ("elbo", "iwae")

#: ``loss_fn(model, x, key, step) -> [batch]`` per-example loss to minimise.
LossFn = Callable[[AbstractVAE, Array, PRNGKeyArray, Array], Array]


def make_loss(
    *,
    beta: float | Callable[[Array], Array] = 1.0,
    n_samples: int = 1,
    kl: str = "auto",
    estimator: str = "auto",
    objective: str | LossFn = "elbo",
) -> LossFn:
    """Per-example loss ``(model, x, key, step) -> [batch]`` for :func:`fit`.

    :param beta: KL weight, or a schedule ``beta(step)`` (e.g. ``optax.linear_schedule``
        for KL warm-up).
    :param objective: ``"elbo"`` (negative ELBO), ``"iwae"`` (negative IWAE bound with
        ``k = n_samples``), or a callable ``(model, x, key, step) -> [batch]``.
    """
    if callable(objective):
        return objective
    one_of(objective, OBJECTIVES, "objective", extra=", or a callable")
    check_options(kl=kl, estimator=estimator, n_samples=n_samples)
    # Equal settings give the same function, so fit() reuses its compiled epoch.
    return cached(_make_loss, beta, n_samples, kl, estimator, objective)


def _make_loss(beta, n_samples, kl, estimator, objective) -> LossFn:
    if objective == "iwae":
        return lambda m, x, k, step: -iwae_bound(m, x, k, k=n_samples, estimator=estimator)

    def loss(m, x, k, step):
        b = beta(step) if callable(beta) else beta
        return -elbo(m, x, k, beta=b, n_samples=n_samples, kl=kl, estimator=estimator)

    return loss


#: ``transform(key, xb) -> xb`` applied to each batch inside the compiled step
#: (e.g. dynamic binarization: ``lambda k, x: jax.random.bernoulli(k, x).astype(x.dtype)``).
BatchTransform = Callable[[PRNGKeyArray, Array], Array]


class Trainer(eqx.Module):
    """Compiled epoch and evaluation functions for one model structure and loss.

    ``train_epoch`` runs a whole epoch as one jitted loop (``train_epoch_part`` the steps
    ``start .. stop - 1`` of it, with the same compiled program for every part): a
    permutation of the on-device data is drawn from the epoch key, and each step gathers its batch,
    computes the loss gradient on the trainable arrays (``vk.trainable``) and applies
    the optimizer. Fixed arrays and everything else pass through unchanged.
    ``train_chunk`` runs the same steps over a chunk of batches read from a streamed
    :class:`~vaekit.Source`.

    With ``batch_sharding`` (a ``NamedSharding`` splitting the batch axis over a device
    mesh) every batch is split across the devices, parameters and optimizer state stay
    replicated, and XLA averages the gradients across devices (data parallelism).

    The optimizer, the loss and the batch transform are ordinary fields, as equinox keeps
    callables (``eqx.nn.MLP.activation``); ``eqx.filter_jit`` treats them as static and
    tells them apart by identity, which is why :func:`default_optimizer` and
    :func:`make_loss` return the same object for equal settings.
    """

    optimizer: optax.GradientTransformation
    loss_fn: LossFn
    batch_size: int = eqx.field(static=True)
    batch_transform: BatchTransform | None = None
    batch_sharding: NamedSharding | None = eqx.field(static=True, default=None)

    def init(self, model: AbstractVAE) -> optax.OptState:
        return self.optimizer.init(eqx.filter(model, trainable(model)))

    def _step(self, static, carry, xb: Array, k: PRNGKeyArray):
        """One optimizer step on batch ``xb [batch, *data]`` with step key ``k``."""
        d, o, s, st = carry  # st: the states of stateful networks (vaekit.nets.stateful), uid -> state
        if self.batch_sharding is not None:
            xb = jax.lax.with_sharding_constraint(xb, self.batch_sharding)
        if self.batch_transform is not None:
            k, kt = jax.random.split(k)
            xb = self.batch_transform(kt, xb)

        def loss(d, xb, k, s):
            with stateful.training() as new:  # stateful networks: batch statistics, new states
                value = jnp.mean(self.loss_fn(stateful.with_states(eqx.combine(d, static), st), xb, k, s))
            return value, dict(new)

        (value, new), grads = jax.value_and_grad(loss, has_aux=True)(d, xb, k, s)
        updates, o = self.optimizer.update(grads, o, d)
        d = optax.apply_updates(d, updates)
        if self.batch_sharding is not None:
            rep = NamedSharding(self.batch_sharding.mesh, PartitionSpec())
            d, o = jax.lax.with_sharding_constraint((d, o), rep)
        return (d, o, s + 1, {**st, **new}), value

    def _epoch_steps(
        self, model: AbstractVAE, opt_state, x: Array, key: PRNGKeyArray, step: Array, losses: Array, start, stop
    ):
        """Steps ``start .. stop - 1`` of the epoch with key ``key`` (a ``fori_loop``)."""
        n = n_rows(x)
        perm_key, step_key = jax.random.split(key)
        perm = jax.random.permutation(perm_key, n)
        diff, static = eqx.partition(model, trainable(model))

        def body(i, carry):
            c, losses = carry
            idx = jax.lax.dynamic_slice_in_dim(perm, i * self.batch_size, self.batch_size)
            xb = jax.tree.map(lambda a: jnp.take(a, idx, axis=0), x)
            c, value = self._step(static, c, xb, jax.random.fold_in(step_key, i))
            return c, losses.at[i].set(value)

        init = (diff, opt_state, step, stateful.states(model))
        (diff, opt_state, step, st), losses = jax.lax.fori_loop(start, stop, body, (init, losses))
        return stateful.with_states(eqx.combine(diff, static), st), opt_state, step, losses, all_finite(diff)

    @eqx.filter_jit
    def train_epoch(self, model: AbstractVAE, opt_state, x: Array, key: PRNGKeyArray, step: Array):
        """One epoch over ``x [n, *data]``: returns ``(model, opt_state, step, losses [n_batches])``."""
        n_batches = n_rows(x) // self.batch_size
        losses = jnp.zeros(n_batches, jnp.float32)
        return self._epoch_steps(model, opt_state, x, key, step, losses, 0, n_batches)[:4]

    @eqx.filter_jit
    def train_epoch_part(
        self,
        model: AbstractVAE,
        opt_state,
        x: Array,
        key: PRNGKeyArray,
        step: Array,
        losses: Array,
        start: Array,
        stop: Array,
    ):
        """Steps ``start .. stop - 1`` of the epoch :meth:`train_epoch` runs with ``key``.

        The same permutation, batches and step keys, and (with dynamic bounds) one
        compiled program for every part, so an epoch run as several parts is
        bit-identical to one run as a single part. ``losses [n_batches]`` collects the
        step losses (entries ``start .. stop - 1`` are set). Returns ``(model,
        opt_state, step, losses, finite)``, ``finite`` telling whether all trainable
        parameters are finite.
        """
        return self._epoch_steps(model, opt_state, x, key, step, losses, start, stop)

    @eqx.filter_jit
    def train_chunk(
        self, model: AbstractVAE, opt_state, xc: Array, key: PRNGKeyArray, step: Array, offset: Array, n_valid: Array
    ):
        """Batches ``offset .. offset + n_valid - 1`` of an epoch, given as ``xc [chunk, batch, *data]``.

        ``key`` is the epoch key (as for :meth:`train_epoch`), so batch ``i`` of the epoch
        gets the same step key in both; batches ``>= n_valid`` (padding of the last chunk,
        which keeps the shape fixed) are skipped. Returns ``(model, opt_state, step,
        losses [chunk])`` with NaN losses for skipped batches.
        """
        _, step_key = jax.random.split(key)
        diff, static = eqx.partition(model, trainable(model))

        def body(carry, inp):
            i, xb = inp
            k = jax.random.fold_in(step_key, offset + i)
            return jax.lax.cond(
                i < n_valid,
                lambda c: self._step(static, c, xb, k),
                lambda c: (c, jnp.full((), jnp.nan, jnp.float32)),
                carry,
            )

        (diff, opt_state, step, st), losses = jax.lax.scan(
            body, (diff, opt_state, step, stateful.states(model)), (jnp.arange(xc.shape[0]), xc)
        )
        return stateful.with_states(eqx.combine(diff, static), st), opt_state, step, losses

    @eqx.filter_jit
    def evaluate(self, model: AbstractVAE, x: Array, key: PRNGKeyArray, step: Array) -> Array:
        """Mean loss over all of ``x`` in batches (the last one padded and masked)."""
        n = n_rows(x)
        bs = min(self.batch_size, n)
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        xp = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[-1:], pad, 0)]) if pad else a, x)
        mask = (jnp.arange(n_batches * bs) < n).reshape(n_batches, bs)

        def body(total, i):
            xb = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, i * bs, bs), xp)
            lv = self.loss_fn(model, xb, jax.random.fold_in(key, i), step)
            return total + jnp.sum(jnp.where(mask[i], lv, 0.0)), None

        total, _ = jax.lax.scan(body, jnp.zeros(()), jnp.arange(n_batches))
        return total / n

    @eqx.filter_jit
    def evaluate_chunk(
        self, model: AbstractVAE, xc: Array, mask: Array, key: PRNGKeyArray, step: Array, offset: Array
    ) -> Array:
        """Summed loss over the examples ``mask [chunk, batch]`` of ``xc [chunk, batch, *data]``.

        Batch ``i`` of the chunk is batch ``offset + i`` of :meth:`evaluate`, with the same key.
        """

        def body(total, inp):
            i, xb, m = inp
            lv = self.loss_fn(model, xb, jax.random.fold_in(key, offset + i), step)
            return total + jnp.sum(jnp.where(m, lv, 0.0)), None

        total, _ = jax.lax.scan(body, jnp.zeros(()), (jnp.arange(xc.shape[0]), xc, mask))
        return total


def as_key(key: Any) -> PRNGKeyArray:
    """A PRNG key from a key (typed or legacy uint32) or an int seed; a clear error otherwise."""
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        return jax.random.key(int(key))
    if isinstance(key, jax.Array | np.ndarray):
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == np.uint32 and key.shape == (2,):
            return key  # legacy jax.random.PRNGKey(seed)
    raise TypeError(
        f"key must be a PRNG key such as jax.random.key(0), or an int seed; got {type(key).__name__}"
        f"{' of shape ' + str(tuple(key.shape)) if hasattr(key, 'shape') else ''}."
    )


def n_rows(x: Any) -> int:
    """Examples in ``x``: an array, or a tuple of arrays with a common leading axis (e.g. ``(x, y)``)."""
    return jax.tree.leaves(x)[0].shape[0]


def all_finite(tree: Any) -> Array:
    """Whether every floating-point array of ``tree`` is finite (a boolean scalar)."""
    leaves = [a for a in jax.tree.leaves(tree) if eqx.is_inexact_array(a)]
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))
