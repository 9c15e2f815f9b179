"""``train(cfg, out, ...)``: what ``vaekit train`` runs, from a configuration to a finished
run folder (:mod:`vaekit.runs.folder`), and the run's ``metrics.jsonl``.

Runs are reproducible: the same configuration gives bit-identical parameters on CPU,
and a run interrupted and resumed ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from ..core import init_output_bias, trainable
from ..data import Preprocessor
from ..training import (
    Checkpointing,
    Source,
    TrainingDiverged,
    TrainState,
    default_optimizer,
    fit,
    signals_held,
)
from ..training import checkpoints as ckpt
from ..training.distributed import barrier, is_main_process
from ..zoo import presets
from ..zoo.vamp import VampVAE
from . import tracking
from ._data import RunData, resolve_from_data
from .config import DEFAULTS, RESUMABLE, environment, incompatible, model_spec, resolve_config
from .folder import check_out, checkpoints, is_run, prepare_out, set_status, try_status


class RunInterrupted(KeyboardInterrupt):
    """``vaekit train`` stopped by Ctrl-C, SIGTERM or SIGHUP (after saving a checkpoint).

    ``signum`` is the signal; the message says what was saved and how to continue.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


# ---- what a configuration asks of vk.fit ----------------------------------------------


def fit_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Extra ``vk.fit`` options the configured preset asks for (``presets.fit_options``)."""
    opts = {k: cfg[k] for k in ("latent", "prior") if cfg[k] is not None}
    opts.update(cfg["model_options"])
    return dict(presets.fit_options(cfg["model"], **opts) or {})


def lr_schedule(cfg: dict[str, Any], steps_per_epoch: int) -> float | optax.Schedule:
    """The learning rate or schedule: an optional linear warm-up over ``lr_warmup_epochs``,
    then ``constant``, ``cosine`` (to 0), ``exponential`` (to lr/10) or ``linear`` (to 0)
    over the remaining steps."""
    warm = cfg.get("lr_warmup_epochs", 0) * steps_per_epoch
    total = max(1, cfg["epochs"] * steps_per_epoch - warm)
    name, lr0 = cfg["lr_schedule"], cfg["lr"]
    if name == "cosine":
        lr = optax.cosine_decay_schedule(lr0, total)
    elif name == "exponential":
        lr = optax.exponential_decay(lr0, total, 0.1)  # decays to lr/10 at the end
    elif name == "linear":
        lr = optax.linear_schedule(lr0, 0.0, total)
    else:
        lr = lr0
    if warm:
        rest = lr if callable(lr) else optax.constant_schedule(lr)
        lr = optax.join_schedules([optax.linear_schedule(0.0, lr0, warm), rest], [warm])
    return lr


def make_optimizer(cfg: dict[str, Any], steps_per_epoch: int) -> optax.GradientTransformation:
    """``vk.default_optimizer`` with the run's settings (clip_norm 0: no clipping)."""
    return default_optimizer(
        lr_schedule(cfg, steps_per_epoch),
        cfg.get("clip_norm", 100.0) or None,
        betas=tuple(cfg.get("adam_betas", (0.9, 0.999))),
        weight_decay=cfg.get("weight_decay", 0.0),
        skip_nonfinite=cfg.get("skip_nonfinite", True),
    )


def beta_schedule(cfg: dict[str, Any], steps_per_epoch: int) -> float | optax.Schedule:
    """KL warm-up: beta rises linearly from 0 over ``kl_warmup_epochs``."""
    if cfg["kl_warmup_epochs"] == 0:
        return cfg["beta"]
    return optax.linear_schedule(0.0, cfg["beta"], cfg["kl_warmup_epochs"] * steps_per_epoch)


# ---- metrics.jsonl ----------------------------------------------------------------------


def write_metrics(run: Path, history: dict[str, list[float]]) -> None:
    """Rewrite ``metrics.jsonl`` from ``history`` (atomically; strict JSON)."""
    lines = []
    for e in range(len(history.get("train_loss", []))):
        row = {"epoch": e + 1}
        for k, v in history.items():
            if e < len(v):
                row[k] = v[e]
        lines.append(ckpt.dumps(row))
    ckpt.atomic_write(run / "metrics.jsonl", lambda f: f.write(("\n".join(lines) + "\n" if lines else "").encode()))


def _append_metrics(run: Path, row: dict) -> None:
    """Append one line to ``metrics.jsonl``; on a failed write (disk full) the file is cut
    back to its previous length, so no partial line stays."""
    line = (ckpt.dumps(row) + "\n").encode()
    fd = os.open(run / "metrics.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def read_metrics(run: str | os.PathLike) -> list[dict]:
    """The rows of ``run/metrics.jsonl``. A torn last line (what a crash mid-write leaves)
    is skipped; a bad line elsewhere is an error naming the file and the line."""
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:
                break  # torn last line
            raise ValueError(f"{path}: line {i + 1} is not valid JSON ({e}); the file is corrupt.") from None
    return rows


# ---- train ------------------------------------------------------------------------------


def train(
    cfg: dict[str, Any],
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    explicit: dict[str, Any] | None = None,
    allow_data_change: bool = False,
) -> Path:
    """Train as configured into the run folder ``out``; return its path.

    The folder is locked for the whole run (a second writer fails at once). Ctrl-C,
    SIGTERM and SIGHUP save a checkpoint of the last complete epoch and raise
    :class:`RunInterrupted`; a diverged run keeps its last good checkpoint, is marked
    ``diverged`` and raises :class:`vaekit.training.TrainingDiverged`.

    :param resume: continue the run in ``out`` from its newest checkpoint that verifies
        (from epoch 0 when it has none). ``cfg`` is then taken from ``out/config.json``,
        updated with ``explicit`` (the keys the user set), which may only change
        :data:`~vaekit.runs.config.RESUMABLE` keys.
    :param allow_data_change: resume even though the training data differ from those
        the run started on (their fingerprint is recorded in ``config.json``).
    """
    out = Path(out)
    held: list[ckpt.FolderLock] = []
    try:
        with _Signals():
            return _train(cfg, out, resume, overwrite, quiet, explicit or {}, allow_data_change, held)
    except RunInterrupted as e:
        if str(e).startswith("stopped by"):  # a signal before training started: nothing saved
            raise RunInterrupted(f"{e} before training started; nothing was saved.", e.signum) from None
        raise
    except KeyboardInterrupt:
        raise RunInterrupted("interrupted before training started; nothing was saved.") from None
    finally:
        for lock in held:
            lock.release()


def _train(
    cfg: dict,
    out: Path,
    resume: bool,
    overwrite: bool,
    quiet: bool,
    explicit: dict,
    allow_data_change: bool,
    held: list,
) -> Path:
    main = is_main_process()
    saved: dict = {}
    saved_pre = None
    if resume:
        cfg, saved, saved_pre = _resumed_config(out, explicit, held if main else None)
    elif main:
        check_out(out, overwrite)  # fail before loading any data; prepare_out checks again
    tracking.require(cfg.get("loggers") or [])  # a missing tracker package fails before anything is written
    barrier("vaekit-run-checked")
    data = RunData(cfg, new_defaults=not resume, pre=saved_pre)
    cfg = resolve_from_data(cfg, data, strict=not resume)
    saved_fp = saved.get("data_fingerprint")
    data_changed = resume and saved_fp is not None and saved_fp != data.fingerprint
    if data_changed:
        _check_data_change(out, cfg, saved_fp, data.fingerprint, allow_data_change)
    if main:  # the data-aware defaults, always said out loud (vaekit.data.defaults)
        notice = data.choice.notice
        if resume:
            notice = (saved.get("defaults_chosen") or {}).get("notice") or notice
        _announce(notice)
    if cfg.get("condition_on") == "label":  # conditional models: the labels go to fit
        cfg = _with_classes(cfg, data)
    spec = model_spec(cfg, data.n_features)
    model_key, fit_key = jax.random.split(jax.random.key(cfg["seed"]))
    try:
        model = ckpt.build_model(spec, model_key)
    except TypeError as e:
        raise ValueError(f"Model {cfg['model']!r} does not accept these options: {e}") from None
    steps = len(data.x) // cfg["batch_size"]  # batch size checked against the rows in resolve_from_data
    optimizer = make_optimizer(cfg, steps)
    saver = ckpt.Checkpoints(out / "checkpoints", cfg["keep_checkpoints"])
    state = None
    if resume:
        state, fit_key = _restore(out, cfg, saver, model, optimizer, fit_key, main)
        if main:
            write_metrics(out, state.history if state is not None else {})
            if data_changed:
                _record_data_change(out, saved_fp, data.fingerprint, 0 if state is None else state.epoch)
    elif main:
        held.append(prepare_out(out, overwrite))
        _write_run_files(out, cfg, data, spec)
    if isinstance(model, VampVAE) and state is None and isinstance(data.x, np.ndarray):
        # A VampPrior moves with the encoder, so nothing anchors the latents early on:
        # start the decoder at the data marginal, or the encoder can collapse.
        try:
            model = init_output_bias(model, data.x)
        except TypeError:
            pass  # a decoder this does not apply to (e.g. a conv net)
    barrier("vaekit-run-prepared")
    if main:
        set_status(out, "running")
    log = _EpochLog(out, cfg, steps, main, state, quiet)
    trackers = _trackers(out, cfg, steps, data, resume) if main and cfg.get("loggers") else None
    fit_kwargs = dict(
        key=fit_key,
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        optimizer=optimizer,
        x_val=data.xv,
        beta=beta_schedule(cfg, steps),
        n_samples=cfg["n_samples"],
        callback=log if trackers is None else [log, trackers],
        batch_transform=data.pre.batch_transform(),
        resume=state,
        devices=cfg["devices"],
        checkpointing=Checkpointing(saver, every=cfg["checkpoint_every"]),
    )
    fit_kwargs.update(fit_options(cfg))  # e.g. objective="iwae" for an IWAE preset
    if cfg.get("condition_on") == "label":
        fit_kwargs.update(y=data.y, y_val=data.yv if data.xv is not None else None)
    try:
        with warnings.catch_warnings():
            # reported per epoch by the log and in metrics.jsonl instead of as Python warnings
            warnings.filterwarnings(
                "ignore", message=r"(epoch \d+: \d+ of|Training produced non-finite)", category=RuntimeWarning
            )
            model, history = fit(model, data.x, **fit_kwargs)
    except KeyboardInterrupt as e:
        raise log.interrupted(e) from None
    except TrainingDiverged as e:
        raise log.diverged(e) from None
    except OSError as e:
        log.failed(e)
        raise
    finally:
        log.close()
        if trackers is not None:
            trackers.close()
    if main:
        epochs_done = log.state.epoch if log.state is not None else (state.epoch if state is not None else 0)
        digest = ckpt.write_leaves(out / ckpt.MODEL_FILE, model)
        set_status(
            out,
            "finished",
            epochs=epochs_done,
            final={k: v[-1] for k, v in history.items() if v},
            stopped_early=epochs_done < cfg["epochs"],
            model_sha256=digest,
            model_epochs=epochs_done,
            skipped_steps=sum(v for v in history.get("skipped_steps", []) if v),
        )
    barrier("vaekit-run-finished")
    return out


def _trackers(out: Path, cfg: dict, steps: int, data: RunData, resume: bool) -> tracking.RunTrackers:
    """The experiment trackers of ``--logger`` (:mod:`vaekit.runs.tracking`): per-epoch
    metrics, the learning rate, and the reconstruction/KL terms of 500 validation rows."""
    probe = data.xv if isinstance(data.xv, np.ndarray) else data.x if isinstance(data.x, np.ndarray) else None
    probe = None if probe is None else probe[:500]
    conf = {k: v for k, v in cfg.items() if k != "loggers"}
    return tracking.RunTrackers(
        out, cfg["loggers"], resume=resume, config=conf, lr=lr_schedule(cfg, steps), terms_data=probe
    )


def _with_classes(cfg: dict, data) -> dict:
    """``cfg`` of a run with ``condition_on="label"``: checked, ``num_classes`` from the labels."""
    if cfg["model"] not in ("cvae", "m2"):
        raise ValueError(f"--condition-on label needs a conditional model: --model cvae or m2 (got {cfg['model']!r}).")
    if data.y is None or isinstance(data.x, Source):
        raise ValueError(
            f"--condition-on label needs in-memory data with labels; {cfg['data']!r} has none here "
            "(use digits/mnist, or --label-column for a CSV/Parquet file)."
        )
    if "num_classes" in cfg["model_options"]:
        return cfg
    y = np.asarray(data.y)
    return {**cfg, "model_options": {**cfg["model_options"], "num_classes": int(max(2, y.max() + 1))}}


def _resumed_config(out: Path, explicit: dict, held: list | None) -> tuple[dict, dict, Preprocessor | None]:
    """``(cfg, saved config.json, saved preprocessing)`` of the run to resume in ``out``
    (locked first, into ``held``), with the keys the user set (``explicit``) applied."""
    if not (out / "config.json").is_file():
        if is_run(out):
            raise FileNotFoundError(
                f"--resume {out}: the run stopped before it wrote its configuration, so there is "
                f"nothing to continue. Start it again with --out {out} --overwrite."
            )
        raise FileNotFoundError(f"--resume {out}: not a run folder (no config.json). Check the path.")
    if held is not None:
        held.append(ckpt.FolderLock(out).acquire())
    saved = ckpt.read_json(out / "config.json")
    old = {k: saved.get(k, DEFAULTS[k]) for k in DEFAULTS}
    unset = {"likelihood": "auto", "preprocessing": "auto"}  # a saved run has these resolved
    explicit = {k: v for k, v in explicit.items() if unset.get(k, object()) != v}
    new = resolve_config(old, explicit)
    bad = incompatible(old, new)
    if bad:
        raise ValueError(
            f"Cannot resume {out}: the configuration differs in {', '.join(bad)} "
            f"({'; '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in bad)}). Only "
            f"{', '.join(RESUMABLE)} may change; start a new run with --out for other changes."
        )
    pre = None
    if (out / "preprocessing.json").is_file():
        pre = Preprocessor.from_dict(ckpt.read_json(out / "preprocessing.json"))
    return new, saved, pre


def _check_data_change(out: Path, cfg: dict, before: dict, now: dict, allowed: bool) -> None:
    """Refuse to resume on changed training data unless ``allowed`` (then say so)."""
    if not allowed:
        raise ValueError(
            f"Cannot resume {out}: the training data changed since the run started ({cfg['data']}: "
            f"{before.get('n')} rows, fingerprint {str(before.get('sha256'))[:12]} -> "
            f"{now['n']} rows, {now['sha256'][:12]}). The run's "
            "preprocessing and validation split were made for the old data. Restore the data, "
            "pass --allow-data-change to continue on the new data anyway, or start a new run."
        )
    print(
        f"note: the training data changed since {out} started; continuing on the new data "
        "(--allow-data-change) with the run's saved preprocessing. Recorded in config.json.",
        file=sys.stderr,
    )


def _record_data_change(out: Path, before: dict, now: dict, epoch: int) -> None:
    conf = ckpt.read_json(out / "config.json")
    conf.setdefault("data_changes", []).append({"epoch": epoch, "before": before})
    conf["data_fingerprint"] = now
    ckpt.write_json(out / "config.json", conf)


def _restore(out: Path, cfg: dict, saver: ckpt.Checkpoints, model, optimizer, fit_key, main: bool):
    """``(state or None, fit key)`` from the newest checkpoint of the run that verifies."""
    if main:
        for d in (out, out / "checkpoints", out / "plots"):
            if d.is_dir():
                ckpt.remove_stale_tmp(d)
    opt_state = optimizer.init(eqx.filter(model, trainable(model)))
    loaded = saver.latest(model, opt_state, fit_key, quarantine=main)
    for path, reason in saver.skipped:
        print(f"warning: skipped checkpoint {path.name} ({reason}); kept it as {path.name}.corrupt", file=sys.stderr)
    if loaded is None:
        if (out / ckpt.MODEL_FILE).is_file():  # never retrain over a final model
            raise FileNotFoundError(
                f"--resume {out}: the run has a final {ckpt.MODEL_FILE} but no checkpoint to continue "
                "from (were they deleted?). Start a new run with another --out, or pass --out "
                f"{out} --overwrite to replace it."
            )
        print(
            f"note: {out} has no checkpoint; restarting it from epoch 0 with its saved configuration.", file=sys.stderr
        )
        return None, fit_key
    state, fit_key, _ = loaded
    if saver.skipped:
        print(f"resuming from {saver.path(state.epoch).name} (epoch {state.epoch})", file=sys.stderr)
    if state.epoch >= cfg["epochs"] and (out / ckpt.MODEL_FILE).is_file():
        raise ValueError(f"{out} already finished {state.epoch} epochs. Pass a larger --epochs to train on.")
    return state, fit_key


def _write_run_files(out: Path, cfg: dict, data: RunData, spec: dict) -> None:
    """``config.json``, ``preprocessing.json`` and an empty ``metrics.jsonl`` of a new run."""
    ckpt.write_json(
        out / "config.json",
        {
            **cfg,
            "data_summary": data.summary.to_dict(),
            "defaults_chosen": data.choice.to_dict(),
            "model_spec": spec,
            "model": cfg["model"],
            "data_fingerprint": data.fingerprint,
            "environment": environment(cfg["seed"]),
        },
    )
    ckpt.write_json(out / "preprocessing.json", data.pre.to_dict())
    ckpt.atomic_write(out / "metrics.jsonl", lambda f: None)


class _EpochLog:
    """The ``vk.fit`` callback of a run: one line of ``metrics.jsonl`` per epoch, the
    progress bar, skipped-step warnings and early stopping; then the run's last word when
    training is interrupted, diverges or fails."""

    def __init__(self, out: Path, cfg: dict, steps: int, main: bool, state: TrainState | None, quiet: bool):
        self.out, self.cfg, self.steps, self.main = out, cfg, steps, main
        self.state, self.skipped = state, 0
        self.bar = None
        if not quiet:
            from tqdm.auto import tqdm

            start = state.epoch if state is not None else 0
            self.bar = tqdm(
                total=cfg["epochs"],
                initial=start,
                desc=f"train {out.name}",
                unit="epoch",
                file=sys.stderr,
                dynamic_ncols=True,
            )

    def __call__(self, st: TrainState) -> bool:
        self.state = st
        row = {"epoch": st.epoch, **{k: v[-1] for k, v in st.history.items() if v}}
        if self.main:
            _append_metrics(self.out, row)
        skipped = row.get("skipped_steps") or 0
        if skipped:
            if not self.skipped:
                self.say(
                    f"warning: epoch {st.epoch}: {skipped} of {self.steps} steps had a non-finite loss or gradient "
                    "and were skipped (see skipped_steps in metrics.jsonl)"
                )
            self.skipped += skipped
        if self.bar is not None:
            self.bar.update(1)
            post = {k: f"{v:.3f}" for k, v in row.items() if k.endswith("loss") and isinstance(v, float)}
            if self.skipped:
                post["skipped"] = str(self.skipped)
            self.bar.set_postfix(post)
        patience = self.cfg["patience"]
        return bool(patience) and _should_stop(st.history, patience)

    def say(self, msg: str) -> None:
        if self.bar is not None:
            self.bar.write(msg, file=sys.stderr)
        else:
            print(msg, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    def newest(self) -> str:
        ck = checkpoints(self.out)
        return f"{ck[-1].relative_to(self.out)}" if ck else "none"

    def interrupted(self, e: KeyboardInterrupt) -> RunInterrupted:
        """Mark the run interrupted; the error that says what was saved."""
        out, st = self.out, self.state
        with signals_held():
            self.close()
            signum = getattr(e, "signum", signal.SIGINT)
            name = signal.Signals(signum).name if signum != signal.SIGINT else "Ctrl-C"
            if self.main:
                try_status(out, "interrupted", epoch=0 if st is None else st.epoch, signal=signal.Signals(signum).name)
            if st is None:
                msg = (
                    f"interrupted ({name}) before the first epoch finished; nothing to continue. "
                    f"Start again with: vaekit train --resume {out}"
                )
            else:
                msg = (
                    f"interrupted ({name}) after epoch {st.epoch}; checkpoint saved ({self.newest()}). "
                    f"Continue with: vaekit train --resume {out}"
                )
        return RunInterrupted(msg, signum)

    def diverged(self, e: TrainingDiverged) -> TrainingDiverged:
        """Mark the run diverged; the error that names its last good checkpoint."""
        self.close()
        good = e.state.epoch if e.state is not None else 0
        if self.main:
            try:
                _append_metrics(
                    self.out, {"epoch": e.epoch, "skipped_steps": e.skipped, "steps": e.steps, "diverged": True}
                )
            except OSError:
                pass
            try_status(self.out, "diverged", epoch=e.epoch, last_good_epoch=good)
        keep = f"its last good checkpoint is {self.newest()} (epoch {good})" if good else "no epoch finished before it"
        return TrainingDiverged(
            f"run {self.out} diverged in epoch {e.epoch}: {e.reason} ({e.skipped} of {e.steps} steps had a non-finite loss or gradient). "
            f"The run is marked diverged; {keep}. Start a new run with a lower --lr (now {self.cfg['lr']:g}) "
            f"or rescaled data (--overwrite replaces this one).",
            epoch=e.epoch,
            state=e.state,
            skipped=e.skipped,
            steps=e.steps,
            reason=e.reason,
        )

    def failed(self, e: OSError) -> None:
        """Mark the run failed and add to ``e`` how to continue."""
        if self.main:
            try_status(self.out, "failed", error=f"{type(e).__name__}: {e}")
        st, ck = self.state, self.newest()
        e.add_note(
            f"The run stopped after epoch {0 if st is None else st.epoch}; "
            + (
                f"its last good checkpoint is {ck}. Fix the problem, then continue with: vaekit train --resume {self.out}"
                if ck != "none"
                else f"it has no checkpoint. Fix the problem, then start again with: vaekit train --resume {self.out}"
            )
        )


class _Signals:
    """While active: SIGTERM and SIGHUP stop training like Ctrl-C (a checkpoint is saved).

    Schedulers (SLURM, Kubernetes) send SIGTERM before they kill a job; a closed terminal
    sends SIGHUP. The handler raises :class:`RunInterrupted` in the main thread, which
    acts on it between the compiled parts of an epoch (about a second apart).
    """

    NAMES = ("SIGTERM", "SIGHUP")

    def __enter__(self):
        self.old = {}
        if threading.current_thread() is threading.main_thread():
            for name in self.NAMES:
                if hasattr(signal, name):
                    sig = getattr(signal, name)
                    self.old[sig] = signal.signal(sig, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise RunInterrupted(f"stopped by {signal.Signals(signum).name}", signum)

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def _announce(line: str) -> None:
    """Print ``line``; terminals that cannot show ``×``/``→`` get ASCII instead of an error."""
    try:
        print(line, flush=True)
    except UnicodeEncodeError:
        print(line.replace("×", "x").replace("→", "->").encode("ascii", "replace").decode(), flush=True)


def _should_stop(history: dict[str, list[float]], patience: int) -> bool:
    """Early stopping: no improvement of the validation (else training) loss in ``patience`` epochs."""
    h = history.get("val_loss") or history["train_loss"]
    best = int(np.argmin(h))
    return len(h) - 1 - best >= patience
