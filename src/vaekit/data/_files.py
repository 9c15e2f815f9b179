"""Readers for data files: IDX (``.gz``), ``.npz``, ``.mat``, CSV (one reader, for the
datasets and the command line) and Parquet.

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
    """CSV or Parquet with a header line as ``(x [n, d] float32, y or None, feature names)``.

    Every column other than ``label_column`` must be numeric; empty cells are errors.
    """
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        columns = _parquet_columns(path)
    else:
        names, rows = read_csv(path, header=True)
        columns = {h: [r[j] for r in rows] for j, h in enumerate(names or [])}
    if label_column is not None and label_column not in columns:
        raise ValueError(f"{path}: label column {label_column!r} not found. Columns: {', '.join(columns)}.")
    y = None
    if label_column is not None:
        y = _numeric_or_labels(columns.pop(label_column))
    if not columns:
        raise ValueError(f"{path} has no feature columns.")
    hint = "Drop or encode it, or pass it as the label with --label-column {name}."
    x = np.stack([_numeric_column(path, name, col, hint.format(name=name)) for name, col in columns.items()], axis=1)
    if not np.isfinite(x).all():
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"{path}: column {list(columns)[c]!r} has a missing or non-finite value in data row {r + 1}. "
            "Impute or drop such rows first."
        )
    return _float32(x, path, list(columns)), y, list(columns)


def read_numeric(path: str | Path) -> tuple[list[str] | None, np.ndarray]:
    """A numeric table for the command line: a CSV file whose first line is a header
    when it is not all numbers, or a ``.npy`` array. ``(header or None, [rows, cols]
    float64)``; a non-numeric cell is an error naming its line and column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist.")
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise ValueError(f"{path} is not a readable .npy array ({e}).") from None
        return None, a.reshape(-1, 1) if a.ndim == 1 else a
    names, rows = read_csv(path, header="auto")
    width = len(rows[0])
    hint = "Encode or drop non-numeric columns first."
    cols = [
        _numeric_column(path, names[j] if names else j + 1, [r[j] for r in rows], hint, first_line=2 if names else 1)
        for j in range(width)
    ]
    return names, np.stack(cols, axis=1)


def read_csv(path: str | Path, *, header: bool | str = True) -> tuple[list[str] | None, list[list[str]]]:
    """The one CSV reader: ``(header names or None, data rows of stripped strings)``.

    :param header: ``True``: the first line names the columns; ``"auto"``: it does when
        it is not all numbers.
    :raises ValueError: naming the file for a binary file, no data rows, or a line whose
        number of fields differs from the first line's.
    """
    path = Path(path)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(
            f"{path} is not a text CSV file: byte {raw[e.start]:#04x} at position {e.start} is not "
            "a UTF-8 character (binary or corrupt). Pass a CSV file."
        ) from None
    try:
        lines = [(i + 1, r) for i, r in enumerate(csv.reader(io.StringIO(text))) if r and any(c.strip() for c in r)]
    except csv.Error as e:
        raise ValueError(f"{path} is not a readable CSV file ({e}).") from None
    if not lines:
        raise ValueError(f"{path} has no rows.")
    first = lines[0][1]
    names = None
    if header is True or (header == "auto" and not all(_is_number(c) for c in first)):
        names, lines = [c.strip() for c in first], lines[1:]
        if not lines:
            raise ValueError(f"{path} has no data rows (a header line and at least one row are needed).")
    width = len(first)
    for number, r in lines:
        if len(r) != width:
            raise ValueError(
                f"{path}: line {number} has {len(r)} fields but the first line has {width}; "
                "the file is truncated or malformed."
            )
    return names, [[c.strip() for c in r] for _, r in lines]


def _numeric_column(path: Path, name: str | int, col: list, hint: str, first_line: int = 2) -> np.ndarray:
    try:
        return np.asarray(col, dtype=np.float64)
    except (ValueError, TypeError):
        i, bad = next((i, v) for i, v in enumerate(col) if not _is_number(v))
        raise ValueError(
            f"{path}: column {name!r} is not numeric: line {first_line + i} holds {bad!r}, not a number. {hint}"
        ) from None


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
