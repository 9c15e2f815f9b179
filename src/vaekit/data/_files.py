"""Readers for data files: IDX (``.gz``), ``.npz``, ``.mat``, CSV (one reader, for the
datasets and the command line, whole or in chunks) and Parquet; the CSV writer.

Every reader raises ``ValueError`` naming the file and what is wrong with it (truncated,
corrupt, non-numeric) instead of a low-level parsing error. No reader unpickles.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from .._validate import positive_int

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
    """A numeric table for the command line, read whole: ``(header or None, [rows, cols]
    float64)`` of a CSV file (its first line is a header when it is not all numbers) or a
    ``.npy`` array. The same as concatenating the chunks of :func:`iter_numeric`."""
    names, width, chunks = iter_numeric(path, chunk_rows=None)
    parts = list(chunks)
    return names, np.concatenate(parts) if parts else np.empty((0, width))


def iter_numeric(
    path: str | Path, *, chunk_rows: int | None = 8192, progress: bool = False
) -> tuple[list[str] | None, int, Iterator[np.ndarray]]:
    """A numeric table read in chunks (constant memory): ``(header or None, n_columns,
    iterator of float64 [<= chunk_rows, n_columns])``.

    A CSV file is parsed as it is read (its first line is a header when it is not all
    numbers); a ``.npy`` array is memory-mapped. ``chunk_rows=None`` yields one chunk.
    A ragged line or a non-numeric cell is a ``ValueError`` naming its line and column.

    :param progress: show a progress bar (on stderr) while reading.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"input file {path} does not exist.")
    if chunk_rows is not None:
        positive_int(chunk_rows, "chunk_rows")
    if path.suffix.lower() == ".npy":
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError, OSError) as e:
            raise ValueError(f"{path} is not a readable .npy array ({e}).") from None
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        if a.ndim != 2 or a.dtype.kind not in "fiub":
            raise ValueError(f"{path} holds a {a.dtype} array of shape {a.shape}; expected numbers [rows, columns].")
        return None, a.shape[1], _npy_chunks(a, chunk_rows or max(len(a), 1), progress)
    names, width, rows = _csv_rows(path, header="auto")
    hint = "Encode or drop non-numeric columns first."

    def chunks():
        bar = _bar(path.stat().st_size, "B", progress)
        block: list[tuple[int, list[str]]] = []
        for item in rows:
            block.append(item)
            if len(block) == chunk_rows:
                yield _numeric_rows(path, names, block, hint)
                if bar is not None:  # about the bytes read (text length of the rows)
                    bar.update(sum(len(c) + 1 for _, r in block for c in r))
                block = []
        if block:
            yield _numeric_rows(path, names, block, hint)
        if bar is not None:
            bar.close()

    return names, width, chunks()


def write_csv(path: str | Path, header: list[str], columns: list, *, force: bool = False) -> None:
    """Write ``columns`` (equal-length sequences) under ``header`` as a CSV file: atomically
    (no half-written file on a full disk), floats in full precision (``repr``).

    :raises FileExistsError: when ``path`` exists and ``force`` is False.
    """
    write_csv_chunks(path, header, [columns], force=force)


def write_csv_chunks(path: str | Path, header: list[str], chunks: Iterable[list], *, force: bool = False) -> int:
    """:func:`write_csv` for columns that come chunk by chunk (e.g. the scores of the chunks
    of :func:`iter_numeric`): constant memory. Returns the number of rows written."""
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} already exists; choose another --output or pass --force.")
    from ..training.checkpoints import atomic_write

    count = 0

    def write(f):
        nonlocal count
        text = io.TextIOWrapper(f, newline="", encoding="utf-8")
        w = csv.writer(text)
        w.writerow(header)
        for columns in chunks:
            if len(columns) != len(header):
                raise ValueError(f"{len(columns)} columns for a header of {len(header)} names.")
            for row in zip(*columns, strict=True):
                w.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row])
                count += 1
        text.flush()
        text.detach()

    atomic_write(path, write)
    return count


def read_csv(path: str | Path, *, header: bool | str = True) -> tuple[list[str] | None, list[list[str]]]:
    """The one CSV reader: ``(header names or None, data rows of stripped strings)``.

    :param header: ``True``: the first line names the columns; ``"auto"``: it does when
        it is not all numbers.
    :raises ValueError: naming the file for a binary file, no data rows, or a line whose
        number of fields differs from the first line's.
    """
    path = Path(path)
    names, _, rows = _csv_rows(path, header)
    data = [r for _, r in rows]
    if names is not None and not data:
        raise ValueError(f"{path} has no data rows (a header line and at least one row are needed).")
    return names, data


def _csv_rows(path: Path, header: bool | str) -> tuple[list[str] | None, int, Iterator[tuple[int, list[str]]]]:
    """``(names or None, width, iterator of (line number, stripped cells))`` of the data rows,
    read lazily; blank lines are skipped, a ragged line is an error."""
    records = _records(path)
    try:
        first_line, first = next(records)
    except StopIteration:
        raise ValueError(f"{path} has no rows.") from None
    names = first if header is True or (header == "auto" and not all(_is_number(c) for c in first)) else None
    width = len(first)

    def rows():
        if names is None:
            yield first_line, first
        for line, r in records:
            if len(r) != width:
                raise ValueError(
                    f"{path}: line {line} has {len(r)} fields but the first line has {width}; "
                    "the file is truncated or malformed."
                )
            yield line, r

    return names, width, rows()


def _records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line where it starts, stripped cells)`` of each non-blank CSV record."""
    with open(path, newline="", encoding="utf-8", errors="strict") as f:
        reader = csv.reader(f)
        while True:
            line = reader.line_num + 1
            try:
                r = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError:
                offset, byte, at_line = _first_non_utf8(path)
                raise ValueError(
                    f"{path} is not a text CSV file: byte {byte:#04x} at position {offset} (line {at_line}) is "
                    "not a UTF-8 character (binary or corrupt). Pass a CSV file."
                ) from None
            except csv.Error as e:
                raise ValueError(f"{path} is not a readable CSV file (line {line}: {e}).") from None
            if r and any(c.strip() for c in r):
                yield line, [c.strip() for c in r]


def _first_non_utf8(path: Path, block: int = 1 << 20) -> tuple[int, int, int]:
    """``(byte offset, byte, line)`` of the first byte of ``path`` that is not UTF-8."""
    pos, lines, carry = 0, 1, b""  # pos: the file offset of carry[0]
    with open(path, "rb") as f:
        while True:
            chunk = f.read(block)
            data = carry + chunk
            try:
                data.decode("utf-8")
                ok = len(data)
            except UnicodeDecodeError as e:
                if not (chunk and e.reason == "unexpected end of data"):
                    return pos + e.start, data[e.start], lines + data[: e.start].count(b"\n")
                ok = e.start  # a character cut by the block end: decide with the next block
            lines += data[:ok].count(b"\n")
            pos, carry = pos + ok, data[ok:]
            if not chunk:
                return pos, 0, lines


def _numeric_rows(path: Path, names: list[str] | None, rows: list[tuple[int, list[str]]], hint: str) -> np.ndarray:
    """Parsed rows as float64; the first non-numeric cell is an error naming its line and column."""
    try:
        return np.asarray([r for _, r in rows], dtype=np.float64)
    except ValueError:
        for line, r in rows:
            for j, c in enumerate(r):
                if not _is_number(c):
                    name = names[j] if names else j + 1
                    raise ValueError(
                        f"{path}: column {name!r} is not numeric: line {line} holds {c!r}, not a number. {hint}"
                    ) from None
        raise


def _npy_chunks(a: np.ndarray, chunk_rows: int, progress: bool) -> Iterator[np.ndarray]:
    bar = _bar(len(a), "rows", progress)
    for i in range(0, len(a), chunk_rows):
        yield np.asarray(a[i : i + chunk_rows], dtype=np.float64)
        if bar is not None:
            bar.update(min(chunk_rows, len(a) - i))
    if bar is not None:
        bar.close()


def _bar(total: int, unit: str, show: bool):
    if not show:
        return None
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc="read", unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True)


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
