"""``vk.fit``: the epoch loop around the compiled step, run in parts of about a second
(or per streamed chunk), on one or many devices; checkpoints, skipped-step counts and
divergence checks."""

from __future__ import annotations

import contextlib
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
from jaxtyping import Array, PRNGKeyArray

from .._validate import int_at_least, non_negative_int
from ..core import AbstractVAE, check_batch_size, check_data
from . import checkpoints
from ._optimizers import default_optimizer
from ._prefetch import Prefetcher
from ._progress import EpochBar
from ._source import Source
from ._state import TrainingDiverged, TrainState
from ._streaming import Placement, chunk_batches, read_chunk, read_rows, to_local
from ._trainer import BatchTransform, LossFn, Trainer, all_finite, as_key, make_loss, n_rows
from .distributed import is_main_process, resolve_devices
from .loggers import compose
from .precision import mixed_precision


class Streaming(NamedTuple):
    """How :func:`fit` reads a streamed :class:`~vaekit.Source`: chunks of whole batches of
    at most ``max_chunk_bytes`` float32 bytes, ``prefetch`` chunks read ahead in a
    background thread."""

    max_chunk_bytes: int = 256 * 2**20
    prefetch: int = 2


class Checkpointing(NamedTuple):
    """Checkpoints of :func:`fit`: in ``folder`` (a path, or a
    :class:`~vaekit.training.checkpoints.Checkpoints`), every ``every`` epochs, the newest
    ``keep`` kept (0: all)."""

    folder: Any
    every: int = 1
    keep: int = 3


_STREAMING_KEYWORDS = {"max_chunk_bytes": "max_chunk_bytes", "prefetch": "prefetch"}
_CHECKPOINT_KEYWORDS = {"checkpoint_dir": "folder", "checkpoint_every": "every", "keep": "keep"}


def _options(
    streaming: Streaming, checkpointing: Checkpointing | None, legacy: dict[str, Any]
) -> tuple[Streaming, Checkpointing | None]:
    """``streaming``/``checkpointing`` updated with the keywords of earlier versions."""
    unknown = sorted(set(legacy) - set(_STREAMING_KEYWORDS) - set(_CHECKPOINT_KEYWORDS))
    if unknown:
        raise TypeError(f"fit() got an unexpected keyword argument {unknown[0]!r}")
    s = {_STREAMING_KEYWORDS[k]: v for k, v in legacy.items() if k in _STREAMING_KEYWORDS}
    c = {_CHECKPOINT_KEYWORDS[k]: v for k, v in legacy.items() if k in _CHECKPOINT_KEYWORDS}
    streaming = streaming._replace(**s)
    if c.get("folder", checkpointing.folder if checkpointing else None) is None:
        return streaming, None
    checkpointing = (checkpointing or Checkpointing(None))._replace(**c)
    int_at_least(checkpointing.every, 1, "checkpoint_every")
    non_negative_int(checkpointing.keep, "keep")
    return streaming, checkpointing


def fit(
    model: AbstractVAE,
    x_train: Any,
    *,
    key: PRNGKeyArray | int,
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
    callback: Callable[[TrainState], Any] | list[Callable[[TrainState], Any]] | None = None,
    batch_transform: BatchTransform | None = None,
    resume: TrainState | None = None,
    devices: Any = None,
    streaming: Streaming = Streaming(),
    checkpointing: Checkpointing | None = None,
    y: Any = None,
    y_val: Any = None,
    compute_dtype: Any = None,
    **legacy: Any,
) -> tuple[AbstractVAE, dict[str, list[float]]]:
    """Train ``model``; return ``(model, history)``.

    Each epoch is one compiled ``lax.scan`` over ``len(x_train) // batch_size`` batches
    of a fresh permutation (the remainder of the permutation is skipped that epoch);
    the data sit on the device, no Python runs per step, and nothing recompiles after
    the first epoch. Arrays wrapped in ``vk.fixed`` are not changed.

    Data larger than memory: pass a :class:`vaekit.Source` (e.g.
    ``ArraySource(np.load(path, mmap_mode="r"))``) as ``x_train``/``x_val``. The epoch's
    permutation is drawn on the host from the same key, chunks of batches of at most
    ``streaming.max_chunk_bytes`` are read by a background thread (``streaming.prefetch``
    chunks ahead) and each chunk runs as one compiled scan of fixed shape. The result equals in-memory
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
        A list of callbacks (e.g. ``vk.loggers.TensorBoard(...)``) runs them in order
        (:func:`vaekit.loggers.compose`).
        In multi-process runs every process calls it; write files only where
        :func:`vaekit.distributed.is_main_process`.
    :param verbose: show a tqdm progress bar over the epochs (stderr) with the latest
        train/validation loss, the epoch's seconds and the skipped steps.
    :param batch_transform: ``transform(key, xb) -> xb`` applied to every training
        batch inside the compiled step (e.g. dynamic binarization).
    :param resume: a :class:`TrainState` from a callback; training continues from its
        epoch with its optimizer state, and ends bit-identical to an uninterrupted run
        with the same ``key`` (epoch ``e`` always uses ``fold_in(key, e)``).
    :param devices: ``None`` (default device), ``"all"``, a device count, or a list of
        jax devices to train data-parallel on.
    :param streaming: for a streamed ``Source``: a :class:`Streaming` (chunk size in
        bytes, chunks read ahead).
    :param checkpointing: a :class:`Checkpointing` ``(folder, every=1, keep=3)``:
        checkpoints ``epoch-NNNN.ckpt`` (the same atomic, checksummed files as ``vaekit
        train``) in ``folder``, written every ``every`` epochs, at the end, and when
        training is interrupted (Ctrl-C, SIGTERM) or diverges (the last good epoch); the
        newest ``keep`` are kept (0: all). When the folder already holds a checkpoint of
        the same run (same initial model, key, batch size and data), training continues
        from the newest one that verifies and ends bit-identical to an uninterrupted
        run; checkpoints of a different run are refused. The folder is locked while
        training. (``vaekit train`` passes a :class:`vaekit.training.checkpoints.Checkpoints`
        as ``folder``: its run folder is locked, and it resumes itself.)
    :param y: side information for a conditional model (:class:`vaekit.zoo.conditional.ConditionalVAE`,
        :class:`~vaekit.zoo.conditional.M2VAE`): class labels ``[n]`` (``-1``: unlabelled, M2
        only) or values ``[n, c]``; every batch is then ``(x, y)``. ``y_val`` goes with ``x_val``.
    :param compute_dtype: e.g. ``jnp.bfloat16``: mixed precision (:mod:`vaekit.training.precision`);
        parameters and optimizer state stay float32, the networks compute in this dtype,
        log-densities and losses in float32.
    :param legacy: the keywords of earlier versions, still accepted:
        ``max_chunk_bytes=``, ``prefetch=`` (for ``streaming``) and ``checkpoint_dir=``,
        ``checkpoint_every=``, ``keep=`` (for ``checkpointing``).
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
    epochs = non_negative_int(epochs, "epochs")
    callback = compose(callback)  # a list of callbacks, e.g. trackers (vaekit.training.loggers)
    key = as_key(key)
    streaming, checkpointing = _options(streaming, checkpointing, legacy)
    loss_fn = make_loss(beta=beta, n_samples=n_samples, kl=kl, estimator=estimator, objective=objective)
    chunk_batches(streaming.max_chunk_bytes, 1, (), 1)  # validates max_chunk_bytes
    devs = resolve_devices(devices)
    place = Placement(devs) if devs is not None else None
    support = batch_transform is None  # a transform (e.g. dynamic binarization) makes the data valid
    if compute_dtype is not None:  # mixed precision: the networks in compute_dtype
        loss_fn = mixed_precision(loss_fn, compute_dtype)
    data_model, loss_fn = _conditioning(model, y, x_val is not None and y_val is None, x_train, loss_fn)
    x = _checked(data_model, x_train, "x_train", streaming.max_chunk_bytes, support)
    bs = check_batch_size(batch_size, len(x) if isinstance(x, Source) else x.shape[0])
    if place is not None and bs % place.n_devices:
        lo = bs - bs % place.n_devices
        raise ValueError(
            f"batch_size={bs} is not divisible by the {place.n_devices} devices; each device "
            f"gets an equal share of every batch. Use a multiple of {place.n_devices}, e.g. "
            f"{lo or place.n_devices} or {lo + place.n_devices}."
        )
    xv = None if x_val is None else _checked(data_model, x_val, "x_val", streaming.max_chunk_bytes)
    if y is not None:  # a conditional model: batches are (x, y)
        x = (x, model.check_condition(y, x.shape[0], "y"))  # type: ignore[attr-defined]
        xv = None if xv is None else (xv, model.check_condition(y_val, xv.shape[0], "y_val"))  # type: ignore[attr-defined]
    trainer = Trainer(optimizer or default_optimizer(), loss_fn, bs, batch_transform, place.batch if place else None)
    saver, lock = _open_checkpoints(checkpointing, model, key, bs, x)
    try:
        if saver is not None and lock is not None and resume is None:
            resume = _resume_from(saver, model, trainer.init(model), key)
        run = _Run(trainer, place, streaming, xv, saver, checkpointing.every if checkpointing else 1)
        with EpochBar(epochs) as bar:  # verbose: a tqdm bar over the epochs
            return _train_loop(run, model, x, key, epochs, resume, callback, bar if verbose else None)
    finally:
        if lock is not None:
            lock.release()


def _conditioning(model, y, missing_val: bool, x_train, loss_fn: LossFn) -> tuple[AbstractVAE, LossFn]:
    """``(model to check the data against, loss)`` for a conditional model given ``y=``
    (``vaekit.zoo.conditional``); ``(model, loss_fn)`` for any other model."""
    conditional = hasattr(model, "condition_loss")
    if y is None and not conditional:
        return model, loss_fn
    if not conditional:
        raise ValueError(
            f"y= was given but {type(model).__name__} is not a conditional model. Build one with "
            "vk.zoo.conditional.cvae(...) (or the 'cvae'/'m2' presets), or drop y=."
        )
    if y is None or missing_val:
        raise ValueError(
            f"{type(model).__name__} is conditional: pass the labels/side information as y= (and y_val= with x_val=)."
        )
    if isinstance(x_train, Source):
        raise ValueError("a conditional model trains on in-memory arrays; pass x_train as an array, not a Source.")
    return model.placeholder(), model.condition_loss(loss_fn)


def _checked(model: AbstractVAE, x: Any, name: str, max_bytes: int, support: bool = True) -> Any:
    """``x`` validated against ``model``: an array, or a streamed source checked on its first rows."""
    if isinstance(x, Source):
        return _check_source(model, x, name, max_bytes, support)
    return check_data(model, x, name, support=support)


def _open_checkpoints(checkpointing: Checkpointing | None, model, key, batch_size: int, x):
    """``(saver, lock)``: the :class:`~vaekit.training.checkpoints.Checkpoints` to write,
    and the lock of their folder when this call took it (``vaekit train`` locks its run
    folder itself)."""
    if checkpointing is None:
        return None, None
    if isinstance(checkpointing.folder, checkpoints.Checkpoints):
        return checkpointing.folder, None
    identity = _run_identity(model, key, batch_size, x)
    saver = checkpoints.Checkpoints(checkpointing.folder, checkpointing.keep, header={"fit": identity})
    if not is_main_process():
        return saver, None
    saver.folder.mkdir(parents=True, exist_ok=True)
    return saver, checkpoints.FolderLock(saver.folder, "checkpoint folder").acquire()


#: Target wall time of one compiled part of an epoch; Ctrl-C and SIGTERM act between parts.
PART_SECONDS = 1.0


class _Run:
    """What every epoch of one :func:`fit` call uses: the trainer, the device placement,
    the streaming options, the validation data, the checkpoint writer."""

    def __init__(self, trainer: Trainer, place: Placement | None, streaming: Streaming, xv, saver, every: int):
        self.trainer, self.place, self.streaming, self.saver, self.every = trainer, place, streaming, saver, every
        self.rep = place.replicate if place is not None else (lambda t: t)
        self.xv = xv if place is None or xv is None or isinstance(xv, Source) else place.replicate(xv)
        self.parts = _EpochParts(self.rep)

    def epoch(self, model, opt_state, x, key, step):
        """One epoch: ``(model, opt_state, step, losses, finite)``."""
        if isinstance(x, Source):
            model, opt_state, step, losses = _stream_epoch(
                self.trainer, model, opt_state, x, key, step, self.place, self.streaming
            )
            return model, opt_state, step, losses, _all_finite(model)
        return self.parts.run(self.trainer, model, opt_state, x, self.rep(key), step)

    def validate(self, model, key, step) -> float | None:
        """The loss on all of the validation data, or None without any."""
        if isinstance(self.xv, Source):
            return _stream_evaluate(self.trainer, model, self.xv, key, step, self.place, self.streaming)
        if self.xv is not None:
            return float(self.trainer.evaluate(model, self.xv, self.rep(key), step))
        return None


def _start(run: _Run, model, x, resume: TrainState | None):
    """``(model, opt_state, step, first epoch, history, x)`` to start from, on the devices."""
    if resume is not None:
        model, opt_state, step, start = resume.model, resume.opt_state, resume.step, resume.epoch
        history = _snapshot(resume.history)
        history.setdefault("skipped_steps", [None] * len(history.get("train_loss", [])))  # older checkpoints
    else:
        opt_state, step, start = run.trainer.init(model), jnp.zeros((), jnp.int32), 0
        history = {"train_loss": [], "time": []}
        if run.xv is not None:
            history["val_loss"] = []
        history["skipped_steps"] = []
    if run.place is not None:
        model, opt_state, step = run.place.replicate((model, opt_state, step))
        if not isinstance(x, Source):
            x = run.place.replicate(x)
    return model, opt_state, step, start, history, x


def _divergence(finite, skipped: int, n_steps: int, val: float | None) -> str | None:
    """What went wrong in an epoch, or None."""
    if not bool(finite):
        return "the model's parameters became non-finite"
    if n_steps and skipped >= n_steps:
        return f"all {n_steps} steps had a non-finite loss or gradient and were skipped"
    if val is not None and not np.isfinite(val):
        return "the loss on the validation data became non-finite"
    return None


def _train_loop(run: _Run, model, x, key, epochs: int, resume: TrainState | None, callback, bar: EpochBar | None):
    model, opt_state, step, start, history, x = _start(run, model, x, resume)
    train_key, val_key = jax.random.split(key)
    good = TrainState(model, opt_state, step, start, _snapshot(history))  # last complete epoch
    saved = start if resume is not None else 0  # epoch of the newest checkpoint written or read
    saver = run.saver
    warned = False
    before = _skip_counters(opt_state)
    before = sum(int(a) for a in jax.device_get(before)) if before else None
    try:
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            model, opt_state, step, losses, finite = run.epoch(
                model, opt_state, x, jax.random.fold_in(train_key, epoch), step
            )
            after, finite = jax.device_get((_skip_counters(opt_state), finite))  # one transfer
            after = sum(int(a) for a in after) if after else None
            n_steps = int(losses.shape[0])
            skipped = after - before if after is not None else int(np.sum(~np.isfinite(np.asarray(losses))))
            before = after
            val = run.validate(model, val_key, step)
            what = _divergence(finite, skipped, n_steps, val)
            if what is not None:
                raise TrainingDiverged(
                    f"training diverged in epoch {epoch + 1}: {what} ({skipped} of {n_steps} steps "
                    "non-finite). Lower the learning rate or check the scale of the data.",
                    epoch=epoch + 1,
                    state=good,
                    skipped=skipped,
                    steps=n_steps,
                    reason=what,
                )
            history["train_loss"].append(float(jnp.mean(losses)))
            if val is not None:
                history["val_loss"].append(val)
            history["time"].append(time.perf_counter() - t0)
            history["skipped_steps"].append(skipped)
            if callable(getattr(model, "epoch_metrics", None)):  # a VQ-VAE's codebook usage, M2's accuracy
                for name, v in model.epoch_metrics(run.xv).items():
                    history.setdefault(name, [None] * epoch).append(v)
            if skipped and not warned:
                warned = True
                warnings.warn(
                    f"epoch {epoch + 1}: {skipped} of {n_steps} steps had non-finite losses or gradients "
                    "and were skipped; check the data scale and learning rate (history['skipped_steps'] "
                    "counts them per epoch).",
                    RuntimeWarning,
                    stacklevel=3,
                )
            if bar is not None:
                bar.epoch(history, skipped)
            state = good = TrainState(model, opt_state, step, epoch + 1, _snapshot(history))
            stop = False
            if callback is not None:
                out = callback(state)
                stop = out is True
                if isinstance(out, TrainState):  # e.g. a method-of-moments prior update
                    model, opt_state, step = run.rep((out.model, out.opt_state, out.step))
                    good = TrainState(model, opt_state, step, epoch + 1, state.history)
            if saver is not None and (epoch + 1) % run.every == 0:
                saver.save(good, key)
                saved = good.epoch
            if stop:
                break
        if saver is not None and good.epoch > saved:
            saver.save(good, key)
    except (KeyboardInterrupt, TrainingDiverged):
        if saver is not None and good.epoch > saved:
            with signals_held():  # a second Ctrl-C must not cut this checkpoint short
                saver.save(good, key)
        raise
    if history["train_loss"] and not warned and not np.isfinite(history["train_loss"]).all():
        warnings.warn(
            "Training produced non-finite losses; check the data scale and learning rate.",
            RuntimeWarning,
            stacklevel=3,
        )
    if run.place is not None:
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
        n_batches = n_rows(x) // trainer.batch_size
        losses = self.buffer
        if losses is None or losses.shape != (n_batches,):
            losses = self.rep(jnp.zeros(n_batches, jnp.float32))
        finite = None
        i = 0
        while i < n_batches:
            k = self._size(n_batches - i)
            lo, hi = self._bounds(i, i + k)
            t0 = time.perf_counter()
            model, opt_state, step, losses, finite = trainer.train_epoch_part(
                model, opt_state, x, key, step, losses, lo, hi
            )
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


@jax.jit
def _finite_leaves(leaves) -> Array:
    return all_finite(leaves)


def _all_finite(model) -> Array:
    """Whether every floating-point array of ``model`` is finite."""
    return _finite_leaves([a for a in jax.tree.leaves(model) if eqx.is_inexact_array(a)])


@contextlib.contextmanager
def signals_held():
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


def _run_identity(model, key, batch_size: int, x) -> dict[str, Any]:
    """What makes two ``fit`` calls the same run (the number of epochs may differ)."""
    return {
        "model": checkpoints.sha256_bytes(checkpoints.leaves_bytes(model)),
        "key": checkpoints.sha256_bytes(np.asarray(jax.random.key_data(key)).tobytes()),
        "batch_size": int(batch_size),
        "data": _fingerprint(x),
    }


def _fingerprint(x) -> dict[str, Any]:
    """:func:`checkpoints.data_fingerprint`; for conditional data ``(x, y)`` with ``y``'s hash."""
    if not isinstance(x, tuple):
        return checkpoints.data_fingerprint(x)
    out = checkpoints.data_fingerprint(x[0])
    out["condition_sha256"] = checkpoints.sha256_bytes(np.ascontiguousarray(np.asarray(x[1])).tobytes())
    return out


def _resume_from(saver, model, opt_state_like, key) -> TrainState | None:
    """The newest verified checkpoint of ``saver`` when it belongs to this run.

    The run is compared from the newest readable header before any arrays are read, so
    the checkpoints of a different run are refused and left untouched.
    """
    checkpoints.remove_stale_tmp(saver.folder)  # left by a process killed mid-write; we hold the lock
    mine = saver.header.get("fit", {})
    for path in reversed(saver.paths()):
        try:
            theirs = checkpoints.read_checkpoint_header(path).get("fit")
        except (ValueError, OSError):
            continue  # a damaged file: latest() reports it
        diff = [
            k for k in ("model", "key", "batch_size", "data") if theirs is not None and mine.get(k) != theirs.get(k)
        ]
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


def _check_source(model: AbstractVAE, source: Source, name: str, max_bytes: int, support: bool = True) -> Source:
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


def _stream_epoch(trainer: Trainer, model, opt_state, source: Source, key, step, place, streaming: Streaming):
    """One epoch over a streamed source: the same batches and keys as ``train_epoch``."""
    bs = trainer.batch_size
    n = len(source)
    n_batches = n // bs
    perm_key, _ = jax.random.split(key)
    perm = np.asarray(jax.random.permutation(perm_key, n))[: n_batches * bs].reshape(n_batches, bs)
    c = chunk_batches(streaming.max_chunk_bytes, bs, source.example_shape, n_batches)
    sharding = place.chunk if place is not None else None
    rep = place.replicate if place is not None else (lambda t: t)

    def load(start):
        rows = np.full((c, bs), -1, perm.dtype)
        got = perm[start : start + c]
        rows[: len(got)] = got
        return start, len(got), read_chunk(source, rows, sharding)

    key = rep(key)
    losses = []
    with Prefetcher(load, range(0, n_batches, c), streaming.prefetch) as chunks:
        for start, n_valid, xc in chunks:
            offset, valid = rep((np.asarray(start, np.int32), np.asarray(n_valid, np.int32)))
            model, opt_state, step, chunk_losses = trainer.train_chunk(model, opt_state, xc, key, step, offset, valid)
            losses.append((n_valid, chunk_losses))
    return model, opt_state, step, np.concatenate([np.asarray(v)[:k] for k, v in losses])


def _stream_evaluate(trainer: Trainer, model, source: Source, key, step, place, streaming: Streaming) -> float:
    """``Trainer.evaluate`` over a streamed source, chunk by chunk (same batches and keys)."""
    n = len(source)
    bs = min(trainer.batch_size, n)
    n_batches = -(-n // bs)
    rows_all = np.arange(n_batches * bs)
    rows_all[n:] = -1
    rows_all = rows_all.reshape(n_batches, bs)
    c = chunk_batches(streaming.max_chunk_bytes, bs, source.example_shape, n_batches)
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
    with Prefetcher(load, range(0, n_batches, c), streaming.prefetch) as chunks:
        for start, xc, mask in chunks:
            mask, offset = rep((mask, np.asarray(start, np.int32)))
            total += float(trainer.evaluate_chunk(model, xc, mask, key, step, offset))
    return total / n
