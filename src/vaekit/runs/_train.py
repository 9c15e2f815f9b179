"""Training runs: resolved configuration, run folders, checkpoints, resume.

``train(config, out=..., resume=..., overwrite=...)`` is what ``vaekit train`` runs. A run
folder holds:

* ``vaekit.json``: the marker ``{"kind": "run", "format": 1, "status": ...}`` (status
  ``starting``, ``running``, ``finished``, ``interrupted``, ``diverged`` or ``failed``;
  when finished also the SHA-256 of ``model.eqx``);
* ``.vaekit.lock``: locked (``flock``) by the process training in the folder;
* ``config.json``: the fully resolved configuration plus the environment (vaekit and
  JAX versions, git commit, devices, seed, command line) and the fingerprint of the
  training data;
* ``metrics.jsonl``: one JSON line per epoch;
* ``checkpoints/epoch-NNNN.ckpt``: model, optimizer state, step, PRNG key, history and
  a checksum (every ``checkpoint_every`` epochs, at the end, on Ctrl-C/SIGTERM/SIGHUP
  and before a divergence);
* ``model.eqx`` and ``preprocessing.json``: the final model and its preprocessing
  (``vk.load(run_dir)``);
* later ``eval.json``, ``plots/`` and ``report.html``.

Runs are reproducible: the same configuration gives bit-identical parameters on CPU,
and a run interrupted and resumed ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import signal
import subprocess
import sys
import threading
import tomllib
import warnings
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from ..data import datasets
from ..training import checkpoints as vio
from ..zoo import presets
from ..core._fixed import trainable
from ..data.defaults import LIKELIHOODS, choose, summarize
from ..training.distributed import barrier, is_main_process
from ..core._initialization import init_output_bias
from ..data.preprocessing import Preprocessor
from ..training._loop import TrainingDiverged, TrainState, _signals_held, default_optimizer, fit
from ..zoo.vamp import VampVAE

#: Every configuration key with its default. ``None`` means "not set": ``hidden`` is then
#: the preset's own width (``presets.default_hidden``) and ``batch_size`` 100 or the
#: number of training rows if fewer. ``"auto"`` likelihood/preprocessing are chosen from
#: the data (:mod:`vaekit.defaults`). The resolved values are what ``config.json`` records.
DEFAULTS: dict[str, Any] = {
    "data": "digits",
    "limit": None,
    "label_column": None,
    "data_options": {},
    "val_fraction": 0.1,
    "preprocessing": "auto",
    "model": "vae",
    "likelihood": "auto",
    "latent_dim": 2,
    "hidden": None,
    "latent": None,
    "prior": None,
    "model_options": {},
    "epochs": 30,
    "batch_size": None,
    "lr": 1e-3,
    "lr_schedule": "constant",
    "lr_warmup_epochs": 0,
    "clip_norm": 100.0,
    "adam_betas": [0.9, 0.999],
    "weight_decay": 0.0,
    "skip_nonfinite": True,
    "beta": 1.0,
    "kl_warmup_epochs": 0,
    "n_samples": 1,
    "seed": 0,
    "patience": 0,
    "checkpoint_every": 5,
    "keep_checkpoints": 3,
    "devices": None,
}
#: Keys that may change when a run is resumed (everything else must match).
RESUMABLE = ("epochs", "patience", "checkpoint_every", "keep_checkpoints", "devices")
LR_SCHEDULES = ("constant", "cosine", "exponential", "linear")
DEFAULT_BATCH_SIZE = 100
_TABLES = ("data_options", "model_options")


def _type_check(key: str, value: Any) -> Any:
    default = DEFAULTS[key]
    if value is None:
        return None
    if key in _TABLES:
        if not isinstance(value, dict):
            raise ValueError(f"Config key {key!r} must be a table of options, got {value!r}.")
        return dict(value)
    if key == "likelihood":
        if not isinstance(value, str) or value.replace("_", "-") not in ("auto", *LIKELIHOODS):
            raise ValueError(f"Unknown likelihood={value!r}. Valid values: auto, {', '.join(LIKELIHOODS)}.")
        return value.replace("_", "-")
    if key == "adam_betas":
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()]
        try:
            betas = [float(v) for v in value]
        except (TypeError, ValueError):
            betas = []
        if len(betas) != 2 or any(isinstance(v, bool) for v in value) or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"adam_betas must be two numbers in [0, 1) like '0.9,0.99', got {value!r}.")
        return betas
    if key == "skip_nonfinite":
        if not isinstance(value, bool):
            raise ValueError(f"skip_nonfinite must be true or false, got {value!r}.")
        return value
    if key == "hidden":
        if isinstance(value, str):
            try:
                value = [int(v) for v in value.split(",") if v.strip()]
            except ValueError:
                raise ValueError(f"hidden must be layer widths like '500' or '256,128', got {value!r}.") from None
        if isinstance(value, int):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, int) and v > 0 for v in value):
            raise ValueError(f"hidden must be a list of positive ints, got {value!r}.")
        return list(value)
    if key in ("epochs", "batch_size", "latent_dim", "n_samples", "checkpoint_every", "limit", "patience", "seed", "kl_warmup_epochs", "keep_checkpoints", "lr_warmup_epochs"):
        nonneg = key in ("patience", "seed", "kl_warmup_epochs", "epochs", "keep_checkpoints", "lr_warmup_epochs")
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if nonneg else 1):
            raise ValueError(f"{key} must be a {'non-negative' if nonneg else 'positive'} int, got {value!r}.")
        return value
    if key == "devices":
        from ..training.distributed import resolve_devices

        resolve_devices(value)  # validates: "all", a positive count, or a count as a string
        return value
    if key in ("lr", "beta", "val_fraction", "clip_norm", "weight_decay"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{key} must be a non-negative number, got {value!r}.")
        if key == "val_fraction" and value >= 1:
            raise ValueError(f"val_fraction must be below 1, got {value!r}.")
        return float(value)
    if key == "lr_schedule" and value not in LR_SCHEDULES:
        raise ValueError(f"Unknown lr_schedule={value!r}. Valid values: {', '.join(LR_SCHEDULES)}.")
    if isinstance(default, str) and not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {value!r}.")
    return value


def read_config(path: str | os.PathLike) -> dict[str, Any]:
    """A TOML configuration file as a dict of known keys (unknown keys are errors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Config file {path} does not exist.")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path} is not valid TOML: {e}") from None
    return check_keys(raw, str(path))


def check_keys(raw: dict[str, Any], where: str = "config") -> dict[str, Any]:
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise ValueError(
            f"{where}: unknown config key(s) {', '.join(map(repr, unknown))}. Valid keys: {', '.join(DEFAULTS)}."
        )
    return {k: _type_check(k, v) for k, v in raw.items()}


def resolve_config(file_config: dict | None = None, overrides: dict | None = None) -> dict[str, Any]:
    """Defaults, then the config file, then command-line overrides (non-None values)."""
    cfg = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in DEFAULTS.items()}
    cfg.update(check_keys(file_config or {}))
    cfg.update(check_keys({k: v for k, v in (overrides or {}).items() if v is not None}, "command line"))
    if cfg["preprocessing"] != "auto":
        Preprocessor(cfg["preprocessing"])  # validates the name
    return cfg


def environment(seed: int) -> dict[str, Any]:
    """Versions, git commit, devices: what is needed to know how a run was made."""
    from .. import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "vaekit_version": __version__,
        "jax_version": jax.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "git_commit": commit,
        "seed": seed,
        "command": sys.argv,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# ---- data and model -----------------------------------------------------------------


class RunData:
    """Training/validation data in model space, labels, and the fitted preprocessing.

    Streamed datasets (a :class:`vaekit.data_source.Source`) stay sources: the split is by
    index, the preprocessing is fitted on (up to ``FIT_SAMPLE`` examples of) the
    training part, and :class:`Transformed` applies it on read. They are read into
    memory at the end of ``__init__`` until ``vk.fit`` takes a Source.
    """

    FIT_SAMPLE = 20_000
    MEMORY_CAP = 2 * 2**30

    def __init__(self, cfg: dict[str, Any], *, new_defaults: bool = True, pre: Preprocessor | None = None):
        ds = datasets.load(cfg["data"], "train", limit=cfg["limit"], **_data_kwargs(cfg))
        self.meta, self.name = ds.meta, ds.name
        x, y = ds.x, ds.y
        n = datasets.n_examples(x)
        self.fingerprint = vio.data_fingerprint(x)  # recorded in the run, checked on resume
        has_valid = "valid" in datasets.splits(cfg["data"])
        if cfg["val_fraction"] == 0:
            xv = yv = None
        elif has_valid:
            vs = datasets.load(cfg["data"], "valid", limit=cfg["limit"], **_data_kwargs(cfg))
            xv, yv = vs.x, vs.y
        else:
            perm = np.random.default_rng(cfg["seed"]).permutation(n)
            n_val = max(1, int(round(cfg["val_fraction"] * n)))
            vi, ti = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            xv, yv = _rows(x, vi), (None if y is None else y[vi])
            x, y = _rows(x, ti), (None if y is None else y[ti])
        _check_enough_data(cfg, n, len(x), None if xv is None else datasets.n_examples(xv))
        sample = x.read(np.arange(min(len(x), self.FIT_SAMPLE))) if _is_source(x) else x
        # Data-aware defaults (vaekit.defaults): "auto" likelihood/preprocessing from the data.
        from ..core._checks import as_data

        self.summary = summarize(as_data(sample, "the training data"), self.meta, n)
        variance = new_defaults and "variance" not in cfg["model_options"] and _takes_shared_variance(cfg["model"])
        self.choice = choose(self.summary, cfg["likelihood"], cfg["preprocessing"], variance=variance)
        # a resumed run keeps the preprocessing it was trained with
        self.pre = pre or Preprocessor.fit(
            self.choice.preprocessing, sample, seed=cfg["seed"], **self.choice.preprocessing_options
        )
        # Dynamic binarization trains on the values in [0, 1], redrawn per batch.
        train = x if self.pre.kind == "dynamic" else _apply(self.pre, x)
        # Streamed sources stay on disk when they are larger than MEMORY_CAP bytes;
        # vk.fit then reads them chunk by chunk with prefetching.
        self.x = _maybe_materialize(train, self.MEMORY_CAP)
        self.xv = None if xv is None else _maybe_materialize(_apply(self.pre, xv), self.MEMORY_CAP)
        self.y, self.yv = y, yv

    @property
    def n_features(self):
        shape = tuple(self.x.example_shape) if _is_source(self.x) else tuple(self.x.shape[1:])
        return int(shape[0]) if len(shape) == 1 else tuple(int(s) for s in shape)


class Transformed:
    """A :class:`Source` whose examples pass through ``pre.transform`` when read."""

    def __init__(self, source, pre: Preprocessor):
        self.source, self.pre = source, pre

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.source.example_shape)

    def __len__(self) -> int:
        return len(self.source)

    def read(self, indices: np.ndarray) -> np.ndarray:
        return self.pre.transform(self.source.read(indices))


def _is_source(x) -> bool:
    return not isinstance(x, np.ndarray) and isinstance(x, datasets.Source)


def _maybe_materialize(x, cap: int):
    """``x`` as an in-memory array when it fits under ``cap`` bytes of float32, else the source."""
    if not _is_source(x):
        return x
    if 4 * len(x) * int(np.prod(x.example_shape)) <= cap:
        return datasets.materialize(x)
    return x


def _rows(x, idx):
    return datasets.Subset(x, idx) if _is_source(x) else x[idx]


def _apply(pre: Preprocessor, x):
    return Transformed(x, pre) if _is_source(x) else pre.transform(x)


def _takes_shared_variance(model: str) -> bool:
    return model != "conv_vae" and "variance" in presets.valid_options(model)


def resolve_from_data(cfg: dict[str, Any], data: RunData, *, strict: bool = True) -> dict[str, Any]:
    """``cfg`` with what depends on the data resolved: likelihood, preprocessing (and the
    decoder variance they imply), the preset's width, and the batch size (checked; with
    ``strict=False``, for runs resumed from before the check, capped at the rows as then)."""
    ch = data.choice
    cfg = {
        **cfg,
        "likelihood": ch.likelihood,
        "preprocessing": ch.preprocessing,
        "model_options": {**cfg["model_options"], **ch.model_options},
    }
    if cfg["hidden"] is None:
        cfg["hidden"] = list(presets.default_hidden(cfg["model"]))
    n = datasets.n_examples(data.x)
    held = "" if data.xv is None or "valid" in datasets.splits(cfg["data"]) else f" after holding out {datasets.n_examples(data.xv)} for validation"
    if cfg["batch_size"] is None or not strict:
        cfg["batch_size"] = min(cfg["batch_size"] or DEFAULT_BATCH_SIZE, n)
    elif cfg["batch_size"] > n:
        raise ValueError(
            f"batch_size={cfg['batch_size']} is larger than the training split, which has {n} rows{held}. "
            f"Use --batch-size {n} or less."
        )
    return cfg


def _data_kwargs(cfg) -> dict[str, Any]:
    kw = dict(cfg["data_options"])
    if cfg["label_column"] is not None:
        kw["label_column"] = cfg["label_column"]
    return kw


def model_spec(cfg: dict[str, Any], n_features) -> dict[str, Any]:
    """The preset description of the configured model (options only when set)."""
    opts: dict[str, Any] = {"latent_dim": cfg["latent_dim"]}
    for k in ("hidden", "likelihood"):  # unresolved ("auto", None) values are left to the preset
        if cfg[k] not in (None, "auto"):
            opts[k] = cfg[k]
    for k in ("latent", "prior"):
        if cfg[k] is not None:
            opts[k] = cfg[k]
    opts.update(cfg["model_options"])
    return vio.model_spec(cfg["model"], n_features, **opts)


def fit_options(cfg: dict[str, Any]) -> dict[str, Any]:
    """Extra ``vk.fit`` options a preset asks for (``presets.fit_options``), if any."""
    fo = getattr(presets, "fit_options", None)
    if fo is None:
        return {}
    opts = {k: cfg[k] for k in ("latent", "prior") if cfg[k] is not None}
    opts.update(cfg["model_options"])
    return dict(fo(cfg["model"], **opts) or {})


def lr_schedule(cfg: dict[str, Any], steps_per_epoch: int):
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


def make_optimizer(cfg: dict[str, Any], steps_per_epoch: int):
    """``vk.default_optimizer`` with the run's settings (clip_norm 0: no clipping)."""
    return default_optimizer(
        lr_schedule(cfg, steps_per_epoch),
        cfg.get("clip_norm", 100.0) or None,
        betas=tuple(cfg.get("adam_betas", (0.9, 0.999))),
        weight_decay=cfg.get("weight_decay", 0.0),
        skip_nonfinite=cfg.get("skip_nonfinite", True),
    )


def beta_schedule(cfg: dict[str, Any], steps_per_epoch: int):
    """KL warm-up: beta rises linearly from 0 over ``kl_warmup_epochs``."""
    if cfg["kl_warmup_epochs"] == 0:
        return cfg["beta"]
    return optax.linear_schedule(0.0, cfg["beta"], cfg["kl_warmup_epochs"] * steps_per_epoch)


# ---- run folders --------------------------------------------------------------------

#: Version of the run-folder layout, recorded in the marker ``vaekit.json``.
RUN_FORMAT = 1
#: Files vaekit writes at the top of a run folder; ``--overwrite`` deletes only these
#: (plus ``checkpoints/epoch-*.ckpt*``, ``plots/*.png`` and stale temporary files).
RUN_FILES = (vio.META_FILE, "config.json", "metrics.jsonl", vio.MODEL_FILE, "preprocessing.json", "eval.json", "report.html")


class RunInterrupted(KeyboardInterrupt):
    """``vaekit train`` stopped by Ctrl-C, SIGTERM or SIGHUP (after saving a checkpoint).

    ``signum`` is the signal; the message says what was saved and how to continue.
    """

    def __init__(self, message: str, signum: int = signal.SIGINT):
        super().__init__(message)
        self.signum = signum


def run_meta(path: Path) -> dict | None:
    """The marker ``vaekit.json`` of a run folder, or None when ``path`` is not provably a
    vaekit run (no marker, unreadable, or of another kind)."""
    try:
        meta = vio.read_json(Path(path) / vio.META_FILE)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("kind") == "run" else None


def is_run(path: Path) -> bool:
    return run_meta(path) is not None


def _contents(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name != vio.LOCK_FILE] if out.is_dir() else []


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that cannot take a new run (no side effects)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file. Choose a folder path.")
    if not _contents(out):
        return
    meta = run_meta(out)
    if meta is None:
        raise FileExistsError(
            f"--out {out} is a non-empty folder that is not a vaekit run (it has no {vio.META_FILE} "
            "marking a run); refusing to write into it or delete anything in it, even with "
            "--overwrite. Choose a new or empty folder."
        )
    if overwrite:
        return
    status = meta.get("status", "unknown")
    if checkpoints(out) or (out / vio.MODEL_FILE).is_file():
        raise FileExistsError(
            f"--out {out} already holds a run (status {status}). Pass --resume {out} to continue it, "
            "--overwrite to replace it, or choose another --out."
        )
    resume = f"--resume {out} to restart it in place with its saved configuration, " if (out / "config.json").is_file() else ""
    raise FileExistsError(
        f"--out {out} holds a run that stopped before its first checkpoint (status {status}), so "
        f"nothing in it can be continued. Pass {resume}--overwrite to start it again with this "
        "configuration, or choose another --out."
    )


def prepare_out(out: Path, overwrite: bool) -> vio.FolderLock:
    """Create (or, with ``overwrite``, clear) the run folder ``out`` and lock it.

    Only a provable vaekit run is replaced, and only the files vaekit writes are
    deleted; anything else in the folder stays. Returns the held lock.
    """
    check_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    lock = vio.FolderLock(out).acquire()
    try:
        check_out(out, overwrite)  # again, now that no other vaekit process can write here
        if _contents(out):
            kept = remove_run_files(out)
            if kept:
                print(
                    f"--overwrite: kept {len(kept)} file(s) in {out} that vaekit did not write: "
                    f"{', '.join(str(p.relative_to(out)) for p in kept[:5])}{' ...' if len(kept) > 5 else ''}",
                    file=sys.stderr,
                )
        _set_status(out, "starting")  # the marker first: the folder is now provably a run
    except BaseException:
        lock.release()
        raise
    return lock


def remove_run_files(out: Path) -> list[Path]:
    """Delete what vaekit wrote into the run folder ``out``; return the other files (kept)."""
    for sub, pattern in (("checkpoints", "epoch-*.ckpt*"), ("plots", "*.png"), ("checkpoints", ".*.tmp"), ("plots", ".*.tmp")):
        for p in (out / sub).glob(pattern):
            p.unlink()
    vio.remove_stale_tmp(out)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for sub in ("checkpoints", "plots"):
        if (out / sub).is_dir() and not any((out / sub).iterdir()):
            (out / sub).rmdir()
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != vio.LOCK_FILE)


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("epoch-*.ckpt"))


def write_metrics(run: Path, history: dict[str, list[float]], start: int = 0) -> None:
    """Rewrite ``metrics.jsonl`` from ``history`` (atomically; strict JSON)."""
    lines = []
    for e in range(len(history.get("train_loss", []))):
        row = {"epoch": e + 1}
        for k, v in history.items():
            if e < len(v):
                row[k] = v[e]
        lines.append(vio.dumps(row))
    vio.atomic_write(run / "metrics.jsonl", lambda f: f.write(("\n".join(lines) + "\n" if lines else "").encode()))


def _append_metrics(run: Path, row: dict) -> None:
    """Append one line to ``metrics.jsonl``; on a failed write (disk full) the file is cut
    back to its previous length, so no partial line stays."""
    line = (vio.dumps(row) + "\n").encode()
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


_KEEP_META = ("model_sha256", "model_epochs")


def _set_status(run: Path, status: str, **extra) -> None:
    """Rewrite the marker ``vaekit.json`` (keeps the checksum of an existing ``model.eqx``)."""
    old = run_meta(run) or {}
    kept = {k: old[k] for k in _KEEP_META if k in old and (run / vio.MODEL_FILE).is_file()}
    vio.write_json(run / vio.META_FILE, {"kind": "run", "format": RUN_FORMAT, "status": status, **kept, **extra})


def _try_status(run: Path, status: str, **extra) -> None:
    """:func:`_set_status`, ignoring write errors (used while reporting another error)."""
    try:
        _set_status(run, status, **extra)
    except OSError:
        pass


def _incompatible(old: dict, new: dict) -> list[str]:
    return sorted(k for k in DEFAULTS if k not in RESUMABLE and old.get(k) != new.get(k))


def _check_enough_data(cfg: dict[str, Any], n: int, n_train: int, n_val: int | None) -> None:
    """Too little data for the split is a clear error (not a ZeroDivisionError later)."""
    data = cfg["data"]
    if n == 0:
        raise ValueError(f"{data} has no training examples. Pass a data set with at least 2 rows.")
    if n_train == 0:
        raise ValueError(
            f"{data} has {n} training example(s): holding out val_fraction={cfg['val_fraction']} "
            "for validation leaves none to train on. Use more data, or pass --val-fraction 0 "
            "to train on all of it without validation."
        )
    if n_val == 0:
        raise ValueError(f"The validation split of {data} is empty. Pass --val-fraction 0 to train without one.")


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


def _say(bar, msg: str) -> None:
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr)


# ---- training -----------------------------------------------------------------------


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
        :data:`RESUMABLE` keys.
    :param allow_data_change: resume even though the training data differ from those
        the run started on (their fingerprint is recorded in ``config.json``).
    """
    out = Path(out)
    held: list[vio.FolderLock] = []
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


def _train(cfg, out: Path, resume: bool, overwrite: bool, quiet: bool, explicit: dict, allow_data_change: bool, held: list) -> Path:
    main = is_main_process()
    saved_pre = saved_fp = None
    if resume:
        if not (out / "config.json").is_file():
            if is_run(out):
                raise FileNotFoundError(
                    f"--resume {out}: the run stopped before it wrote its configuration, so there is "
                    f"nothing to continue. Start it again with --out {out} --overwrite."
                )
            raise FileNotFoundError(f"--resume {out}: not a run folder (no config.json). Check the path.")
        if main:
            held.append(vio.FolderLock(out).acquire())
        saved = vio.read_json(out / "config.json")
        old = {k: saved.get(k, DEFAULTS[k]) for k in DEFAULTS}
        unset = {"likelihood": "auto", "preprocessing": "auto"}  # a saved run has these resolved
        explicit = {k: v for k, v in (explicit or {}).items() if unset.get(k, object()) != v}
        new = resolve_config(old, explicit)
        bad = _incompatible(old, new)
        if bad:
            raise ValueError(
                f"Cannot resume {out}: the configuration differs in {', '.join(bad)} "
                f"({'; '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in bad)}). Only "
                f"{', '.join(RESUMABLE)} may change; start a new run with --out for other changes."
            )
        cfg = new
        saved_fp = saved.get("data_fingerprint")
        if (out / "preprocessing.json").is_file():
            saved_pre = Preprocessor.from_dict(vio.read_json(out / "preprocessing.json"))
    elif main:
        check_out(out, overwrite)  # fail before loading any data; prepare_out checks again
    barrier("vaekit-run-checked")
    data = RunData(cfg, new_defaults=not resume, pre=saved_pre)
    cfg = resolve_from_data(cfg, data, strict=not resume)
    if resume and saved_fp is not None and saved_fp != data.fingerprint:
        if not allow_data_change:
            raise ValueError(
                f"Cannot resume {out}: the training data changed since the run started ({cfg['data']}: "
                f"{saved_fp.get('n')} rows, fingerprint {str(saved_fp.get('sha256'))[:12]} -> "
                f"{data.fingerprint['n']} rows, {data.fingerprint['sha256'][:12]}). The run's "
                "preprocessing and validation split were made for the old data. Restore the data, "
                "pass --allow-data-change to continue on the new data anyway, or start a new run."
            )
        print(
            f"note: the training data changed since {out} started; continuing on the new data "
            "(--allow-data-change) with the run's saved preprocessing. Recorded in config.json.",
            file=sys.stderr,
        )
    if main:  # the data-aware defaults, always said out loud (vaekit.defaults)
        notice = data.choice.notice
        if resume:
            notice = (saved.get("defaults_chosen") or {}).get("notice") or notice
        _announce(notice)
    spec = model_spec(cfg, data.n_features)
    root = jax.random.key(cfg["seed"])
    model_key, fit_key = jax.random.split(root)
    try:
        model = vio.build_model(spec, model_key)
    except TypeError as e:
        raise ValueError(f"Model {cfg['model']!r} does not accept these options: {e}") from None
    bs = cfg["batch_size"]  # checked against the training rows in resolve_from_data
    steps = len(data.x) // bs
    optimizer = make_optimizer(cfg, steps)
    opt_state0 = optimizer.init(eqx.filter(model, trainable(model)))
    ckpts = vio.Checkpoints(out / "checkpoints", cfg["keep_checkpoints"])

    state = None
    if resume:
        if main:
            for d in (out, out / "checkpoints", out / "plots"):
                if d.is_dir():
                    vio.remove_stale_tmp(d)
        loaded = ckpts.latest(model, opt_state0, fit_key, quarantine=main)
        for path, reason in ckpts.skipped:
            print(f"warning: skipped checkpoint {path.name} ({reason}); kept it as {path.name}.corrupt", file=sys.stderr)
        if loaded is None:
            if (out / vio.MODEL_FILE).is_file():  # never retrain over a final model
                raise FileNotFoundError(
                    f"--resume {out}: the run has a final {vio.MODEL_FILE} but no checkpoint to continue "
                    "from (were they deleted?). Start a new run with another --out, or pass --out "
                    f"{out} --overwrite to replace it."
                )
            print(f"note: {out} has no checkpoint; restarting it from epoch 0 with its saved configuration.", file=sys.stderr)
        else:
            state, fit_key, _ = loaded
            if ckpts.skipped:
                print(f"resuming from {ckpts.path(state.epoch).name} (epoch {state.epoch})", file=sys.stderr)
            if state.epoch >= cfg["epochs"] and (out / vio.MODEL_FILE).is_file():
                raise ValueError(
                    f"{out} already finished {state.epoch} epochs. Pass a larger --epochs to train on."
                )
        if main:
            write_metrics(out, state.history if state is not None else {})
            if saved_fp is not None and saved_fp != data.fingerprint:
                conf = vio.read_json(out / "config.json")
                conf.setdefault("data_changes", []).append({"epoch": 0 if state is None else state.epoch, "before": saved_fp})
                conf["data_fingerprint"] = data.fingerprint
                vio.write_json(out / "config.json", conf)
    elif main:
        held.append(prepare_out(out, overwrite))
        vio.write_json(
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
        vio.write_json(out / "preprocessing.json", data.pre.to_dict())
        vio.atomic_write(out / "metrics.jsonl", lambda f: None)
    if isinstance(model, VampVAE) and state is None and not _is_source(data.x):
        # A VampPrior moves with the encoder, so nothing anchors the latents early on:
        # start the decoder at the data marginal, or the encoder can collapse.
        try:
            model = init_output_bias(model, data.x)
        except TypeError:
            pass  # a decoder this does not apply to (e.g. a conv net)
    barrier("vaekit-run-prepared")
    if main:
        _set_status(out, "running")

    start = state.epoch if state is not None else 0
    last = {"state": state, "skipped": 0}
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg["epochs"], initial=start, desc=f"train {out.name}", unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def callback(st: TrainState):
        last["state"] = st
        e = st.epoch
        row = {"epoch": e, **{k: v[-1] for k, v in st.history.items() if v}}
        if main:
            _append_metrics(out, row)
        skipped = row.get("skipped_steps") or 0
        if skipped:
            if not last["skipped"]:
                _say(bar, f"warning: epoch {e}: {skipped} of {steps} steps had a non-finite loss or gradient and were skipped (see skipped_steps in metrics.jsonl)")
            last["skipped"] += skipped
        if bar is not None:
            bar.update(1)
            post = {k: f"{v:.3f}" for k, v in row.items() if k.endswith("loss") and isinstance(v, float)}
            if last["skipped"]:
                post["skipped"] = str(last["skipped"])
            bar.set_postfix(post)
        return bool(cfg["patience"]) and _should_stop(st.history, cfg["patience"])

    def newest() -> str:
        ck = checkpoints(out)
        return f"{ck[-1].relative_to(out)}" if ck else "none"

    try:
        fit_kwargs = dict(
            key=fit_key,
            epochs=cfg["epochs"],
            batch_size=bs,
            optimizer=optimizer,
            x_val=data.xv,
            beta=beta_schedule(cfg, steps),
            n_samples=cfg["n_samples"],
            callback=callback,
            batch_transform=data.pre.batch_transform(),
            resume=state,
            devices=cfg["devices"],
            checkpoint_dir=ckpts,
            checkpoint_every=cfg["checkpoint_every"],
        )
        fit_kwargs.update(fit_options(cfg))  # e.g. objective="iwae" for an IWAE preset
        with warnings.catch_warnings():
            # reported per epoch above and in metrics.jsonl instead of as Python warnings
            warnings.filterwarnings("ignore", message=r"(epoch \d+: \d+ of|Training produced non-finite)", category=RuntimeWarning)
            model, history = fit(model, data.x, **fit_kwargs)
    except KeyboardInterrupt as e:
        with _signals_held():
            if bar is not None:
                bar.close()
            st = last["state"]
            signum = getattr(e, "signum", signal.SIGINT)
            name = signal.Signals(signum).name if signum != signal.SIGINT else "Ctrl-C"
            if main:
                _try_status(out, "interrupted", epoch=0 if st is None else st.epoch, signal=signal.Signals(signum).name)
            if st is None:
                msg = (
                    f"interrupted ({name}) before the first epoch finished; nothing to continue. "
                    f"Start again with: vaekit train --resume {out}"
                )
            else:
                msg = (
                    f"interrupted ({name}) after epoch {st.epoch}; checkpoint saved ({newest()}). "
                    f"Continue with: vaekit train --resume {out}"
                )
        raise RunInterrupted(msg, signum) from None
    except TrainingDiverged as e:
        if bar is not None:
            bar.close()
        good = e.state.epoch if e.state is not None else 0
        if main:
            try:
                _append_metrics(out, {"epoch": e.epoch, "skipped_steps": e.skipped, "steps": e.steps, "diverged": True})
            except OSError:
                pass
            _try_status(out, "diverged", epoch=e.epoch, last_good_epoch=good)
        keep = f"its last good checkpoint is {newest()} (epoch {good})" if good else "no epoch finished before it"
        raise TrainingDiverged(
            f"run {out} diverged in epoch {e.epoch}: {e.reason} ({e.skipped} of {e.steps} steps had a non-finite loss or gradient). "
            f"The run is marked diverged; {keep}. Start a new run with a lower --lr (now {cfg['lr']:g}) "
            f"or rescaled data (--overwrite replaces this one).",
            epoch=e.epoch, state=e.state, skipped=e.skipped, steps=e.steps, reason=e.reason,
        ) from None
    except OSError as e:
        if main:
            _try_status(out, "failed", error=f"{type(e).__name__}: {e}")
        st = last["state"]
        ck = newest()
        e.add_note(
            f"The run stopped after epoch {0 if st is None else st.epoch}; "
            + (f"its last good checkpoint is {ck}. Fix the problem, then continue with: vaekit train --resume {out}" if ck != "none" else f"it has no checkpoint. Fix the problem, then start again with: vaekit train --resume {out}")
        )
        raise
    finally:
        if bar is not None:
            bar.close()
    final = last["state"]
    epochs_done = final.epoch if final is not None else start
    if main:
        digest = vio.write_leaves(out / vio.MODEL_FILE, model)
        summary = {k: v[-1] for k, v in history.items() if v}
        _set_status(
            out, "finished", epochs=epochs_done, final=summary, stopped_early=epochs_done < cfg["epochs"],
            model_sha256=digest, model_epochs=epochs_done,
            skipped_steps=sum(v for v in history.get("skipped_steps", []) if v),
        )
    barrier("vaekit-run-finished")
    return out


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


def load_run(run: str | os.PathLike):
    """``(model, preprocessor, config)`` of a finished run."""
    run = Path(run)
    model, pre = vio.load(run)
    return model, pre, vio.read_json(run / "config.json")
