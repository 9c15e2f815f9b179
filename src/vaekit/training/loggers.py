"""Experiment trackers as :func:`vaekit.fit` callbacks: TensorBoard, MLflow, Weights & Biases.

Each logger is a ``callback(state)`` for ``vk.fit`` (pass several as a list, next to
``checkpointing=``)::

    tb = vk.loggers.TensorBoard("runs/tb", config=cfg, lr=1e-3, terms_data=x_val[:500])
    model, history = vk.fit(model, x, key=key, epochs=10, batch_size=100, callback=[tb, other])
    tb.log_metrics({"test_elbo": -95.1})
    tb.close()

After every epoch a logger sends ``train/loss``, ``val/loss`` (with ``x_val``),
``train/skipped_steps``, ``train/epoch_time`` (seconds), ``train/lr`` (when ``lr`` is
given: a float or an optax schedule of the step) and, when ``terms_data`` is given,
``terms/reconstruction`` (-E_q log p(x|z)) and ``terms/kl`` (KL(q(z|x) || p(z))) of those
rows, nats per example; the step is the epoch number. ``config`` is logged as
hyperparameters once; :meth:`Logger.log_metrics` and :meth:`Logger.log_images` send final
metrics and image files (as artifacts).

A logger imports its package only when it is created; a missing package is one
``ImportError`` naming the extra (``pip install 'vaekit[tensorboard]'``). A tracker that
fails later (server down, disk full) warns once and is switched off: it never stops or
changes training. A resumed run continues the same tracker run (the same folder, MLflow
run id or W&B run id) and never logs an epoch twice: TensorBoard purges the events at
and after the first resumed epoch, MLflow and W&B skip the epochs the run already has.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._state import TrainState

__all__ = ["Logger", "MLflow", "TensorBoard", "WandB", "compose"]


def _require(module: str, package: str, extra: str, who: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"vk.loggers.{who} needs the optional package {package}: pip install 'vaekit[{extra}]'"
        ) from None


def _flat_params(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``config`` flattened to ``{"a.b": value}`` with numbers, bools and strings only."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        name = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flat_params(v, name + "."))
        elif isinstance(v, bool | int | float | str):
            out[name] = v
        elif v is None:
            out[name] = "none"
        else:
            out[name] = json.dumps(v, default=str)
    return out


def _terms_fn():
    import equinox as eqx

    from ..core import closed_form

    @eqx.filter_jit
    def terms(model, x, key):
        q = model.posterior(x)
        p = model.prior_dist()
        z = q.sample(key)
        rec = -jnp.mean(model.likelihood(z).log_prob(x))
        kl = closed_form(q, p)
        kl = q.log_prob(z) - p.log_prob(z) if kl is None else kl
        return rec, jnp.mean(kl)

    return terms


class Logger:
    """Base class of the trackers: a ``vk.fit`` callback (see the module docstring).

    :param config: hyperparameters to record once (nested dicts are flattened ``a.b``).
    :param lr: the learning rate (float) or an optax schedule ``lr(step)``, logged per epoch.
    :param terms_data: ``[n, *data]`` rows (e.g. 500 validation rows) on which the
        reconstruction and KL terms are computed after every epoch (one latent draw, a
        fixed key); None: not logged.
    :param logged_epochs: when continuing a tracker run, the epochs it already has (they
        are not sent again; MLflow also asks its server, W&B offline cannot).
    """

    name = "logger"

    def __init__(
        self,
        *,
        config: Mapping[str, Any] | None = None,
        lr: float | Callable | None = None,
        terms_data: Any = None,
        logged_epochs: int = 0,
    ):
        self.config = dict(config) if config is not None else None
        self.lr = lr
        self.terms_data = None if terms_data is None else jnp.asarray(terms_data)
        self.last_step = int(logged_epochs)  # the newest epoch the tracker has
        self.failed = False
        self._opened = False
        self._terms = None

    # ---- what backends implement ----
    def _open(self, first_epoch: int) -> None:
        raise NotImplementedError

    def _scalars(self, values: dict[str, float], step: int) -> None:
        raise NotImplementedError

    def _hparams(self, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _files(self, paths: dict[str, Path], step: int) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass

    @property
    def run_id(self) -> str | None:
        """The tracker's id of this run (to continue it later), or None."""
        return None

    # ---- the callback ----
    def __call__(self, state: TrainState) -> None:
        if self.failed:
            return
        try:
            self.open(state.epoch)
            # the tracker already has this epoch (a resumed run): not sent again
            if state.epoch <= self.last_step:
                return
            self._scalars(self.epoch_metrics(state), state.epoch)
            self.last_step = state.epoch
        except Exception as e:  # noqa: BLE001 - a tracker never stops training
            self._fail(e)

    def open(self, first_epoch: int = 1) -> Logger:
        """Start (or continue) the tracker run; called by the first epoch's callback."""
        if not self._opened and not self.failed:
            self._opened = True
            self._open(first_epoch)
            if self.config:
                self._hparams(_flat_params(self.config))
        return self

    def epoch_metrics(self, state: TrainState) -> dict[str, float]:
        """What is logged for the epoch that ``state`` ends."""
        h = state.history
        out: dict[str, float] = {}
        for key, tag in (
            ("train_loss", "train/loss"),
            ("val_loss", "val/loss"),
            ("skipped_steps", "train/skipped_steps"),
            ("time", "train/epoch_time"),
        ):
            v = h.get(key) or []
            if v and v[-1] is not None:
                out[tag] = float(v[-1])
        if self.lr is not None:
            step = int(np.asarray(jax.device_get(state.step)).reshape(-1)[0])
            out["train/lr"] = float(self.lr(step)) if callable(self.lr) else float(self.lr)
        if self.terms_data is not None:
            if self._terms is None:
                self._terms = _terms_fn()
            try:
                rec, kl = self._terms(state.model, self.terms_data, jax.random.key(0))
                out["terms/reconstruction"], out["terms/kl"] = float(rec), float(kl)
            except Exception as e:  # noqa: BLE001 - a model without these terms: log the rest
                self.terms_data = None
                warnings.warn(
                    f"{self.name}: the reconstruction/KL terms are not logged for this model ({type(e).__name__}: {e}).",
                    RuntimeWarning,
                    stacklevel=3,
                )
        return out

    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None, prefix: str = "eval/") -> None:
        """Final (or any) numbers, e.g. ``vaekit evaluate``'s; non-numbers are skipped."""
        vals = {
            f"{prefix}{k}": float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        }
        self._guarded(lambda: self._scalars(vals, self.last_step if step is None else step))

    def log_images(self, paths: Mapping[str, str | os.PathLike], step: int | None = None) -> None:
        """Image files (the report's plots) as artifacts, named by the keys of ``paths``."""
        files = {k: Path(p) for k, p in paths.items()}
        self._guarded(lambda: self._files(files, self.last_step if step is None else step))

    def close(self) -> None:
        """Flush and end the tracker run (it can be continued later with its id)."""
        if self._opened and not self.failed:
            self._guarded(self._close)
        self._opened = False

    def _guarded(self, fn: Callable[[], None]) -> None:
        if self.failed:
            return
        try:
            self.open(self.last_step + 1)  # TensorBoard purges nothing it has
            fn()
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def _fail(self, e: Exception) -> None:
        self.failed = True
        warnings.warn(
            f"{self.name} logging failed ({type(e).__name__}: {e}); it is switched off, training goes on.",
            RuntimeWarning,
            stacklevel=3,
        )
        try:
            self._close()
        except Exception:  # noqa: BLE001, S110 - already switched off and warned about
            pass


class TensorBoard(Logger):
    """Event files in ``log_dir`` (``pip install 'vaekit[tensorboard]'``: tensorboardX).

    Continuing a run in the same ``log_dir``: the events at and after the first resumed
    epoch are purged (TensorBoard's ``purge_step``), so no epoch shows twice.
    """

    name = "TensorBoard"

    def __init__(self, log_dir: str | os.PathLike, **kw: Any):
        super().__init__(**kw)
        self._tbx = _require("tensorboardX", "tensorboardX", "tensorboard", "TensorBoard")
        self.log_dir = Path(log_dir)
        self.writer: Any = None

    def _open(self, first_epoch: int) -> None:
        # a suffix of its own: two writers opened in the same second would share a file name
        suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
        purge = first_epoch if first_epoch > 1 else None
        self.writer = self._tbx.SummaryWriter(logdir=str(self.log_dir), purge_step=purge, filename_suffix=suffix)
        self.last_step = first_epoch - 1

    def _scalars(self, values, step):
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def _hparams(self, params):
        from tensorboardX.summary import hparams

        exp, ssi, sei = hparams(params, {"train/loss": float("nan")})
        fw = self.writer._get_file_writer()
        for s in (exp, ssi, sei):
            fw.add_summary(s)
        self.writer.add_text("config", "\n".join(f"    {k} = {v}" for k, v in params.items()), 0)

    def _files(self, paths, step):
        from PIL import Image

        for name, p in paths.items():
            img = np.asarray(Image.open(p).convert("RGB"))
            self.writer.add_image(f"report/{name}", img, step, dataformats="HWC")
        self.writer.flush()

    def _close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class MLflow(Logger):
    """An MLflow run (``pip install 'vaekit[mlflow]'``: mlflow-skinny).

    :param tracking_uri: e.g. ``"file:/path/mlruns"`` or ``"http://host:5000"``; default
        ``$MLFLOW_TRACKING_URI`` or MLflow's own default.
    :param experiment: experiment name (created when missing).
    :param run_id: continue this run (its logged epochs are not logged again).
    """

    name = "MLflow"

    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        experiment: str = "vaekit",
        run_name: str | None = None,
        run_id: str | None = None,
        **kw: Any,
    ):
        super().__init__(**kw)
        _require("mlflow", "mlflow-skinny", "mlflow", "MLflow")
        self.tracking_uri, self.experiment, self.run_name, self._run_id = (
            tracking_uri,
            experiment,
            run_name,
            run_id,
        )
        self.client: Any = None

    @property
    def run_id(self) -> str | None:
        return self._run_id

    def _open(self, first_epoch: int) -> None:
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(self.tracking_uri)
        if self._run_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(self.experiment)
            self._run_id = self.client.create_run(exp_id, run_name=self.run_name).info.run_id
        else:
            self.client.update_run(self._run_id, status="RUNNING")
            hist = self.client.get_metric_history(self._run_id, "train/loss")
            self.last_step = max([self.last_step, *(m.step for m in hist)])

    def _scalars(self, values, step):
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self._run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def _hparams(self, params):
        from mlflow.entities import Param

        have = self.client.get_run(self._run_id).data.params
        new = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in have]  # params are write-once
        for i in range(0, len(new), 100):
            self.client.log_batch(self._run_id, params=new[i : i + 100])

    def _files(self, paths, step):
        for p in paths.values():
            self.client.log_artifact(self._run_id, str(p), artifact_path="report")

    def _close(self):
        if self.client is not None and self._run_id is not None:
            self.client.set_terminated(self._run_id)


class WandB(Logger):
    """A Weights & Biases run (``pip install 'vaekit[wandb]'``).

    :param project: the W&B project; ``mode``: ``"online"``, ``"offline"`` (files under
        ``dir/wandb``, ``wandb sync`` later) or None (``$WANDB_MODE``, else W&B's default).
    :param run_id: continue this run (``resume="allow"``; epochs it has are not logged again).
    """

    name = "WandB"

    def __init__(
        self,
        project: str = "vaekit",
        *,
        dir: str | os.PathLike | None = None,
        mode: str | None = None,
        run_id: str | None = None,
        name: str | None = None,
        **kw: Any,
    ):
        super().__init__(**kw)
        self._wandb = _require("wandb", "wandb", "wandb", "WandB")
        self.project, self.dir, self.mode, self.run_name = project, dir, mode, name
        self._run_id = run_id
        self.run: Any = None

    @property
    def run_id(self) -> str | None:
        return self._run_id

    def _open(self, first_epoch: int) -> None:
        wandb = self._wandb
        if self.dir is not None:
            Path(self.dir).mkdir(parents=True, exist_ok=True)
        self._run_id = self._run_id or uuid.uuid4().hex[:12]
        self.run = wandb.init(
            project=self.project,
            dir=None if self.dir is None else str(self.dir),
            mode=self.mode,
            id=self._run_id,
            name=self.run_name,
            resume="allow",
            reinit="create_new",
            settings=wandb.Settings(silent=True, console="off"),
        )
        self.run.define_metric("epoch")
        self.run.define_metric("*", step_metric="epoch")
        self.last_step = max(self.last_step, first_epoch - 1)

    def _scalars(self, values, step):
        self.run.log({**values, "epoch": step})

    def _hparams(self, params):
        self.run.config.update(params, allow_val_change=True)

    def _files(self, paths, step):
        art = self._wandb.Artifact(f"report-{self._run_id}", type="report")
        for p in paths.values():
            art.add_file(str(p), name=Path(p).name)
        self.run.log_artifact(art)

    def _close(self):
        if self.run is not None:
            self.run.finish()
            self.run = None


def compose(
    callbacks: Callable | Iterable[Callable] | None,
) -> Callable[[TrainState], Any] | None:
    """One ``vk.fit`` callback from several, called in order: training stops when any
    returns ``True``; a returned :class:`TrainState` is passed on to the next ones and
    returned."""
    if callbacks is None or callable(callbacks):
        return callbacks
    cbs = list(callbacks)
    if not all(callable(c) for c in cbs):
        raise TypeError("callback must be a callable or a list of callables (e.g. vk.loggers.TensorBoard(...)).")

    def run_all(state: TrainState):
        stop, changed = False, None
        for cb in cbs:
            out = cb(state)
            if out is True:
                stop = True
            elif isinstance(out, TrainState):
                state = changed = out
        return True if stop else changed

    return run_all
