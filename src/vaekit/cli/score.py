"""``vaekit score RUN --input FILE --output scores.csv [--method NAME]``.

``RUN`` is a folder saved by ``VAEDetector.save`` / ``vk.save`` (``"kind": "detector"``
in its ``vaekit.json``) or a training-run folder that ``vk.load`` turns into
``(model, preprocessor)``. The output CSV has one row per input row with the column
``anomaly_score`` (higher = more anomalous).
"""

from __future__ import annotations

import argparse

import csv
import io
import os

import numpy as np

from . import CLIError


def _plain(doc: str) -> str:
    """A module docstring as plain help text (no ``RST`` literal markup)."""
    return doc.replace("``", "").strip() + "\n"


def read_csv(path: str) -> tuple[list[str] | None, np.ndarray]:
    """Read a numeric CSV (``.npy`` also accepted): ``(header or None, [rows, cols] float64)``.

    A first row that is not all numbers is taken as the header. Any other
    non-numeric cell is an error naming its row and column.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"input file {path} does not exist.")
    if path.endswith(".npy"):
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, EOFError) as e:
            raise CLIError(f"{path} is not a readable .npy array ({e}).") from None
        return None, a.reshape(-1, 1) if a.ndim == 1 else a
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    except UnicodeDecodeError as e:
        raise CLIError(
            f"{path} is not a text CSV file (byte {e.object[e.start]:#04x} at position {e.start} is not UTF-8 "
            "text). Pass a CSV file or a .npy array."
        ) from None
    except csv.Error as e:
        raise CLIError(f"{path} is not a readable CSV file ({e}).") from None
    if not rows:
        raise CLIError(f"{path} has no rows.")

    def numeric(cell: str) -> bool:
        try:
            float(cell)
            return True
        except ValueError:
            return False

    header = None
    if not all(numeric(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise CLIError(f"{path} has a header but no data rows.")
    width = len(header) if header else len(rows[0])
    out = np.empty((len(rows), width))
    for i, r in enumerate(rows):
        if len(r) != width:
            raise CLIError(f"{path}: row {i + 1 + (header is not None)} has {len(r)} fields, expected {width}.")
        for j, c in enumerate(r):
            try:
                out[i, j] = float(c)
            except ValueError:
                col = header[j] if header else j + 1
                raise CLIError(
                    f"{path}: row {i + 1 + (header is not None)}, column {col!r} is not a number: {c!r}. "
                    "Encode or drop non-numeric columns first."
                ) from None
    return header, out


def write_csv(path: str, header: list[str], columns: list[np.ndarray], *, force: bool = False) -> None:
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


def load_scorer(run: str, method: str | None, n_samples: int, seed: int):
    """``x -> anomaly scores`` for a detector folder or a training-run folder."""
    meta_path = os.path.join(run, "vaekit.json")
    if not os.path.isdir(run):
        raise FileNotFoundError(f"{run} is not a folder (expected a saved detector or a training run).")
    kind = None
    if os.path.isfile(meta_path):
        from ..training.checkpoints import read_json

        meta = read_json(meta_path)
        kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind == "detector":
        from ..anomaly.detector import VAEDetector

        det = VAEDetector.load(run)
        if method is not None:
            det.set_params(method=method)
        return det.anomaly_score
    try:
        from ..training.checkpoints import load
    except ImportError:
        raise CLIError(f"{run} is not a saved detector, and this vaekit cannot read training runs.") from None
    import jax

    from ..anomaly.scores import score

    loaded = load(run)
    if not (isinstance(loaded, tuple) and len(loaded) == 2):
        raise CLIError(f"{run} does not hold a trained model (vk.load returned {type(loaded).__name__}).")
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
        description=_plain(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter,
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
    _, x = read_csv(args.input)
    s = np.asarray(scorer(x), dtype=np.float64)
    write_csv(args.output, ["anomaly_score"], [s], force=args.force)
    print(f"scored {len(s)} rows -> {args.output}")
    return 0
