"""In-memory training: one compiled ``lax.scan`` per epoch with the data on the device."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, PRNGKeyArray

from ._checks import check_batch_size, check_data
from ._fixed import trainable
from .model import VAE
from .objectives import _check_options, elbo, iwae_bound

OBJECTIVES = ("elbo", "iwae")

#: ``loss_fn(model, x, key, step) -> [batch]`` per-example loss to minimise.
LossFn = Callable[[VAE, Array, PRNGKeyArray, Array], Array]


def default_optimizer(learning_rate: float | optax.Schedule = 1e-3, clip_norm: float = 100.0):
    """Global-norm clipping, Adam, and skipping non-finite updates.

    The recipe of the Dirichlet-VAE original (ClipNorm, NoNaN, ADAM): an update whose
    gradient has a NaN/inf is dropped (up to 10 in a row, then it is applied so the
    failure shows).
    """
    return optax.apply_if_finite(
        optax.chain(optax.clip_by_global_norm(clip_norm), optax.adam(learning_rate)),
        max_consecutive_errors=10,
    )


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
    if objective not in OBJECTIVES:
        raise ValueError(f"Unknown objective={objective!r}. Valid values: 'elbo', 'iwae', or a callable.")
    _check_options(kl=kl, estimator=estimator, n_samples=n_samples)
    if objective == "iwae":
        return lambda m, x, k, step: -iwae_bound(m, x, k, k=n_samples, estimator=estimator)

    def loss(m, x, k, step):
        b = beta(step) if callable(beta) else beta
        return -elbo(m, x, k, beta=b, n_samples=n_samples, kl=kl, estimator=estimator)

    return loss


#: ``transform(key, xb) -> xb`` applied to each batch inside the compiled step
#: (e.g. dynamic binarization: ``lambda k, x: jax.random.bernoulli(k, x).astype(x.dtype)``).
BatchTransform = Callable[[PRNGKeyArray, Array], Array]


class TrainState(NamedTuple):
    """Everything needed to continue training exactly where it stopped.

    ``epoch`` counts completed epochs; ``step`` completed optimizer steps.
    """

    model: VAE
    opt_state: Any
    step: Array
    epoch: int
    history: dict[str, list[float]]


class Trainer(eqx.Module):
    """Compiled epoch and evaluation functions for one model structure and loss.

    ``train_epoch`` runs a whole epoch as one jitted ``lax.scan``: a permutation of the
    on-device data is drawn from the epoch key, and each step gathers its batch,
    computes the loss gradient on the trainable arrays (``vk.trainable``) and applies
    the optimizer. Fixed arrays and everything else pass through unchanged.
    """

    optimizer: optax.GradientTransformation = eqx.field(static=True)
    loss_fn: LossFn = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    batch_transform: BatchTransform | None = eqx.field(static=True, default=None)

    def init(self, model: VAE) -> optax.OptState:
        return self.optimizer.init(eqx.filter(model, trainable(model)))

    @eqx.filter_jit
    def train_epoch(self, model: VAE, opt_state, x: Array, key: PRNGKeyArray, step: Array):
        """One epoch over ``x [n, *data]``: returns ``(model, opt_state, step, losses [n_batches])``."""
        n = x.shape[0]
        n_batches = n // self.batch_size
        perm_key, step_key = jax.random.split(key)
        perm = jax.random.permutation(perm_key, n)
        diff, static = eqx.partition(model, trainable(model))

        def loss(d, xb, k, s):
            return jnp.mean(self.loss_fn(eqx.combine(d, static), xb, k, s))

        def body(carry, i):
            d, o, s = carry
            idx = jax.lax.dynamic_slice_in_dim(perm, i * self.batch_size, self.batch_size)
            xb = jnp.take(x, idx, axis=0)
            k = jax.random.fold_in(step_key, i)
            if self.batch_transform is not None:
                k, kt = jax.random.split(k)
                xb = self.batch_transform(kt, xb)
            value, grads = jax.value_and_grad(loss)(d, xb, k, s)
            updates, o = self.optimizer.update(grads, o, d)
            d = optax.apply_updates(d, updates)
            return (d, o, s + 1), value

        (diff, opt_state, step), losses = jax.lax.scan(
            body, (diff, opt_state, step), jnp.arange(n_batches)
        )
        return eqx.combine(diff, static), opt_state, step, losses

    @eqx.filter_jit
    def evaluate(self, model: VAE, x: Array, key: PRNGKeyArray, step: Array) -> Array:
        """Mean loss over all of ``x`` in batches (the last one padded and masked)."""
        n = x.shape[0]
        bs = min(self.batch_size, n)
        n_batches = -(-n // bs)
        pad = n_batches * bs - n
        xp = jnp.concatenate([x, jnp.repeat(x[-1:], pad, 0)]) if pad else x
        mask = (jnp.arange(n_batches * bs) < n).reshape(n_batches, bs)

        def body(total, i):
            xb = jax.lax.dynamic_slice_in_dim(xp, i * bs, bs)
            lv = self.loss_fn(model, xb, jax.random.fold_in(key, i), step)
            return total + jnp.sum(jnp.where(mask[i], lv, 0.0)), None

        total, _ = jax.lax.scan(body, jnp.zeros(()), jnp.arange(n_batches))
        return total / n


def fit(
    model: VAE,
    x_train: Any,
    *,
    key: PRNGKeyArray,
    epochs: int,
    batch_size: int,
    optimizer: optax.GradientTransformation | None = None,
    x_val: Any = None,
    beta: float | Callable[[Array], Array] = 1.0,
    n_samples: int = 1,
    kl: str = "auto",
    estimator: str = "auto",
    objective: str | LossFn = "elbo",
    verbose: bool = False,
    callback: Callable[[TrainState], Any] | None = None,
    batch_transform: BatchTransform | None = None,
    resume: TrainState | None = None,
) -> tuple[VAE, dict[str, list[float]]]:
    """Train ``model`` on in-memory data; return ``(model, history)``.

    Each epoch is one compiled ``lax.scan`` over ``len(x_train) // batch_size`` batches
    of a fresh permutation (the remainder of the permutation is skipped that epoch);
    the data sit on the device, no Python runs per step, and nothing recompiles after
    the first epoch. Arrays wrapped in ``vk.fixed`` are not changed.

    :param x_train: ``[n, *data]`` numeric array.
    :param key: PRNG key; the same key gives bit-identical results.
    :param optimizer: optax transformation; default :func:`default_optimizer`.
    :param x_val: optional validation data, evaluated after every epoch.
    :param beta: KL weight or schedule ``beta(step)``; see :func:`make_loss`.
    :param callback: ``callback(state)`` with a :class:`TrainState` after each epoch
        (checkpointing, early stopping, progress bars); return ``True`` to stop, or a
        modified :class:`TrainState` to continue from it (e.g. updated prior parameters).
    :param batch_transform: ``transform(key, xb) -> xb`` applied to every training
        batch inside the compiled step (e.g. dynamic binarization).
    :param resume: a :class:`TrainState` from a callback; training continues from its
        epoch with its optimizer state, and ends bit-identical to an uninterrupted run
        with the same ``key`` (epoch ``e`` always uses ``fold_in(key, e)``).
    :returns: the trained model and ``history`` with ``"train_loss"`` (mean over the
        epoch's batches), ``"val_loss"`` (when ``x_val`` is given; negative ELBO on all
        of ``x_val``) and ``"time"`` (seconds per epoch), nats per example.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}.")
    loss_fn = make_loss(beta=beta, n_samples=n_samples, kl=kl, estimator=estimator, objective=objective)
    x = check_data(model, x_train, "x_train", support=batch_transform is None)
    bs = check_batch_size(batch_size, x.shape[0])
    xv = check_data(model, x_val, "x_val") if x_val is not None else None
    trainer = Trainer(optimizer or default_optimizer(), loss_fn, bs, batch_transform)
    if resume is not None:
        model, opt_state, step, start = resume.model, resume.opt_state, resume.step, resume.epoch
        history = {k: list(v) for k, v in resume.history.items()}
    else:
        opt_state, step, start = trainer.init(model), jnp.zeros((), jnp.int32), 0
        history = {"train_loss": [], "time": []}
        if xv is not None:
            history["val_loss"] = []
    train_key, val_key = jax.random.split(key)
    for epoch in range(start, epochs):
        t0 = time.perf_counter()
        model, opt_state, step, losses = trainer.train_epoch(
            model, opt_state, x, jax.random.fold_in(train_key, epoch), step
        )
        history["train_loss"].append(float(jnp.mean(losses)))
        if xv is not None:
            history["val_loss"].append(float(trainer.evaluate(model, xv, val_key, step)))
        history["time"].append(time.perf_counter() - t0)
        if verbose:
            val = f"  val {history['val_loss'][-1]:.3f}" if xv is not None else ""
            print(
                f"epoch {epoch + 1:>4}/{epochs}  train {history['train_loss'][-1]:.3f}{val}"
                f"  ({history['time'][-1]:.2f} s)",
                flush=True,
            )
        state = TrainState(model, opt_state, step, epoch + 1, history)
        if callback is not None:
            out = callback(state)
            if out is True:
                break
            if isinstance(out, TrainState):  # e.g. a method-of-moments prior update
                model, opt_state, step = out.model, out.opt_state, out.step
    if history["train_loss"] and not np.isfinite(history["train_loss"]).all():
        import warnings

        warnings.warn(
            "Training produced non-finite losses; check the data scale and learning rate.",
            RuntimeWarning,
            stacklevel=2,
        )
    return model, history
