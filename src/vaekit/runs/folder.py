"""Run folders: the marker ``vaekit.json`` with the run's status, what ``--out`` and
``--overwrite`` may touch, the checkpoints, and loading a finished run.

A run folder holds:

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
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from ..data import Preprocessor
from ..training import checkpoints as ckpt
from . import serialization

#: Version of the run-folder layout, recorded in the marker ``vaekit.json``.
RUN_FORMAT = 1
#: Files vaekit writes at the top of a run folder; ``--overwrite`` deletes only these
#: (plus ``checkpoints/epoch-*.ckpt*``, ``plots/*.png`` and stale temporary files).
RUN_FILES = (ckpt.META_FILE, "config.json", "metrics.jsonl", ckpt.MODEL_FILE, "preprocessing.json", "eval.json", "report.html")


def run_meta(path: Path) -> dict | None:
    """The marker ``vaekit.json`` of a run folder, or None when ``path`` is not provably a
    vaekit run (no marker, unreadable, or of another kind)."""
    try:
        meta = ckpt.read_json(Path(path) / ckpt.META_FILE)
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("kind") == "run" else None


def is_run(path: Path) -> bool:
    """Whether ``path`` is provably a vaekit run folder."""
    return run_meta(path) is not None


def _contents(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if p.name != ckpt.LOCK_FILE] if out.is_dir() else []


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse an ``--out`` that cannot take a new run (no side effects)."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file. Choose a folder path.")
    if not _contents(out):
        return
    meta = run_meta(out)
    if meta is None:
        raise FileExistsError(
            f"--out {out} is a non-empty folder that is not a vaekit run (it has no {ckpt.META_FILE} "
            "marking a run); refusing to write into it or delete anything in it, even with "
            "--overwrite. Choose a new or empty folder."
        )
    if overwrite:
        return
    status = meta.get("status", "unknown")
    if checkpoints(out) or (out / ckpt.MODEL_FILE).is_file():
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


def prepare_out(out: Path, overwrite: bool) -> ckpt.FolderLock:
    """Create (or, with ``overwrite``, clear) the run folder ``out`` and lock it.

    Only a provable vaekit run is replaced, and only the files vaekit writes are
    deleted; anything else in the folder stays. Returns the held lock.
    """
    check_out(out, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    lock = ckpt.FolderLock(out).acquire()
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
        set_status(out, "starting")  # the marker first: the folder is now provably a run
    except BaseException:
        lock.release()
        raise
    return lock


def remove_run_files(out: Path) -> list[Path]:
    """Delete what vaekit wrote into the run folder ``out``; return the other files (kept)."""
    for sub, pattern in (("checkpoints", "epoch-*.ckpt*"), ("plots", "*.png"), ("checkpoints", ".*.tmp"), ("plots", ".*.tmp")):
        for p in (out / sub).glob(pattern):
            p.unlink()
    ckpt.remove_stale_tmp(out)
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)
    for sub in ("checkpoints", "plots"):
        if (out / sub).is_dir() and not any((out / sub).iterdir()):
            (out / sub).rmdir()
    return sorted(p for p in out.rglob("*") if p.is_file() and p.name != ckpt.LOCK_FILE)


def checkpoints(run: Path) -> list[Path]:
    """The checkpoints of the run folder ``run``, oldest first."""
    return sorted((run / "checkpoints").glob("epoch-*.ckpt"))


_KEEP_META = ("model_sha256", "model_epochs")


def set_status(run: Path, status: str, **extra) -> None:
    """Rewrite the marker ``vaekit.json`` (keeps the checksum of an existing ``model.eqx``)."""
    old = run_meta(run) or {}
    kept = {k: old[k] for k in _KEEP_META if k in old and (run / ckpt.MODEL_FILE).is_file()}
    ckpt.write_json(run / ckpt.META_FILE, {"kind": "run", "format": RUN_FORMAT, "status": status, **kept, **extra})


def try_status(run: Path, status: str, **extra) -> None:
    """:func:`set_status`, ignoring write errors (used while reporting another error)."""
    try:
        set_status(run, status, **extra)
    except OSError:
        pass


def load_run(run: str | os.PathLike) -> tuple[Any, Preprocessor | None, dict]:
    """``(model, preprocessor, config)`` of a finished run."""
    run = Path(run)
    model, pre = serialization.load(run)
    return model, pre, ckpt.read_json(run / "config.json")


def _load_run_folder(path: Path, meta: dict, like: Any) -> serialization.Loaded:
    ckpt.check_not_training(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} has no config.json: the run stopped before it started training. Start it "
            f"again with vaekit train --out {path} --overwrite."
        )
    config = ckpt.read_json(path / "config.json")
    if not (path / ckpt.MODEL_FILE).is_file():
        raise FileNotFoundError(
            f"{path} has no final {ckpt.MODEL_FILE} (the run did not finish). Resume it with "
            f"vaekit train --resume {path}, or load a checkpoint with "
            "vaekit.training.ckpt.load_checkpoint."
        )
    pre = path / "preprocessing.json"
    return serialization.read_model(
        path, config.get("model_spec"), like, meta.get("model_sha256"), ckpt.read_json(pre) if pre.is_file() else None
    )


serialization.register("run", _load_run_folder)
