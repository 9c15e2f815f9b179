"""Training: one compiled loop per epoch (run in parts of about a second, or per streamed
chunk), on one or many devices; checkpoints, skipped-step counts and divergence checks."""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec
from jaxtyping import Array, PRNGKeyArray

from ..core._checks import check_batch_size, check_data
from ._prefetch import Prefetcher
from ._streaming import Placement, as_source, chunk_batches, read_chunk, read_rows, to_local
from ._source import Source
from .distributed import resolve_devices
from ..core._fixed import trainable
from ..core._model import VAE
from ..core._objectives import _check_options, elbo, iwae_bound

OBJECTIVES = ("elbo", "iwae")

#: ``loss_fn(model, x, key, step) -> [batch]`` per-example loss to minimise.
LossFn = Callable[[VAE, Array, PRNGKeyArray, Array], Array]


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
        return _cached(_default_optimizer, learning_rate, clip_norm)  # the same object as before
    return _cached(_optimizer, learning_rate, clip_norm, b1, b2, float(weight_decay), bool(skip_nonfinite))


def _default_optimizer(learning_rate, clip_norm):
    return clip_skip_nonfinite(optax.adam(learning_rate), clip_norm, max_consecutive_errors=10)


def _optimizer(learning_rate, clip_norm, b1, b2, weight_decay, skip_nonfinite):
    if weight_decay:
        inner = optax.adamw(learning_rate, b1=b1, b2=b2, weight_decay=weight_decay)
    else:
        inner = optax.adam(learning_rate, b1=b1, b2=b2)
    if skip_nonfinite:
        return clip_skip_nonfinite(inner, float("inf") if clip_norm is None else clip_norm, max_consecutive_errors=10)
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
        norm = optax.tree.norm(updates)
        finite = jnp.isfinite(norm)
        count = jnp.where(finite, 0, state.notfinite_count + 1)
        apply = finite | (count > max_consecutive_errors)
        clip = norm < clip_norm  # as optax.clip_by_global_norm
        updates = jax.tree.map(lambda t: jnp.where(clip, t, (t / norm.astype(t.dtype)) * clip_norm), updates)
        new_updates, new_inner = inner.update(updates, state.inner_state, params)
        new_updates = jax.tree.map(lambda u: jnp.where(apply, u, jnp.zeros_like(u)), new_updates)
        new_inner = jax.tree.map(lambda n, o: jnp.where(apply, n, o), new_inner, state.inner_state)
        total = state.total_notfinite + (~finite).astype(jnp.int32)
        return new_updates, SkipNonFiniteState(new_inner, count, total)

    return optax.GradientTransformation(init, update)


@functools.lru_cache(maxsize=64)
def _cached_call(fn, *args):
    return fn(*args)


def _cached(fn, *args):
    """``fn(*args)``, memoised when the arguments are hashable (pure factories only)."""
    try:
        return _cached_call(fn, *args)
    except TypeError:  # unhashable argument
        return fn(*args)


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
    # Equal settings give the same function, so fit() reuses its compiled epoch.
    return _cached(_make_loss, beta, n_samples, kl, estimator, objective)


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


class TrainState(NamedTuple):
    """Everything needed to continue training exactly where it stopped.

    ``epoch`` counts completed epochs; ``step`` completed optimizer steps. ``history``
    is a snapshot: it holds exactly ``epoch`` entries per key and does not change when
    training goes on.
    """

    model: VAE
    opt_state: Any
    step: Array
    epoch: int
    history: dict[str, list[float]]


class TrainingDiverged(FloatingPointError):
    """Training stopped: the model's parameters became non-finite, every step of an
    epoch had a non-finite loss or gradient, or the validation loss became non-finite.

    ``epoch`` is the epoch that diverged (1-based), ``state`` the last good
    :class:`TrainState` (the one before it), ``skipped``/``steps`` the non-finite and
    all steps of the diverged epoch, ``reason`` what happened.
    """

    def __init__(self, message: str, *, epoch: int, state: TrainState, skipped: int, steps: int, reason: str = ""):
        super().__init__(message)
        self.epoch, self.state, self.skipped, self.steps, self.reason = epoch, state, skipped, steps, reason


class Trainer(eqx.Module):
    """Compiled epoch and evaluation functions for one model structure and loss.

    ``train_epoch`` runs a whole epoch as one jitted loop (``train_epoch_part`` the steps
    ``start .. stop - 1`` of it, with the same compiled program for every part): a
    permutation of the on-device data is drawn from the epoch key, and each step gathers its batch,
    computes the loss gradient on the trainable arrays (``vk.trainable``) and applies
    the optimizer. Fixed arrays and everything else pass through unchanged.
    ``train_chunk`` runs the same steps over a chunk of batches read from a streamed
    :class:`~vaekit.data_source.Source`.

    With ``batch_sharding`` (a ``NamedSharding`` splitting the batch axis over a device
    mesh) every batch is split across the devices, parameters and optimizer state stay
    replicated, and XLA averages the gradients across devices (data parallelism).
    """

    optimizer: optax.GradientTransformation = eqx.field(static=True)
    loss_fn: LossFn = eqx.field(static=True)
    batch_size: int = eqx.field(static=True)
    batch_transform: BatchTransform | None = eqx.field(static=True, default=None)
    batch_sharding: NamedSharding | None = eqx.field(static=True, default=None)

    def init(self, model: VAE) -> optax.OptState:
        return self.optimizer.init(eqx.filter(model, trainable(model)))

    def _step(self, static, carry, xb: Array, k: PRNGKeyArray):
        """One optimizer step on batch ``xb [batch, *data]`` with step key ``k``."""
        d, o, s = carry
        if self.batch_sharding is not None:
            xb = jax.lax.with_sharding_constraint(xb, self.batch_sharding)
        if self.batch_transform is not None:
            k, kt = jax.random.split(k)
            xb = self.batch_transform(kt, xb)

        def loss(d, xb, k, s):
            return jnp.mean(self.loss_fn(eqx.combine(d, static), xb, k, s))

        value, grads = jax.value_and_grad(loss)(d, xb, k, s)
        updates, o = self.optimizer.update(grads, o, d)
        d = optax.apply_updates(d, updates)
        if self.batch_sharding is not None:
            rep = NamedSharding(self.batch_sharding.mesh, PartitionSpec())
            d, o = jax.lax.with_sharding_constraint((d, o), rep)
        return (d, o, s + 1), value

    def _epoch_steps(self, model: VAE, opt_state, x: Array, key: PRNGKeyArray, step: Array, losses: Array, start, stop):
        """Steps ``start .. stop - 1`` of the epoch with key ``key`` (a ``fori_loop``)."""
        n = x.shape[0]
        perm_key, step_key = jax.random.split(key)
        perm = jax.random.permutation(perm_key, n)
        diff, static = eqx.partition(model, trainable(model))

        def body(i, carry):
            c, losses = carry
            idx = jax.lax.dynamic_slice_in_dim(perm, i * self.batch_size, self.batch_size)
            xb = jnp.take(x, idx, axis=0)
            c, value = self._step(static, c, xb, jax.random.fold_in(step_key, i))
            return c, losses.at[i].set(value)

        (diff, opt_state, step), losses = jax.lax.fori_loop(start, stop, body, ((diff, opt_state, step), losses))
        return eqx.combine(diff, static), opt_state, step, losses, _finite(diff)

    @eqx.filter_jit
    def train_epoch(self, model: VAE, opt_state, x: Array, key: PRNGKeyArray, step: Array):
        """One epoch over ``x [n, *data]``: returns ``(model, opt_state, step, losses [n_batches])``."""
        n_batches = x.shape[0] // self.batch_size
        losses = jnp.zeros(n_batches, jnp.float32)
        return self._epoch_steps(model, opt_state, x, key, step, losses, 0, n_batches)[:4]

    @eqx.filter_jit
    def train_epoch_part(
        self, model: VAE, opt_state, x: Array, key: PRNGKeyArray, step: Array, losses: Array, start: Array, stop: Array
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
        self, model: VAE, opt_state, xc: Array, key: PRNGKeyArray, step: Array, offset: Array, n_valid: Array
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

        (diff, opt_state, step), losses = jax.lax.scan(
            body, (diff, opt_state, step), (jnp.arange(xc.shape[0]), xc)
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

    @eqx.filter_jit
    def evaluate_chunk(
        self, model: VAE, xc: Array, mask: Array, key: PRNGKeyArray, step: Array, offset: Array
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
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ():
            return key
        if key.dtype == np.uint32 and key.shape == (2,):
            return key  # legacy jax.random.PRNGKey(seed)
    raise TypeError(
        f"key must be a PRNG key such as jax.random.key(0), or an int seed; got {type(key).__name__}"
        f"{' of shape ' + str(tuple(key.shape)) if hasattr(key, 'shape') else ''}."
    )


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
    devices: Any = None,
    max_chunk_bytes: int = 256 * 2**20,
    prefetch: int = 2,
    checkpoint_dir: Any = None,
    checkpoint_every: int = 1,
    keep: int = 3,
) -> tuple[VAE, dict[str, list[float]]]:
    """Train ``model``; return ``(model, history)``.

    Each epoch is one compiled ``lax.scan`` over ``len(x_train) // batch_size`` batches
    of a fresh permutation (the remainder of the permutation is skipped that epoch);
    the data sit on the device, no Python runs per step, and nothing recompiles after
    the first epoch. Arrays wrapped in ``vk.fixed`` are not changed.

    Data larger than memory: pass a :class:`vaekit.data_source.Source` (e.g.
    ``ArraySource(np.load(path, mmap_mode="r"))``) as ``x_train``/``x_val``. The epoch's
    permutation is drawn on the host from the same key, chunks of batches of at most
    ``max_chunk_bytes`` are read by a background thread (``prefetch`` chunks ahead) and
    each chunk runs as one compiled scan of fixed shape. The result equals in-memory
    training on the same data with the same key (up to float rounding).

    Several devices: ``devices=jax.devices()`` (or ``"all"``, or a count) trains
    data-parallel: every batch is split across the devices along its leading axis,
    parameters and optimizer state are replicated, and XLA averages the gradients.
    After :func:`vaekit.distributed.initialize` this spans all processes; each process
    then reads only its devices' rows of a streamed ``Source``. ``batch_size`` must be
    divisible by the number of devices.

    :param x_train: ``[n, *data]`` numeric array, or a ``Source``.
    :param key: PRNG key (or an int seed); the same key gives bit-identical results.
    :param optimizer: optax transformation; default :func:`default_optimizer`.
    :param x_val: optional validation data (array or ``Source``), evaluated after every epoch.
    :param beta: KL weight or schedule ``beta(step)``; see :func:`make_loss`.
    :param callback: ``callback(state)`` with a :class:`TrainState` after each epoch
        (checkpointing, early stopping, progress bars); return ``True`` to stop, or a
        modified :class:`TrainState` to continue from it (e.g. updated prior parameters).
        In multi-process runs every process calls it; write files only where
        :func:`vaekit.distributed.is_main_process`.
    :param batch_transform: ``transform(key, xb) -> xb`` applied to every training
        batch inside the compiled step (e.g. dynamic binarization).
    :param resume: a :class:`TrainState` from a callback; training continues from its
        epoch with its optimizer state, and ends bit-identical to an uninterrupted run
        with the same ``key`` (epoch ``e`` always uses ``fold_in(key, e)``).
    :param devices: ``None`` (default device), ``"all"``, a device count, or a list of
        jax devices to train data-parallel on.
    :param max_chunk_bytes: for a streamed ``Source``: the most float32 bytes read and
        copied to the devices at once (one chunk of whole batches).
    :param prefetch: for a streamed ``Source``: chunks read ahead in the background.
    :param checkpoint_dir: a folder for checkpoints ``epoch-NNNN.ckpt`` (the same atomic,
        checksummed files as ``vaekit train``), written every ``checkpoint_every``
        epochs, at the end, and when training is interrupted (Ctrl-C, SIGTERM) or
        diverges (the last good epoch); the newest ``keep`` are kept (0: all). When the
        folder already holds a checkpoint of the same run (same initial model, key,
        batch size and data), training continues from the newest one that verifies and
        ends bit-identical to an uninterrupted run; checkpoints of a different run are
        refused. The folder is locked while training. (``vaekit train`` passes a
        :class:`vaekit.io.Checkpoints` instead: its run folder is locked, and it resumes
        itself.)
    :returns: the trained model (as ordinary single-device arrays) and ``history`` with
        ``"train_loss"`` (mean over the epoch's batches), ``"val_loss"`` (when ``x_val``
        is given; the loss on all of ``x_val``), ``"time"`` (seconds per epoch), nats
        per example, and ``"skipped_steps"`` (steps per epoch whose loss or gradient was
        not finite; the default optimizer skips them). A warning is issued when steps
        are skipped.
    :raises TrainingDiverged: when the parameters become non-finite, every step of an
        epoch is skipped, or the validation loss is not finite; it holds the last good
        :class:`TrainState`.

    Long epochs run as several compiled parts of about a second each (bit-identical to
    one part), so Ctrl-C stops training within about a second.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs must be a non-negative int, got {epochs!r}.")
    key = as_key(key)
    loss_fn = make_loss(beta=beta, n_samples=n_samples, kl=kl, estimator=estimator, objective=objective)
    chunk_batches(max_chunk_bytes, 1, (), 1)  # validates max_chunk_bytes
    devs = resolve_devices(devices)
    place = Placement(devs) if devs is not None else None
    stream = isinstance(x_train, Source)
    support = batch_transform is None  # a transform (e.g. dynamic binarization) makes the data valid
    x = (
        _check_source(model, x_train, "x_train", max_chunk_bytes, support)
        if stream
        else check_data(model, x_train, "x_train", support=support)
    )
    n_train = len(x) if stream else x.shape[0]
    bs = check_batch_size(batch_size, n_train)
    if place is not None and bs % place.n_devices:
        lo = bs - bs % place.n_devices
        raise ValueError(
            f"batch_size={bs} is not divisible by the {place.n_devices} devices; each device "
            f"gets an equal share of every batch. Use a multiple of {place.n_devices}, e.g. "
            f"{lo or place.n_devices} or {lo + place.n_devices}."
        )
    if x_val is None:
        xv = None
    elif isinstance(x_val, Source):
        xv = _check_source(model, x_val, "x_val", max_chunk_bytes)
    else:
        xv = check_data(model, x_val, "x_val")
    trainer = Trainer(
        optimizer or default_optimizer(), loss_fn, bs, batch_transform, place.batch if place else None
    )
    from . import checkpoints as vio

    saver, lock = None, None
    if checkpoint_dir is not None:
        for name, v, lo in (("checkpoint_every", checkpoint_every, 1), ("keep", keep, 0)):
            if not isinstance(v, int) or isinstance(v, bool) or v < lo:
                raise ValueError(f"{name} must be an int >= {lo}, got {v!r}.")
        if isinstance(checkpoint_dir, vio.Checkpoints):  # vaekit train: it locks the run folder
            saver = checkpoint_dir
        else:
            identity = _run_identity(model, key, bs, x)
            saver = vio.Checkpoints(checkpoint_dir, keep, header={"fit": identity})
            if _is_main():
                saver.folder.mkdir(parents=True, exist_ok=True)
                lock = vio.FolderLock(saver.folder, "checkpoint folder").acquire()
    try:
        if saver is not None and lock is not None and resume is None:
            resume = _resume_from(saver, model, trainer.init(model), key)
        return _train_loop(
            trainer, model, x, xv, key, epochs, resume, place, stream, callback, verbose,
            max_chunk_bytes, prefetch, saver, checkpoint_every,
        )
    finally:
        if lock is not None:
            lock.release()


#: Target wall time of one compiled part of an epoch; Ctrl-C and SIGTERM act between parts.
PART_SECONDS = 1.0


def _train_loop(trainer, model, x, xv, key, epochs, resume, place, stream, callback, verbose,
                max_chunk_bytes, prefetch, saver, checkpoint_every):
    if resume is not None:
        model, opt_state, step, start = resume.model, resume.opt_state, resume.step, resume.epoch
        history = _snapshot(resume.history)
        history.setdefault("skipped_steps", [None] * len(history.get("train_loss", [])))  # older checkpoints
    else:
        opt_state, step, start = trainer.init(model), jnp.zeros((), jnp.int32), 0
        history = {"train_loss": [], "time": []}
        if xv is not None:
            history["val_loss"] = []
        history["skipped_steps"] = []
    if place is not None:
        model, opt_state, step = place.replicate((model, opt_state, step))
        if not stream:
            x = place.replicate(x)
        if xv is not None and not isinstance(xv, Source):
            xv = place.replicate(xv)
    rep = place.replicate if place is not None else (lambda t: t)
    train_key, val_key = jax.random.split(key)
    good = TrainState(model, opt_state, step, start, _snapshot(history))  # last complete epoch
    saved = start if resume is not None else 0  # epoch of the newest checkpoint written or read
    parts = _EpochParts(rep)
    warned = False
    before = _skip_counters(opt_state)
    before = sum(int(a) for a in jax.device_get(before)) if before else None
    try:
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            ekey = jax.random.fold_in(train_key, epoch)
            if stream:
                model, opt_state, step, losses = _stream_epoch(
                    trainer, model, opt_state, x, ekey, step, place, max_chunk_bytes, prefetch
                )
                finite = _all_finite(model)
            else:
                model, opt_state, step, losses, finite = parts.run(trainer, model, opt_state, x, rep(ekey), step)
            after, finite = jax.device_get((_skip_counters(opt_state), finite))  # one transfer
            after = sum(int(a) for a in after) if after else None
            n_steps = int(losses.shape[0])
            skipped = after - before if after is not None else int(np.sum(~np.isfinite(np.asarray(losses))))
            before = after
            val = None
            if isinstance(xv, Source):
                val = _stream_evaluate(trainer, model, xv, val_key, step, place, max_chunk_bytes, prefetch)
            elif xv is not None:
                val = float(trainer.evaluate(model, xv, rep(val_key), step))
            what = None
            if not bool(finite):
                what = "the model's parameters became non-finite"
            elif n_steps and skipped >= n_steps:
                what = f"all {n_steps} steps had a non-finite loss or gradient and were skipped"
            elif val is not None and not np.isfinite(val):
                what = "the loss on the validation data became non-finite"
            if what is not None:
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch + 1}: {what} ({skipped} of {n_steps} steps "
                    "non-finite). Lower the learning rate or check the scale of the data.",
                    epoch=epoch + 1, state=good, skipped=skipped, steps=n_steps, reason=what,
                )
            history["train_loss"].append(float(jnp.mean(losses)))
            if val is not None:
                history["val_loss"].append(val)
            history["time"].append(time.perf_counter() - t0)
            history["skipped_steps"].append(skipped)
            if skipped and not warned:
                warned = True
                warnings.warn(
                    f"epoch {epoch + 1}: {skipped} of {n_steps} steps had non-finite losses or gradients "
                    "and were skipped; check the data scale and learning rate (history['skipped_steps'] "
                    "counts them per epoch).",
                    RuntimeWarning,
                    stacklevel=3,
                )
            if verbose:
                val = f"  val {history['val_loss'][-1]:.3f}" if xv is not None else ""
                skip = f"  ({skipped} steps skipped)" if skipped else ""
                print(
                    f"epoch {epoch + 1:>4}/{epochs}  train {history['train_loss'][-1]:.3f}{val}"
                    f"  ({history['time'][-1]:.2f} s){skip}",
                    flush=True,
                )
            state = good = TrainState(model, opt_state, step, epoch + 1, _snapshot(history))
            stop = False
            if callback is not None:
                out = callback(state)
                stop = out is True
                if isinstance(out, TrainState):  # e.g. a method-of-moments prior update
                    model, opt_state, step = rep((out.model, out.opt_state, out.step))
                    good = TrainState(model, opt_state, step, epoch + 1, state.history)
            if saver is not None and (epoch + 1) % checkpoint_every == 0:
                saver.save(good, key)
                saved = good.epoch
            if stop:
                break
        if saver is not None and good.epoch > saved:
            saver.save(good, key)
    except (KeyboardInterrupt, TrainingDiverged):
        if saver is not None and good.epoch > saved:
            with _signals_held():  # a second Ctrl-C must not cut this checkpoint short
                saver.save(good, key)
        raise
    if history["train_loss"] and not warned and not np.isfinite(history["train_loss"]).all():
        warnings.warn(
            "Training produced non-finite losses; check the data scale and learning rate.",
            RuntimeWarning,
            stacklevel=3,
        )
    if place is not None:
        model = to_local(model)
    return model, history


def _snapshot(history: dict[str, list]) -> dict[str, list]:
    return {k: list(v) for k, v in history.items()}


class _EpochParts:
    """Runs an epoch as compiled parts of about :data:`PART_SECONDS` each.

    Every part is the same compiled program (:meth:`Trainer.train_epoch_part`, dynamic
    bounds), so the results do not depend on where the parts split. The main thread
    waits for each part, so a signal (Ctrl-C, SIGTERM) is acted on between parts. The
    part size adapts to the measured speed: one step for the first call (it compiles),
    then doubling until a part's time is measurable.
    """

    def __init__(self, rep):
        self.rep, self.rate, self.calls = rep, None, 0
        self.bounds: dict[tuple[int, int], Any] = {}  # (start, stop) -> device scalars, reused
        self.buffer = None  # the losses array of the previous epoch, reused (every entry is set)

    def _size(self, remaining: int) -> int:
        if self.rate is None:
            return min(remaining, 2 ** max(0, self.calls - 1))
        return max(1, min(remaining, int(self.rate * PART_SECONDS)))

    def _bounds(self, lo: int, hi: int):
        if (lo, hi) not in self.bounds:
            if len(self.bounds) > 256:
                self.bounds.clear()
            self.bounds[lo, hi] = self.rep((jnp.asarray(lo, jnp.int32), jnp.asarray(hi, jnp.int32)))
        return self.bounds[lo, hi]

    def run(self, trainer: Trainer, model, opt_state, x, key, step):
        n_batches = x.shape[0] // trainer.batch_size
        losses = self.buffer
        if losses is None or losses.shape != (n_batches,):
            losses = self.rep(jnp.zeros(n_batches, jnp.float32))
        finite = None
        i = 0
        while i < n_batches:
            k = self._size(n_batches - i)
            lo, hi = self._bounds(i, i + k)
            t0 = time.perf_counter()
            model, opt_state, step, losses, finite = trainer.train_epoch_part(model, opt_state, x, key, step, losses, lo, hi)
            jax.block_until_ready(step)
            dt = time.perf_counter() - t0
            if self.calls > 0 and (dt > 0.05 or self.rate is not None):
                self.rate = k / max(dt, 1e-6)
            self.calls += 1
            i += k
        if finite is None:  # an epoch of no steps
            finite = _all_finite(model)
        self.buffer = losses
        return model, opt_state, step, losses, finite


def _skip_counters(opt_state) -> list:
    """The counts of non-finite steps kept by skip-non-finite optimizer states."""
    nodes = jax.tree.leaves(opt_state, is_leaf=lambda t: hasattr(t, "total_notfinite") and isinstance(t, tuple))
    return [t.total_notfinite for t in nodes if hasattr(t, "total_notfinite")]


def _finite(tree) -> Array:
    leaves = [a for a in jax.tree.leaves(tree) if eqx.is_inexact_array(a)]
    if not leaves:
        return jnp.asarray(True)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in leaves]))


@jax.jit
def _finite_leaves(leaves) -> Array:
    return _finite(leaves)


def _all_finite(model) -> Array:
    """Whether every floating-point array of ``model`` is finite."""
    return _finite_leaves([a for a in jax.tree.leaves(model) if eqx.is_inexact_array(a)])


@contextlib.contextmanager
def _signals_held():
    """Ignore SIGINT, SIGTERM and SIGHUP while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]
    old = {}
    try:
        for s in sigs:
            old[s] = signal.signal(s, lambda *_: None)
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _is_main() -> bool:
    from .distributed import is_main_process

    return is_main_process()


def _run_identity(model, key, batch_size: int, x) -> dict[str, Any]:
    """What makes two ``fit`` calls the same run (the number of epochs may differ)."""
    from . import checkpoints as vio

    return {
        "model": vio.sha256_bytes(vio.leaves_bytes(model)),
        "key": vio.sha256_bytes(np.asarray(jax.random.key_data(key)).tobytes()),
        "batch_size": int(batch_size),
        "data": vio.data_fingerprint(x),
    }


def _resume_from(saver, model, opt_state_like, key) -> TrainState | None:
    """The newest verified checkpoint of ``saver`` when it belongs to this run.

    The run is compared from the newest readable header before any arrays are read, so
    the checkpoints of a different run are refused and left untouched.
    """
    from . import checkpoints as vio

    vio.remove_stale_tmp(saver.folder)  # left by a process killed mid-write; we hold the lock
    mine = saver.header.get("fit", {})
    for path in reversed(saver.paths()):
        try:
            theirs = vio.read_checkpoint_header(path).get("fit")
        except (ValueError, OSError):
            continue  # a damaged file: latest() reports it
        diff = [k for k in ("model", "key", "batch_size", "data") if theirs is not None and mine.get(k) != theirs.get(k)]
        if diff:
            names = {"model": "initial model", "key": "key", "batch_size": "batch size", "data": "training data"}
            raise ValueError(
                f"{saver.folder} holds checkpoints of a different training run (the "
                f"{', '.join(names[k] for k in diff)} differ). Pass another checkpoint_dir, or "
                "delete its checkpoints to start again."
            )
        break
    loaded = saver.latest(model, opt_state_like, key)
    for path, reason in saver.skipped:
        warnings.warn(f"skipped checkpoint {path}: {reason}", RuntimeWarning, stacklevel=4)
    return None if loaded is None else loaded[0]


def _check_source(model: VAE, source: Source, name: str, max_bytes: int, support: bool = True) -> Source:
    """Validate a streamed source against ``model`` on its first examples (at most ``max_bytes``)."""
    shape = tuple(source.example_shape)
    if shape != model.data_shape:
        raise ValueError(
            f"{name} has examples of shape {shape} but the model's decoder produces examples "
            f"of shape {model.data_shape}. Build the model for this data."
        )
    if len(source) == 0:
        raise ValueError(f"{name} is an empty data source; pass at least one example.")
    rows = max(1, min(len(source), 256, max_bytes // (4 * max(1, int(np.prod(shape))))))
    check_data(model, read_rows(source, np.arange(rows)), name, support=support)
    return source


def _stream_epoch(trainer: Trainer, model, opt_state, source: Source, key, step, place, max_bytes, prefetch):
    """One epoch over a streamed source: the same batches and keys as ``train_epoch``."""
    bs = trainer.batch_size
    n = len(source)
    n_batches = n // bs
    perm_key, _ = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(perm_key, n))[: n_batches * bs].reshape(n_batches, bs)
    c = chunk_batches(max_bytes, bs, source.example_shape, n_batches)
    sharding = place.chunk if place is not None else None
    rep = place.replicate if place is not None else (lambda t: t)

    def load(start):
        rows = np.full((c, bs), -1, perm.dtype)
        got = perm[start : start + c]
        rows[: len(got)] = got
        return start, len(got), read_chunk(source, rows, sharding)

    key = rep(key)
    losses = []
    with Prefetcher(load, range(0, n_batches, c), prefetch) as chunks:
        for start, n_valid, xc in chunks:
            offset, valid = rep((np.asarray(start, np.int32), np.asarray(n_valid, np.int32)))
            model, opt_state, step, chunk_losses = trainer.train_chunk(
                model, opt_state, xc, key, step, offset, valid
            )
            losses.append((n_valid, chunk_losses))
    return model, opt_state, step, np.concatenate([np.asarray(v)[:k] for k, v in losses])


def _stream_evaluate(trainer: Trainer, model, source: Source, key, step, place, max_bytes, prefetch) -> float:
    """``Trainer.evaluate`` over a streamed source, chunk by chunk (same batches and keys)."""
    n = len(source)
    bs = min(trainer.batch_size, n)
    n_batches = -(-n // bs)
    rows_all = np.arange(n_batches * bs)
    rows_all[n:] = -1
    rows_all = rows_all.reshape(n_batches, bs)
    c = chunk_batches(max_bytes, bs, source.example_shape, n_batches)
    sharding = None
    if place is not None:
        sharding = place.chunk if bs % place.n_devices == 0 else place.replicated
    rep = place.replicate if place is not None else (lambda t: t)

    def load(start):
        rows = np.full((c, bs), -1, rows_all.dtype)
        got = rows_all[start : start + c]
        rows[: len(got)] = got
        mask = rows >= 0
        return start, read_chunk(source, rows, sharding), mask

    key = rep(key)
    total = 0.0
    with Prefetcher(load, range(0, n_batches, c), prefetch) as chunks:
        for start, xc, mask in chunks:
            mask, offset = rep((mask, np.asarray(start, np.int32)))
            total += float(trainer.evaluate_chunk(model, xc, mask, key, step, offset))
    return total / n


def map_batches(
    fn: Callable[[Array], Any],
    data: Any,
    batch_size: int,
    *,
    max_chunk_bytes: int = 64 * 2**20,
    prefetch: int = 2,
) -> Any:
    """Apply ``fn`` to ``data`` batch by batch with constant memory; concatenate the outputs.

    ``fn(xb [batch_size, *data]) -> pytree of [batch_size, ...]`` arrays is compiled once
    (the last batch is padded to ``batch_size`` and its padding dropped from the output).
    ``data`` is an array or a :class:`~vaekit.data_source.Source` (a memmap, an image
    folder, ...): chunks of at most ``max_chunk_bytes`` are read ahead in a background
    thread, so only a few chunks and the per-example outputs are ever in memory. Use it
    to score files larger than memory, e.g.
    ``map_batches(lambda xb: vk.elbo(model, xb, key), source, 1000)``.

    :returns: the outputs of ``fn`` concatenated along the leading axis, as numpy arrays.
    """
    source = as_source(data)
    n = len(source)
    if n == 0:
        raise ValueError("map_batches got empty data; pass at least one example.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    bs = min(batch_size, n)
    n_batches = -(-n // bs)
    c = chunk_batches(max_chunk_bytes, bs, source.example_shape, n_batches)
    jfn = jax.jit(fn)

    def load(start):
        rows = np.arange(start * bs, min(n, (start + c) * bs))
        return rows.size, read_chunk(source, _pad_rows(rows, c * bs).reshape(c, bs), None)

    outs = []
    with Prefetcher(load, range(0, n_batches, c), prefetch) as chunks:
        for size, xc in chunks:
            for b in range(-(-size // bs)):
                keep = min(bs, size - b * bs)
                out = jfn(xc[b])
                outs.append(jax.tree.map(lambda a: np.asarray(a)[:keep], out))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


def _pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, -1, np.int64)
    out[: rows.size] = rows
    return out
