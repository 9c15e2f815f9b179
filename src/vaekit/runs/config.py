"""The configuration of a training run: every key with its default, the checks of a TOML
file and of the command line, and what follows from a configuration (the model's
description, the dataset's options)."""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jax

from .._validate import non_negative_int, one_of, positive_int
from .._version import __version__
from ..data import Preprocessor
from ..data.defaults import LIKELIHOODS
from ..training import checkpoints as ckpt
from ..training.distributed import resolve_devices

#: Every configuration key with its default. ``None`` means "not set": ``hidden`` is then
#: the preset's own width (``presets.default_hidden``) and ``batch_size`` 100 or the
#: number of training rows if fewer. ``"auto"`` likelihood/preprocessing are chosen from
#: the data (:mod:`vaekit.data.defaults`). The resolved values are what ``config.json`` records.
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
    "loggers": [],  # experiment trackers: tensorboard, mlflow, wandb (vaekit.runs.tracking)
    "condition_on": None,  # "label": a conditional model (cvae, m2) trained with the data's labels
}
#: Keys that may change when a run is resumed (everything else must match).
RESUMABLE = ("epochs", "patience", "checkpoint_every", "keep_checkpoints", "devices", "loggers")
LOGGERS = ("tensorboard", "mlflow", "wandb")
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
        name = value.replace("_", "-") if isinstance(value, str) else value
        if name not in ("auto", *LIKELIHOODS):
            one_of(value, ("auto", *LIKELIHOODS), "likelihood", quote=False)
        return name
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
    if key in (
        "epochs",
        "batch_size",
        "latent_dim",
        "n_samples",
        "checkpoint_every",
        "limit",
        "patience",
        "seed",
        "kl_warmup_epochs",
        "keep_checkpoints",
        "lr_warmup_epochs",
    ):
        nonneg = key in ("patience", "seed", "kl_warmup_epochs", "epochs", "keep_checkpoints", "lr_warmup_epochs")
    if key == "loggers":
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"loggers must be a list of names like ['tensorboard'], got {value!r}.")
        for n in names:
            one_of(n, LOGGERS, "logger", quote=False)
        return list(dict.fromkeys(names))
        return non_negative_int(value, key) if nonneg else positive_int(value, key)
    if key == "devices":
        resolve_devices(value)  # validates: "all", a positive count, or a count as a string
        return value
    if key in ("lr", "beta", "val_fraction", "clip_norm", "weight_decay"):
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{key} must be a non-negative number, got {value!r}.")
        if key == "val_fraction" and value >= 1:
            raise ValueError(f"val_fraction must be below 1, got {value!r}.")
        return float(value)
    if key == "lr_schedule":
        one_of(value, LR_SCHEDULES, "lr_schedule", quote=False)
    if key == "condition_on":
        one_of(value, ("label",), "condition_on", quote=False)
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
    """``raw`` with every value checked and normalised; an unknown key is an error."""
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
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
            ).stdout.strip()
            or None
        )
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
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


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
    return ckpt.model_spec(cfg["model"], n_features, **opts)


def incompatible(old: dict, new: dict) -> list[str]:
    """The keys in which two configurations differ that a resumed run may not change."""
    return sorted(k for k in DEFAULTS if k not in RESUMABLE and old.get(k) != new.get(k))


def data_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """The options :func:`vaekit.datasets.load` takes for the configured data."""
    kw = dict(cfg.get("data_options") or {})
    if cfg.get("label_column") is not None:
        kw["label_column"] = cfg["label_column"]
    return kw
