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
import os

import numpy as np


def plain(doc: str) -> str:
    """A module docstring as plain help text (no ``RST`` literal markup)."""
    return doc.replace("``", "").strip() + "\n"


CHUNK_ROWS = 8192
PROGRESS_BYTES = 20 * 2**20


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
    from ..data import iter_numeric, write_csv_chunks

    if os.path.exists(args.output) and not args.force:
        raise FileExistsError(f"{args.output} already exists; choose another --output or pass --force.")
    scorer = load_scorer(args.run, args.method, args.n_samples, args.seed)
    big = os.path.isfile(args.input) and os.path.getsize(args.input) >= PROGRESS_BYTES
    _, _, chunks = iter_numeric(args.input, chunk_rows=CHUNK_ROWS, progress=big)
    scores = ([np.asarray(scorer(x), dtype=np.float64)] for x in chunks)
    count = write_csv_chunks(args.output, ["anomaly_score"], scores, force=args.force)  # chunk by chunk, atomic
    print(f"scored {count} rows -> {args.output}")
    return 0
