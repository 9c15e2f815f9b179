"""The files vaekit writes, and checkpoints: atomic writes, strict JSON, checksums, locks.

Every layer that writes a file uses these: training (checkpoints), run folders, model
folders (:mod:`vaekit.runs.serialization`), the anomaly detector and the command line.
Every file is written to a temporary file in the same folder, fsync'ed and moved into
place with ``os.replace``, so a crash mid-write leaves the previous file intact; new
files get the permissions the user's umask allows (as files written with ``open`` do).
Nothing is pickled.

Checkpoints are single files: a JSON header (epoch, history, the run's identity)
followed by the leaves of ``(model, optimizer state, step, PRNG key data)``
(``equinox.tree_serialise_leaves``).

Integrity: every checkpoint, ``model.eqx`` and detector file carries the SHA-256 of its
array bytes (in the checkpoint's JSON header, or in the folder's ``vaekit.json``), checked
on load, so a corrupted file is a clear error naming it instead of a silently wrong model.
Files written before checksums existed have none and load unchecked.

Model descriptions (:func:`model_spec`) are the JSON from which :func:`build_model` or,
without initialising anything, :func:`model_skeleton` rebuild a preset model's structure.

Folders are locked while a process trains in them (:class:`FolderLock`, an
``fcntl.flock`` the kernel releases when the process ends, even by ``kill -9``).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX (Windows): run folders are not locked
    fcntl = None

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from ..zoo import presets
from ._state import TrainState
from .distributed import barrier, is_main_process

MODEL_FILE = "model.eqx"
META_FILE = "vaekit.json"
_MAGIC = b"VAEKIT-CKPT-1\n"


def umask() -> int:
    """The process umask, read without changing it where the system allows (Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, fsync, then replace ``path``.

    The file gets mode ``0o666 & ~umask`` (like ``open(path, "w")``). On any failure
    (disk full, permission denied, Ctrl-C) the temporary file is removed and ``path``
    is unchanged.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, 0o666 & ~umask())  # mkstemp creates 0600
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.errno is None:
            raise
        # name the file being written, not the temporary one
        raise OSError(e.errno, e.strerror, str(path)) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def remove_stale_tmp(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files ``.NAME.XXXX.tmp`` that :func:`atomic_write` leaves
    when its process is killed mid-write; return them. Call only while holding the
    folder's lock (no other writer can be mid-write)."""
    removed = []
    for p in Path(folder).glob(".*.tmp"):
        if p.is_file():
            try:
                p.unlink()
                removed.append(p)
            except FileNotFoundError:
                pass
    return removed


def jsonable(obj: Any) -> Any:
    """``obj`` with non-finite floats as ``None`` and numpy values as Python ones, so
    that it encodes as strict JSON (no ``NaN``/``Infinity`` literals)."""
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy/JAX arrays and scalars
        return jsonable(obj.tolist())
    return obj


def dumps(obj: Any, **kw) -> str:
    """Strict JSON of ``obj`` (non-finite floats become ``null``)."""
    return json.dumps(jsonable(obj), allow_nan=False, default=_json_default, **kw)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Atomically write ``obj`` as indented, strict JSON (NaN/inf become ``null``)."""
    atomic_write(path, lambda f: f.write((dumps(obj, indent=2) + "\n").encode()))


def read_json(path: str | os.PathLike) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); the file is corrupt.") from None


def _json_default(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, tuple | set):
        return list(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


# ---- checksums ----------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leaves_bytes(tree) -> bytes:
    """The bytes ``equinox.tree_serialise_leaves`` writes for ``tree``."""
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, tree)
    return buf.getvalue()


def write_leaves(path: str | os.PathLike, tree) -> str:
    """Atomically write the leaves of ``tree`` to ``path``; return their SHA-256."""
    data = leaves_bytes(tree)
    atomic_write(path, lambda f: f.write(data))
    return sha256_bytes(data)


def read_leaves(path: str | os.PathLike, like, sha256: str | None, where: str = "vaekit.json"):
    """Leaves of ``path`` read into ``like``, after checking their SHA-256 against
    ``sha256`` (recorded in ``where``). ``sha256=None``: a file written before vaekit
    recorded checksums; it is read unchecked (backward compatible)."""
    path = Path(path)
    data = path.read_bytes()
    if sha256 is not None and sha256_bytes(data) != sha256:
        raise ValueError(
            f"{path} is corrupt: its SHA-256 checksum does not match the one recorded in {where} "
            f"(the file was changed or damaged after it was written). Restore it from a copy, "
            "or retrain."
        )
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(data), like)
    except (ValueError, RuntimeError, EOFError, OSError, TypeError) as e:
        raise ValueError(
            f"{path} does not match the model structure ({e}). The file is corrupt, or "
            "like= is not the model that was saved."
        ) from None


def data_fingerprint(x, max_bytes: int = 256 * 2**20, sample_rows: int = 4096) -> dict[str, Any]:
    """A fingerprint of a data set (an array or a :class:`vaekit.Source`):
    ``{"n": rows, "shape": example shape, "dtype", "rows_hashed": "all" or k, "sha256"}``.

    All rows are hashed when they take at most ``max_bytes``; otherwise ``sample_rows``
    evenly spaced rows (including the first and the last).
    """
    is_source = not hasattr(x, "dtype") and hasattr(x, "read") and hasattr(x, "example_shape")
    n = len(x) if is_source else int(np.shape(x)[0])
    shape = tuple(int(s) for s in (x.example_shape if is_source else np.shape(x)[1:]))
    row_bytes = 8 * max(1, int(np.prod(shape)))
    if n * row_bytes <= max_bytes:
        idx, hashed = np.arange(n), "all"
    else:
        idx = np.unique(np.linspace(0, n - 1, sample_rows).round().astype(np.int64))
        hashed = int(idx.size)
    rows = np.asarray(x.read(idx) if is_source else (x if hashed == "all" else np.asarray(x)[idx]))
    h = hashlib.sha256()
    h.update(str(rows.dtype).encode())
    h.update(np.ascontiguousarray(rows).tobytes())
    return {"n": n, "shape": list(shape), "dtype": str(rows.dtype), "rows_hashed": hashed, "sha256": h.hexdigest()}


# ---- locks --------------------------------------------------------------------------

LOCK_FILE = ".vaekit.lock"


class FolderInUseError(RuntimeError):
    """Another process holds the folder's lock (it is training there)."""


class FolderLock:
    """Exclusive lock of a folder for one writer: ``fcntl.flock`` on ``FOLDER/.vaekit.lock``.

    The kernel releases it when the process ends in any way (including ``kill -9``), so
    a crashed run never blocks its folder. The holder's PID is written into the file for
    the error message of the next writer. The lock file is never deleted (deleting it
    would let two processes lock two different files). Without ``fcntl`` (Windows) the
    lock does nothing.
    """

    def __init__(self, folder: str | os.PathLike, what: str = "run"):
        self.folder, self.what, self._fd = Path(folder), what, None

    def acquire(self) -> FolderLock:
        if fcntl is None or self._fd is not None:
            return self
        path = self.folder / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            raise FolderInUseError(_in_use(self.what, self.folder, _read_pid(path))) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing releases the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _in_use(what: str, folder: Path, pid: int | None) -> str:
    who = f"process {pid}" if pid else "another process"
    return (
        f"{what} {folder} is in use by {who}, which is training in it. Wait for it to finish "
        f"or stop it{f' (kill {pid})' if pid else ''}, or choose another folder."
    )


def lock_holder(folder: str | os.PathLike) -> int | None:
    """The PID of the process training in ``folder`` (0 when unknown), or None when the
    folder is not locked. Reads only; needs no write access."""
    path = Path(folder) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_pid(path) or 0
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def check_not_training(folder: str | os.PathLike) -> None:
    """Raise :class:`FolderInUseError` when a process is training in the run ``folder``."""
    pid = lock_holder(folder)
    if pid is not None:
        who = f"process {pid}" if pid else "another process"
        raise FolderInUseError(
            f"run {folder} is training ({who}); its model is not final yet. Wait for the run "
            "to finish (or stop it with Ctrl-C, which saves a checkpoint) and try again."
        )


# ---- model descriptions -------------------------------------------------------------


def model_spec(name: str, n_features: int | tuple[int, ...], **options) -> dict[str, Any]:
    """A JSON description from which :func:`build_model` rebuilds the model skeleton."""
    return {"preset": name, "n_features": n_features, "options": options}


def build_model(spec: dict[str, Any], key: PRNGKeyArray | None = None) -> Any:
    """The preset model of ``spec`` (fresh parameters drawn from ``key``)."""
    nf = spec["n_features"]
    nf = tuple(nf) if isinstance(nf, list) else nf
    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.get("options", {}).items()}
    return presets.build(spec["preset"], nf, key=jax.random.key(0) if key is None else key, **opts)


def model_skeleton(spec: dict[str, Any]) -> Any:
    """The structure of the preset model of ``spec`` without its values: its arrays are
    ``jax.ShapeDtypeStruct`` (nothing is initialised or compiled), ready to be filled
    from a file by :func:`read_leaves`."""
    return eqx.filter_eval_shape(build_model, spec)


# ---- checkpoints --------------------------------------------------------------------


def save_checkpoint(path, state, key, header: dict | None = None) -> None:
    """Atomically write a :class:`vaekit.training.TrainState` and the run's PRNG ``key``.

    The JSON header holds the epoch, the history, ``header`` and the SHA-256 of the
    array bytes that follow it.
    """
    leaves = leaves_bytes((state.model, state.opt_state, jnp.asarray(state.step), jax.random.key_data(key)))
    head = {
        "epoch": int(state.epoch),
        "history": state.history,
        **(header or {}),
        "size": len(leaves),
        "sha256": sha256_bytes(leaves),
    }
    blob = dumps(head).encode()

    def write(f):
        f.write(_MAGIC)
        f.write(struct.pack("<Q", len(blob)))
        f.write(blob)
        f.write(leaves)

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
    blob = f.read(min(n, 2**30))
    if len(blob) != n:
        raise ValueError(f"{path} is truncated.")
    try:
        head = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is corrupt: its header is not valid JSON ({e}).") from None
    if (
        not isinstance(head, dict)
        or not isinstance(head.get("epoch"), int)
        or not isinstance(head.get("history"), dict)
    ):
        raise ValueError(f"{path} is corrupt: its header has no epoch/history.")
    return head


def load_checkpoint(path, model_like, opt_state_like, key_like):
    """``(TrainState, key, header)`` from a checkpoint; the ``*_like`` give the structure.

    :raises ValueError: naming the file, when it is truncated, its checksum does not
        match, or it does not match the structure.
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = _header(f, path)
        rest = f.read()
    if isinstance(head.get("size"), int) and len(rest) < head["size"]:
        raise ValueError(f"{path} is truncated: it holds {len(rest)} of its {head['size']} bytes of arrays.")
    # Checkpoints written before vaekit recorded checksums have no "sha256": read unchecked.
    if "sha256" in head and sha256_bytes(rest) != head["sha256"]:
        raise ValueError(
            f"{path} is corrupt: the checksum of its arrays does not match its header "
            "(the file was damaged after it was written)."
        )
    like = (model_like, opt_state_like, jnp.zeros((), jnp.int32), jax.random.key_data(key_like))
    try:
        model, opt_state, step, key_data = eqx.tree_deserialise_leaves(io.BytesIO(rest), like)
    except Exception as e:  # equinox/numpy raise assorted errors on bad bytes
        raise ValueError(f"{path} is truncated or does not match the run's model/optimizer ({e}).") from None
    key = jax.random.wrap_key_data(key_data, impl=jax.random.key_impl(key_like))
    history = {k: [math.nan if v is None else v for v in vals] for k, vals in head["history"].items()}
    return TrainState(model, opt_state, step, int(head["epoch"]), history), key, head


class Checkpoints:
    """The checkpoints ``epoch-NNNN.ckpt`` of a training run in ``folder``.

    The one code path for checkpoint files, used by ``vaekit train`` and by
    ``vk.fit(checkpoint_dir=...)``: atomic writes with checksums, keeping the newest
    ``keep`` (0: all; older ones are deleted only after a good write), and loading the
    newest checkpoint that verifies (a corrupt one is renamed ``*.ckpt.corrupt`` and
    reported, and the next older one is used). In multi-process runs only process 0
    writes; the others wait for it.
    """

    PATTERN = "epoch-*.ckpt"

    def __init__(self, folder: str | os.PathLike, keep: int = 3, header: dict | None = None):
        self.folder, self.keep, self.header = Path(folder), int(keep), dict(header or {})
        self.skipped: list[tuple[Path, str]] = []  # (file, reason) passed over by latest()

    def paths(self) -> list[Path]:
        return sorted(self.folder.glob(self.PATTERN))

    def path(self, epoch: int) -> Path:
        return self.folder / f"epoch-{epoch:04d}.ckpt"

    def save(self, state, key) -> Path:
        path = self.path(state.epoch)
        if is_main_process():
            self.folder.mkdir(parents=True, exist_ok=True)
            save_checkpoint(path, state, key, self.header)
            if self.keep:
                for old in self.paths()[: -self.keep]:
                    old.unlink()
        barrier(f"vaekit-checkpoint-{state.epoch}")
        return path

    def latest(self, model_like, opt_state_like, key_like, *, quarantine: bool = True):
        """``(state, key, header)`` of the newest checkpoint that verifies, or None when
        there is none. Corrupt ones are recorded in :attr:`skipped` (and renamed
        ``*.corrupt`` when ``quarantine``); when all are corrupt, ``ValueError``."""
        self.skipped = []
        paths = self.paths()
        for path in reversed(paths):
            try:
                return load_checkpoint(path, model_like, opt_state_like, key_like)
            except (ValueError, OSError) as e:
                reason = str(e).replace(str(path), path.name, 1)
                self.skipped.append((path, reason))
                if quarantine:
                    try:
                        path.rename(path.with_name(path.name + ".corrupt"))
                    except OSError:
                        pass
        if paths:
            raise ValueError(
                f"No checkpoint in {self.folder} could be read: "
                + "; ".join(f"{p.name}: {r}" for p, r in self.skipped)
                + ". Start the run again."
            )
        return None
