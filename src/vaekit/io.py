"""Saving and loading models, run folders and checkpoints, without pickle.

A model folder (``vk.save(path, model)``) holds ``vaekit.json`` (kind, the model's build
description, preprocessing, configuration) and ``model.eqx`` (the array leaves,
``equinox.tree_serialise_leaves``). The model skeleton is rebuilt from the description
through :func:`vaekit.presets.build`, or from ``like=`` for models built by hand, and the
leaves are read into it.

Checkpoints are single files: a JSON header (epoch, history, description) followed by
the leaves of ``(model, optimizer state, step, PRNG key data)``. Every file is written to
a temporary file in the same folder, fsync'ed and moved into place with ``os.replace``,
so a crash mid-write leaves the previous file intact.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import equinox as eqx
import jax
import jax.numpy as jnp

MODEL_FILE = "model.eqx"
META_FILE = "vaekit.json"
_MAGIC = b"VAEKIT-CKPT-1\n"


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, fsync, then replace ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write(path, lambda f: f.write((json.dumps(obj, indent=2, default=_json_default) + "\n").encode()))


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the file is corrupt.") from None


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, tuple | set):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


# ---- model descriptions -------------------------------------------------------------


def model_spec(name: str, n_features: int | tuple[int, ...], **options) -> dict[str, Any]:
    """A JSON description from which :func:`build_model` rebuilds the model skeleton."""
    return {"preset": name, "n_features": n_features, "options": options}


def build_model(spec: dict[str, Any], key=None):
    """The preset model of ``spec`` (fresh parameters drawn from ``key``)."""
    from . import presets

    nf = spec["n_features"]
    nf = tuple(nf) if isinstance(nf, list) else nf
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("options", {}).items()}
    return presets.build(spec["preset"], nf, key=jax.random.key(0) if key is None else key, **opts)


def _template(meta: dict, like, where) -> Any:
    if like is not None:
        return like
    spec = meta.get("model")
    if not spec:
        raise ValueError(
            f"{where} has no model description (the model was not built from a preset). "
            "Pass a model of the same structure: vk.load(path, like=model)."
        )
    return build_model(spec)


def _read_leaves(path: Path, like):
    try:
        return eqx.tree_deserialise_leaves(path, like)
    except (ValueError, RuntimeError, EOFError, OSError, TypeError) as e:
        raise ValueError(
            f"{path} does not match the model structure ({e}). The file is corrupt, or "
            "like= is not the model that was saved."
        ) from None


# ---- save / load --------------------------------------------------------------------


def save(path, obj, *, preprocessor=None, config: dict | None = None, spec: dict | None = None, overwrite: bool = False) -> Path:
    """Save a model (or any object with ``__vaekit_save__``) into the folder ``path``.

    :param preprocessor: a :class:`vaekit.preprocessing.Preprocessor` stored with it.
    :param config: JSON-serialisable configuration kept in ``vaekit.json``.
    :param spec: the model's build description (:func:`model_spec`); taken from
        ``config["model"]`` when absent. Without one, loading needs ``like=``.
    :param overwrite: replace an existing saved model (otherwise refused).
    """
    path = Path(path)
    if hasattr(obj, "__vaekit_save__"):
        obj.__vaekit_save__(path)
        return path
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; vk.save writes a folder. Choose another path.")
    if (path / META_FILE).exists() and not overwrite:
        raise FileExistsError(f"{path} already holds a saved model. Pass overwrite=True or choose another path.")
    if spec is None and config is not None and isinstance(config.get("model"), dict) and "preset" in config["model"]:
        spec = config["model"]
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / MODEL_FILE, lambda f: eqx.tree_serialise_leaves(f, obj))
    from . import __version__

    meta = {
        "kind": "model",
        "vaekit_version": __version__,
        "model": spec,
        "preprocessing": preprocessor.to_dict() if preprocessor is not None else None,
        "config": config,
    }
    write_json(path / META_FILE, meta)
    return path


def load(path, *, like=None):
    """Load what :func:`save` or a training run wrote.

    * a run folder (``vaekit train``) or a model folder: ``(model, preprocessor)``
      (``preprocessor`` is None when none was saved);
    * a folder of another kind (e.g. an anomaly detector): that object.

    :param like: a model of the same structure, for models not built from a preset.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Pass a folder written by vk.save or vaekit train.")
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise ValueError(f"{path} is not a vaekit folder (no {META_FILE}). Pass a folder written by vk.save or vaekit train.")
    meta = read_json(meta_file)
    kind = meta.get("kind")
    if kind == "detector":
        from .detector import VAEDetector

        return VAEDetector.__vaekit_load__(path)
    if kind == "run":
        config = read_json(path / "config.json")
        meta = {"model": config.get("model_spec"), "preprocessing": _maybe_json(path / "preprocessing.json")}
        if not (path / MODEL_FILE).is_file():
            raise FileNotFoundError(
                f"{path} has no final {MODEL_FILE} (the run did not finish). Resume it with "
                f"vaekit train --resume {path}, or load a checkpoint with vaekit.io.load_checkpoint."
            )
    elif kind != "model":
        raise ValueError(f"{meta_file}: unknown kind {kind!r}.")
    model = _read_leaves(path / MODEL_FILE, _template(meta, like, path))
    from .preprocessing import Preprocessor

    pre = meta.get("preprocessing")
    return model, (Preprocessor.from_dict(pre) if pre else None)


def _maybe_json(path: Path):
    return read_json(path) if path.is_file() else None


# ---- checkpoints --------------------------------------------------------------------


def save_checkpoint(path, state, key, header: dict | None = None) -> None:
    """Atomically write a :class:`vaekit.training.TrainState` and the run's PRNG ``key``."""
    head = {"epoch": int(state.epoch), "history": state.history, **(header or {})}
    blob = json.dumps(head, default=_json_default).encode()
    leaves = (state.model, state.opt_state, jnp.asarray(state.step), jax.random.key_data(key))

    def write(f):
        f.write(_MAGIC)
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        eqx.tree_serialise_leaves(f, leaves)

    atomic_write(path, write)


def read_checkpoint_header(path) -> dict:
    with open(path, "rb") as f:
        return _header(f, path)


def _header(f, path) -> dict:
    if f.read(len(_MAGIC)) != _MAGIC:
        raise ValueError(f"{path} is not a vaekit checkpoint (bad magic).")
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError(f"{path} is truncated.")
    (n,) = struct.unpack("<Q", raw)
    blob = f.read(n)
    if len(blob) != n:
        raise ValueError(f"{path} is truncated.")
    return json.loads(blob)


def load_checkpoint(path, model_like, opt_state_like, key_like):
    """``(TrainState, key, header)`` from a checkpoint; the ``*_like`` give the structure."""
    from .training import TrainState

    path = Path(path)
    with open(path, "rb") as f:
        head = _header(f, path)
        rest = f.read()
    like = (model_like, opt_state_like, jnp.zeros((), jnp.int32), jax.random.key_data(key_like))
    try:
        model, opt_state, step, key_data = eqx.tree_deserialise_leaves(io.BytesIO(rest), like)
    except Exception as e:  # equinox/numpy raise assorted errors on bad bytes
        raise ValueError(f"{path} is truncated or does not match the run's model/optimizer ({e}).") from None
    key = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(key_like))
    return TrainState(model, opt_state, step, int(head["epoch"]), head["history"]), key, head
