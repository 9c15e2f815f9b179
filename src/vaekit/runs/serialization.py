"""Model folders: ``vk.save`` and ``vk.load``, dispatched by the folder's kind.

A model folder (``vk.save(path, model)``) holds ``vaekit.json`` (kind, the model's build
description, preprocessing, configuration, the SHA-256 of the arrays) and ``model.eqx``
(the array leaves, ``equinox.tree_serialise_leaves``; no pickle). Loading rebuilds the
model's structure from its description without initialising or compiling anything
(:func:`vaekit.training.checkpoints.model_skeleton`), or takes it from ``like=`` for
models built by hand, and reads the leaves into it.

Every folder says what it holds in ``vaekit.json``'s ``"kind"``; each layer registers the
kinds it writes with :func:`register` (``"model"`` here, ``"run"`` by the run folders,
``"detector"`` by :mod:`vaekit.anomaly`), so this module imports none of them. Saving
dispatches the same way, by the object's type: :func:`register_saver` names the function
that writes the folder of a type that is not a model (e.g. ``VAEDetector``); objects of
other types that define ``__vaekit_save__(path)`` (:class:`SavesItself`, the public
protocol for classes outside vaekit) write their own folder; everything else is saved as
a model.
:func:`load` returns ``(model, preprocessor)`` for the kinds that hold a model and
refuses the others with the line that says how to load them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, Protocol, runtime_checkable

from .._version import __version__
from ..data import Preprocessor
from ..training.checkpoints import (
    META_FILE,
    MODEL_FILE,
    model_skeleton,
    read_json,
    read_leaves,
    write_json,
    write_leaves,
)


class Loaded(NamedTuple):
    """What :func:`load` returns: the model and its preprocessing (``None`` when none was saved)."""

    model: Any
    preprocessor: Preprocessor | None


@runtime_checkable
class SavesItself(Protocol):
    """An object that :func:`save` asks to write its own folder (e.g. ``VAEDetector``)."""

    def __vaekit_save__(self, path: Path) -> None: ...


#: ``load(path, meta, like) -> object`` for a folder whose ``vaekit.json`` is ``meta``.
Loader = Callable[[Path, dict, Any], Any]


class _Kind(NamedTuple):
    load: Loader
    model: bool  # whether vk.load returns it (it holds a model and its preprocessing)
    load_with: str  # how to load the other kinds, for the error message


_KINDS: dict[str, _Kind] = {}

#: ``save(obj, path)`` for objects of a registered type (looked up along the type's MRO)
_SAVERS: dict[type, Callable[[Any, Path], None]] = {}


def register(kind: str, load: Loader, *, model: bool = True, load_with: str = "vk.load(path)") -> None:
    """Make folders of ``kind`` loadable: ``load(path, meta, like)`` reads one.

    :param model: ``load`` returns a :class:`Loaded`, which :func:`load` hands on; for
        other kinds :func:`load` refuses the folder and names ``load_with`` instead.
    """
    _KINDS[kind] = _Kind(load, model, load_with)


def register_saver(cls: type, save: Callable[[Any, Path], None]) -> None:
    """Make :func:`save` write objects of type ``cls`` (and its subclasses) with
    ``save(obj, path)`` instead of saving them as a model."""
    _SAVERS[cls] = save


def _saver(obj: Any) -> Callable[[Any, Path], None] | None:
    for cls in type(obj).__mro__:
        if cls in _SAVERS:
            return _SAVERS[cls]
    if isinstance(obj, SavesItself):  # classes outside vaekit that save themselves
        return type(obj).__vaekit_save__
    return None


def read_meta(path: str | os.PathLike) -> dict:
    """The ``vaekit.json`` of the folder ``path``, with one clear error for every way it can
    be missing or unreadable."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Pass a folder written by vk.save or vaekit train.")
    meta_file = path / META_FILE
    if not meta_file.is_file():
        raise ValueError(
            f"{path} is not a vaekit folder (no {META_FILE}). Pass a folder written by vk.save or vaekit train."
        )
    meta = read_json(meta_file)
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file} is not a vaekit description (not a JSON object); the file is corrupt.")
    return meta


def _kind(path: Path, meta: dict) -> _Kind:
    kind = meta.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"{path / META_FILE}: unknown kind {kind!r}.")
    return _KINDS[kind]


def load(path: str | os.PathLike, *, like: Any = None) -> Loaded:
    """Load what :func:`save` or a training run wrote: ``(model, preprocessor)``.

    ``preprocessor`` is None when none was saved. The model file's checksum is verified
    (folders saved before vaekit recorded one load unchecked). A run that a process is
    still training is refused: its model file is not final. A folder of another kind (an
    anomaly detector) is refused with the call that loads it.

    :param like: a model of the same structure, for models not built from a preset.
    """
    path = Path(path)
    meta = read_meta(path)
    kind = _kind(path, meta)
    if not kind.model:
        raise ValueError(f"{path} holds a saved {meta['kind']}, not a model; load it with {kind.load_with}.")
    return kind.load(path, meta, like)


def load_any(path: str | os.PathLike) -> tuple[str, Any]:
    """``(kind, object)`` for a folder of any registered kind (``Loaded`` for models)."""
    path = Path(path)
    meta = read_meta(path)
    return meta["kind"], _kind(path, meta).load(path, meta, None)


def save(
    path: str | os.PathLike,
    obj: Any,
    *,
    preprocessor: Preprocessor | None = None,
    config: dict | None = None,
    spec: dict | None = None,
    overwrite: bool = False,
) -> Path:
    """Save a model (or an object of a type registered with :func:`register_saver`, or one
    that saves itself, :class:`SavesItself`) into the folder ``path``.

    ``vaekit.json`` records the SHA-256 of ``model.eqx``; :func:`load` checks it.

    :param preprocessor: a :class:`vaekit.Preprocessor` stored with it.
    :param config: JSON-serialisable configuration kept in ``vaekit.json``.
    :param spec: the model's build description
        (:func:`vaekit.training.checkpoints.model_spec`); taken from ``config["model"]``
        when absent. Without one, loading needs ``like=``.
    :param overwrite: replace an existing saved model (otherwise refused).
    """
    path = Path(path)
    saver = _saver(obj)
    if saver is not None:
        saver(obj, path)
        return path
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} is a file; vk.save writes a folder. Choose another path.")
    if (path / META_FILE).exists() and not overwrite:
        raise FileExistsError(f"{path} already holds a saved model. Pass overwrite=True or choose another path.")
    if spec is None and config is not None and isinstance(config.get("model"), dict) and "preset" in config["model"]:
        spec = config["model"]
    path.mkdir(parents=True, exist_ok=True)
    digest = write_leaves(path / MODEL_FILE, obj)
    meta = {
        "kind": "model",
        "vaekit_version": __version__,
        "model": spec,
        "preprocessing": preprocessor.to_dict() if preprocessor is not None else None,
        "config": config,
        "model_sha256": digest,
    }
    write_json(path / META_FILE, meta)
    return path


def read_model(path: Path, spec: dict | None, like: Any, sha256: str | None, preprocessing: dict | None) -> Loaded:
    """The model of ``path/model.eqx`` (structure from ``like`` or from ``spec``) and its
    preprocessing: what the ``"model"`` and ``"run"`` loaders share."""
    if like is None:
        if not spec:
            raise ValueError(
                f"{path} has no model description (the model was not built from a preset). "
                "Pass a model of the same structure: vk.load(path, like=model)."
            )
        like = model_skeleton(spec)
    model = read_leaves(path / MODEL_FILE, like, sha256, str(path / META_FILE))
    return Loaded(model, Preprocessor.from_dict(preprocessing) if preprocessing else None)


def _load_model_folder(path: Path, meta: dict, like: Any) -> Loaded:
    return read_model(path, meta.get("model"), like, meta.get("model_sha256"), meta.get("preprocessing"))


register("model", _load_model_folder)
