"""Readers for data files: IDX (``.gz``), ``.npz``, ``.mat``, CSV and Parquet.

Every reader raises ``ValueError`` naming the file and what is wrong with it (truncated,
corrupt, non-numeric) instead of a low-level parsing error. No reader unpickles.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzip-compressed) as a numpy array of its stored shape."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(
            f"{path} is not a readable gzip'ed IDX file ({e}); it is truncated or corrupt. "
            "Delete it so it is downloaded again."
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {raw[:4]!r}).")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated: the IDX header is incomplete.")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    body = raw[4 + 4 * ndim :]
    if len(body) != expected:
        raise ValueError(
            f"{path} is truncated or corrupt: the header announces shape {shape} "
            f"({expected} bytes) but the file holds {len(body)} bytes of data. "
            "Delete it so it is downloaded again."
        )
    return np.frombuffer(body, dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` file (no pickles)."""
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as d:
            return {k: d[k] for k in d.files}
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, KeyError) as e:
        raise ValueError(f"{path} is not a readable .npz file ({e}); it is truncated or corrupt.") from None
    except ValueError as e:
        raise ValueError(f"{path} could not be read as .npz without pickles: {e}") from None


def read_mat(path: str | Path) -> dict[str, np.ndarray]:
    """Numeric variables of a MATLAB ``.mat`` file (scipy)."""
    try:
        import scipy.io
    except ImportError:
        raise ImportError("Reading .mat files needs scipy: pip install scipy") from None
    try:
        m = scipy.io.loadmat(path)
    except Exception as e:  # scipy raises assorted errors on bad files
        raise ValueError(f"{path} is not a readable .mat file ({e}); it is truncated or corrupt.") from None
    return {k: v for k, v in m.items() if not k.startswith("__")}


def xy_from_arrays(arrays: dict[str, np.ndarray], path) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` (and ``y`` when present) from an ODDS/ADBench file's arrays."""
    keys = {k.lower(): k for k in arrays}
    if "x" not in keys:
        raise ValueError(f"{path} has no array named 'X' (found {sorted(arrays)}); ODDS/ADBench files hold X and y.")
    x = np.asarray(arrays[keys["x"]])
    if x.dtype.kind not in "biuf":
        raise ValueError(f"{path}: X has non-numeric dtype {x.dtype}.")
    y = np.asarray(arrays[keys["y"]]).reshape(-1) if "y" in keys else None
    if y is not None and len(y) != len(x):
        raise ValueError(f"{path}: X has {len(x)} rows but y has {len(y)}; the file is corrupt.")
    return _float32(x, path), y


def _float32(x: np.ndarray, path, columns: list[str] | None = None) -> np.ndarray:
    """``x`` as float32, refusing finite values that overflow it (they would become inf)."""
    if x.dtype.kind == "f" and x.dtype.itemsize > 4:
        big = np.abs(x) > np.finfo(np.float32).max
        if big.any():
            at = np.argwhere(big)[0]
            where = f"data row {at[0] + 1}" + (
                f", column {columns[at[1]]!r}" if columns is not None and x.ndim == 2 else ""
            )
            raise ValueError(
                f"{path}: {int(big.sum())} value(s) too large for float32, the precision vaekit "
                f"trains in (|x| > 3.4e38), e.g. {float(x[tuple(at)])!r} in {where}. Rescale or remove them."
            )
    return x.astype(np.float32)


def read_table(path: str | Path, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """CSV or Parquet as ``(x [n, d] float32, y or None, feature names)``.

    Every column other than ``label_column`` must be numeric; empty cells are errors.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        columns = _parquet_columns(path)
    else:
        columns = _csv_columns(path)
    if label_column is not None and label_column not in columns:
        raise ValueError(
            f"{path}: label column {label_column!r} not found. Columns: {', '.join(columns)}."
        )
    y = None
    if label_column is not None:
        y = _numeric_or_labels(columns.pop(label_column))
    if not columns:
        raise ValueError(f"{path} has no feature columns.")
    feats = []
    for name, col in columns.items():
        try:
            feats.append(np.asarray(col, dtype=np.float64))
        except (ValueError, TypeError):
            bad = next(v for v in col if not _is_number(v))
            raise ValueError(
                f"{path}: column {name!r} is not numeric (e.g. value {bad!r}). Drop or encode it, "
                f"or pass it as the label with --label-column {name}."
            ) from None
    x = np.stack(feats, axis=1)
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{path}: column {list(columns)[c]!r} has a missing or non-finite value in data row {r + 1}. "
            "Impute or drop such rows first."
        )
    return _float32(x, path, list(columns)), y, list(columns)


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (ValueError, TypeError):
        return False


def _numeric_or_labels(col) -> np.ndarray:
    try:
        return np.asarray(col, dtype=np.float64)
    except (ValueError, TypeError):
        return np.asarray([str(v) for v in col])


def _csv_columns(path: Path) -> dict[str, list]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a UTF-8 text CSV file (binary or corrupt).") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise ValueError(f"{path} has no data rows (a header line and at least one row are needed).")
    header, data = rows[0], rows[1:]
    for i, r in enumerate(data):
        if len(r) != len(header):
            raise ValueError(
                f"{path}: line {i + 2} has {len(r)} fields but the header has {len(header)}; "
                "the file is truncated or malformed."
            )
    return {h.strip(): [r[j].strip() for r in data] for j, h in enumerate(header)}


def _parquet_columns(path: Path) -> dict[str, list]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Reading Parquet needs pyarrow: pip install 'vaekit[data]'") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises ArrowInvalid and friends
        raise ValueError(f"{path} is not a readable Parquet file ({e}).") from None
    return {name: table.column(name).to_pylist() for name in table.column_names}
