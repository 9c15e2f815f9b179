"""``vaekit score RUN --input FILE --output scores.csv [--method NAME]``.

``RUN`` is a folder saved by ``VAEDetector.save`` (``"kind": "detector"`` in its
``vaekit.json``), by ``vk.save`` or by ``vaekit train`` (``vk.load`` turns those into
``(model, preprocessor)``). The output CSV has one row per input row with the column
``anomaly_score`` (higher = more anomalous).

Inputs larger than memory work: a ``.npy`` file is memory-mapped and a CSV file is read
in chunks of 8192 rows, scored, and written out chunk by chunk (constant memory); a
progress bar is shown for inputs over 20 MB.
"""

from __future__ import annotations

import argparse
import csv
import io
import os

import numpy as np


def plain(doc: str) -> str:
    """A module docstring as plain help text (no ``RST`` literal markup)."""
    return doc.replace("``", "").strip() + "\n"


def write_csv(path: str, header: list[str], columns: list[np.ndarray], *, force: bool = False) -> None:
    """Write ``columns`` under ``header`` as a CSV file (atomically; floats in full precision)."""
    if os.path.exists(path) and not force:
        raise FileExistsError(f"{path} already exists; choose another --output or pass --force.")
    from ..training.checkpoints import atomic_write

    def write(f):
        text = io.TextIOWrapper(f, newline="", encoding="utf-8")
        w = csv.writer(text)
        w.writerow(header)
        for row in zip(*columns):
            w.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in row])
        text.flush()
        text.detach()

    atomic_write(path, write)  # no half-written file on a full disk


CHUNK_ROWS = 8192
PROGRESS_BYTES = 20 * 2**20


def iter_chunks(path: str, chunk_rows: int = CHUNK_ROWS):
    """``(header or None, n_columns, iterator of float64 [<= chunk_rows, n_columns])`` of a
    CSV file (the first line is a header when it is not all numbers) or a ``.npy`` array
    (memory-mapped), read chunk by chunk. A non-numeric cell or a ragged line is an error
    naming its line."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input file {path} does not exist.")
    size = os.path.getsize(path)
    show = size >= PROGRESS_BYTES
    if path.lower().endswith(".npy"):
        try:
            a = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise ValueError(f"{path} is not a readable .npy array ({e}).") from None
        a = a.reshape(-1, 1) if a.ndim == 1 else a
        if a.ndim != 2 or a.dtype.kind not in "fiub":
            raise ValueError(f"{path} holds a {a.dtype} array of shape {a.shape}; expected numbers [rows, columns].")

        def gen_npy():
            bar = _bar(len(a), "rows", show)
            for i in range(0, len(a), chunk_rows):
                yield np.asarray(a[i : i + chunk_rows], dtype=np.float64)
                if bar is not None:
                    bar.update(min(chunk_rows, len(a) - i))
            if bar is not None:
                bar.close()

        return None, a.shape[1], gen_npy()

    f = open(path, newline="", encoding="utf-8", errors="strict")  # noqa: SIM115 - closed by the generator
    reader = csv.reader(f)
    try:
        first = next(reader)
    except StopIteration:
        f.close()
        raise ValueError(f"{path} is empty; expected numeric rows.") from None
    except UnicodeDecodeError:
        f.close()
        raise ValueError(f"{path} is not a text CSV file.") from None
    first = [c.strip() for c in first]
    header = None if all(_number(c) for c in first) else first
    width = len(first)

    def gen_csv():
        bar = _bar(size, "B", show)
        rows: list[list[str]] = [] if header else [first]
        lines: list[int] = [] if header else [1]
        try:
            for line in reader:
                if not line or not any(c.strip() for c in line):
                    continue  # blank line
                rows.append(line)
                lines.append(reader.line_num)
                if len(rows) == chunk_rows:
                    yield _parse(path, rows, width, lines, header)
                    if bar is not None:  # about the bytes read (text length of the rows)
                        bar.update(sum(len(c) + 1 for r in rows for c in r))
                    rows, lines = [], []
            if rows:
                yield _parse(path, rows, width, lines, header)
        finally:
            f.close()
            if bar is not None:
                bar.close()

    return header, width, gen_csv()


def _bar(total: int, unit: str, show: bool):
    if not show:
        return None
    import sys

    from tqdm.auto import tqdm

    return tqdm(total=total, desc="score", unit=unit, unit_scale=True, file=sys.stderr, dynamic_ncols=True)


def _number(c: str) -> bool:
    try:
        float(c)
        return True
    except ValueError:
        return False


def _parse(path: str, rows: list[list[str]], width: int, lines: list[int], header) -> np.ndarray:
    for i, r in enumerate(rows):
        if len(r) != width:
            raise ValueError(f"{path}: line {lines[i]} has {len(r)} fields, the first line has {width}.")
    try:
        return np.asarray(rows, dtype=np.float64)
    except ValueError:
        for i, r in enumerate(rows):
            for j, c in enumerate(r):
                if not _number(c.strip()):
                    name = header[j] if header else j + 1
                    raise ValueError(
                        f"{path}: column {name!r} is not numeric: line {lines[i]} holds {c.strip()!r}, "
                        "not a number. Encode or drop non-numeric columns first."
                    ) from None
        raise


def load_scorer(run: str, method: str | None, n_samples: int, seed: int):
    """``x -> anomaly scores`` for a detector folder or a model/training-run folder."""
    if not os.path.isdir(run):
        raise FileNotFoundError(f"{run} is not a folder (expected a saved detector or a training run).")
    import jax

    from ..anomaly import score
    from ..runs import serialization

    kind, loaded = serialization.load_any(run)
    if kind == "detector":
        if method is not None:
            loaded.set_params(method=method)
        return loaded.anomaly_score
    model, pre = loaded

    def scorer(x):
        xt = pre.transform(x) if pre is not None else x
        return np.asarray(score(model, xt, jax.random.key(seed), method=method or "elbo", n_samples=n_samples))

    return scorer


def add_parser(subparsers) -> None:
    from ..anomaly.scores import METHODS

    p = subparsers.add_parser(
        "score",
        help="anomaly scores of new rows under a saved detector or trained model",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="saved detector folder or training-run folder")
    p.add_argument("--input", required=True, help="CSV file (header optional) or .npy of rows to score")
    p.add_argument("--output", required=True, help="CSV file to write (column anomaly_score)")
    p.add_argument("--method", choices=METHODS, default=None, help="score (default: the detector's, or elbo)")
    p.add_argument("--n-samples", type=int, default=16, help="latent samples per row (training runs)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed for the sampled scores (training runs)")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    if os.path.exists(args.output) and not args.force:
        raise FileExistsError(f"{args.output} already exists; choose another --output or pass --force.")
    scorer = load_scorer(args.run, args.method, args.n_samples, args.seed)
    _, _, chunks = iter_chunks(args.input)
    from ..training.checkpoints import atomic_write

    count = 0

    def write(f):  # chunk by chunk: constant memory; atomic: no half-written file
        nonlocal count
        text = io.TextIOWrapper(f, newline="", encoding="utf-8")
        w = csv.writer(text)
        w.writerow(["anomaly_score"])
        for x in chunks:
            for v in np.asarray(scorer(x), dtype=np.float64):
                w.writerow([repr(float(v))])
            count += len(x)
        text.flush()
        text.detach()

    atomic_write(args.output, write)
    print(f"scored {count} rows -> {args.output}")
    return 0
