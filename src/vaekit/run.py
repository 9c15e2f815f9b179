"""Training runs: resolved configuration, run folders, checkpoints, resume.

``train(config, out=..., resume=..., overwrite=...)`` is what ``vaekit train`` runs. A run
folder holds:

* ``vaekit.json``: ``{"kind": "run", "status": ...}``;
* ``config.json``: the fully resolved configuration plus the environment (vaekit and
  JAX versions, git commit, devices, seed, command line);
* ``metrics.jsonl``: one JSON line per epoch;
* ``checkpoints/epoch-NNNN.ckpt``: model, optimizer state, step, PRNG key, history
  (every ``checkpoint_every`` epochs, at the end and on Ctrl-C);
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
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np
import optax

from . import datasets, io as vio, presets
from ._fixed import trainable
from .defaults import LIKELIHOODS, choose, summarize
from .distributed import barrier, is_main_process
from .initialization import init_output_bias
from .preprocessing import Preprocessor
from .training import TrainState, default_optimizer, fit
from .vamp import VampVAE

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
        from .distributed import resolve_devices

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
    from . import __version__

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

    def __init__(self, cfg: dict[str, Any], *, new_defaults: bool = True):
        ds = datasets.load(cfg["data"], "train", limit=cfg["limit"], **_data_kwargs(cfg))
        self.meta, self.name = ds.meta, ds.name
        x, y = ds.x, ds.y
        n = datasets.n_examples(x)
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
        sample = x.read(np.arange(min(len(x), self.FIT_SAMPLE))) if _is_source(x) else x
        # Data-aware defaults (vaekit.defaults): "auto" likelihood/preprocessing from the data.
        from ._checks import as_data

        self.summary = summarize(as_data(sample, "the training data"), self.meta, n)
        variance = new_defaults and "variance" not in cfg["model_options"] and _takes_shared_variance(cfg["model"])
        self.choice = choose(self.summary, cfg["likelihood"], cfg["preprocessing"], variance=variance)
        self.pre = Preprocessor.fit(self.choice.preprocessing, sample, seed=cfg["seed"], **self.choice.preprocessing_options)
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


def is_run(path: Path) -> bool:
    return (path / vio.META_FILE).is_file() or (path / "config.json").is_file()


def prepare_out(out: Path, overwrite: bool) -> None:
    """Refuse to write into an existing run unless ``overwrite`` (never into other data)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file. Choose a folder path.")
    if out.is_dir() and any(out.iterdir()):
        if not is_run(out):
            raise FileExistsError(
                f"--out {out} is a non-empty folder that is not a vaekit run; refusing to write into it. "
                "Choose a new or empty folder."
            )
        if not overwrite:
            raise FileExistsError(
                f"--out {out} already holds a run. Pass --resume {out} to continue it, --overwrite "
                "to replace it, or choose another --out."
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def checkpoints(run: Path) -> list[Path]:
    return sorted((run / "checkpoints").glob("epoch-*.ckpt"))


def write_metrics(run: Path, history: dict[str, list[float]], start: int = 0) -> None:
    """Rewrite ``metrics.jsonl`` from ``history`` (atomically)."""
    lines = []
    for e in range(len(history.get("train_loss", []))):
        row = {"epoch": e + 1}
        for k, v in history.items():
            if e < len(v):
                row[k] = v[e]
        lines.append(json.dumps(row))
    vio.atomic_write(run / "metrics.jsonl", lambda f: f.write(("\n".join(lines) + "\n" if lines else "").encode()))


def _append_metrics(run: Path, row: dict) -> None:
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _set_status(run: Path, status: str, **extra) -> None:
    vio.write_json(run / vio.META_FILE, {"kind": "run", "status": status, **extra})


def _incompatible(old: dict, new: dict) -> list[str]:
    return sorted(k for k in DEFAULTS if k not in RESUMABLE and old.get(k) != new.get(k))


# ---- training -----------------------------------------------------------------------


def train(
    cfg: dict[str, Any],
    out: str | os.PathLike,
    *,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    explicit: dict[str, Any] | None = None,
) -> Path:
    """Train as configured into the run folder ``out``; return its path.

    :param resume: continue the run in ``out`` from its newest checkpoint. ``cfg`` is
        then taken from ``out/config.json``, updated with ``explicit`` (the keys the
        user set), which may only change :data:`RESUMABLE` keys.
    """
    out = Path(out)
    if resume:
        if not (out / "config.json").is_file():
            raise FileNotFoundError(f"--resume {out}: not a run folder (no config.json). Check the path.")
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
    elif is_main_process():
        prepare_out(out, overwrite)
    barrier("vaekit-run-prepared")
    data = RunData(cfg, new_defaults=not resume)
    cfg = resolve_from_data(cfg, data, strict=not resume)
    if is_main_process():  # the data-aware defaults, always said out loud (vaekit.defaults)
        notice = data.choice.notice
        if resume:
            notice = (saved.get("defaults_chosen") or {}).get("notice") or notice
        _say(notice)
    spec = model_spec(cfg, data.n_features)
    root = jax.random.key(cfg["seed"])
    model_key, fit_key = jax.random.split(root)
    try:
        model = vio.build_model(spec, model_key)
    except TypeError as e:
        raise ValueError(f"Model {cfg['model']!r} does not accept these options: {e}") from None
    if isinstance(model, VampVAE) and not resume and not _is_source(data.x):
        # A VampPrior moves with the encoder, so nothing anchors the latents early on:
        # start the decoder at the data marginal, or the encoder can collapse.
        try:
            model = init_output_bias(model, data.x)
        except TypeError:
            pass  # a decoder this does not apply to (e.g. a conv net)
    bs = cfg["batch_size"]  # checked against the training rows in resolve_from_data
    steps = len(data.x) // bs
    optimizer = make_optimizer(cfg, steps)
    opt_state0 = optimizer.init(eqx.filter(model, trainable(model)))

    state = None
    if resume:
        ckpts = checkpoints(out)
        if not ckpts:
            raise FileNotFoundError(f"--resume {out}: the run has no checkpoint to continue from.")
        state, fit_key, _ = vio.load_checkpoint(ckpts[-1], model, opt_state0, fit_key)
        if state.epoch >= cfg["epochs"] and (out / vio.MODEL_FILE).is_file():
            raise ValueError(
                f"{out} already finished {state.epoch} epochs. Pass a larger --epochs to train on."
            )
        write_metrics(out, state.history)
    elif is_main_process():
        (out / "checkpoints").mkdir(exist_ok=True)
        record = {"data_summary": data.summary.to_dict(), "defaults_chosen": data.choice.to_dict()}
        vio.write_json(out / "config.json", {**cfg, **record, "model_spec": spec, "model": cfg["model"], "environment": environment(cfg["seed"])})
        vio.write_json(out / "preprocessing.json", data.pre.to_dict())
        vio.atomic_write(out / "metrics.jsonl", lambda f: None)
    _set_status(out, "running")

    start = state.epoch if state is not None else 0
    last = {"state": state}
    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg["epochs"], initial=start, desc=f"train {out.name}", unit="epoch", file=sys.stderr, dynamic_ncols=True)

    def save(st: TrainState) -> None:
        # Multi-process runs: process 0 writes, the others wait for it.
        if not is_main_process():
            barrier(f"vaekit-checkpoint-{st.epoch}")
            return
        vio.save_checkpoint(out / "checkpoints" / f"epoch-{st.epoch:04d}.ckpt", st, fit_key, {"config": cfg})
        if cfg["keep_checkpoints"]:  # the newest are kept; older ones only after a good write
            for old in checkpoints(out)[: -cfg["keep_checkpoints"]]:
                old.unlink()
        barrier(f"vaekit-checkpoint-{st.epoch}")

    def callback(st: TrainState):
        last["state"] = st
        e = st.epoch
        row = {"epoch": e, **{k: v[-1] for k, v in st.history.items() if v}}
        if is_main_process():
            _append_metrics(out, row)
        if cfg["checkpoint_every"] and e % cfg["checkpoint_every"] == 0:
            save(st)
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in row.items() if k.endswith("loss")})
        return bool(cfg["patience"]) and _should_stop(st.history, cfg["patience"])

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
        )
        fit_kwargs.update(fit_options(cfg))  # e.g. objective="iwae" for an IWAE preset
        model, history = fit(model, data.x, **fit_kwargs)
    except KeyboardInterrupt:
        st = last["state"]
        if bar is not None:
            bar.close()
        if st is not None:
            save(st)
        if is_main_process():
            _set_status(out, "interrupted", epoch=0 if st is None else st.epoch)
        if st is None:
            print("Interrupted before the first epoch finished; nothing to resume.", file=sys.stderr)
        else:
            print(
                f"Interrupted after epoch {st.epoch}; checkpoint saved. Continue with: vaekit train --resume {out}",
                file=sys.stderr,
            )
        raise
    finally:
        if bar is not None:
            bar.close()
    final = last["state"]
    if final is not None and not (checkpoints(out) and checkpoints(out)[-1].name == f"epoch-{final.epoch:04d}.ckpt"):
        save(final)
    epochs_done = final.epoch if final is not None else start
    if is_main_process():
        vio.atomic_write(out / vio.MODEL_FILE, lambda f: eqx.tree_serialise_leaves(f, model))
        summary = {k: v[-1] for k, v in history.items() if v}
        _set_status(out, "finished", epochs=epochs_done, final=summary, stopped_early=epochs_done < cfg["epochs"])
    barrier("vaekit-run-finished")
    return out


def _say(line: str) -> None:
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
