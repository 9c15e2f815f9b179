"""``vaekit detect --train normal.csv --input new.csv --output flagged.csv``.

Fits a ``VAEDetector`` with its defaults on the (normal) training rows, scores the
input rows, and writes them back with two extra columns: ``anomaly_score`` (higher =
more anomalous) and ``outlier`` (1 when the score is above the detector's threshold).
``--save DIR`` also keeps the fitted detector for ``vaekit score``. ``--explain K`` adds,
for each flagged row, its ``K`` most anomalous features and their contributions to the
score (columns ``feature_1, contribution_1, ...``; empty for rows not flagged).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from .score import plain


def add_parser(subparsers) -> None:
    from ..anomaly.scores import METHODS

    p = subparsers.add_parser(
        "detect",
        help="fit a detector on normal rows and flag anomalies in new rows",
        description=plain(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", required=True, help="CSV of normal rows (header optional)")
    p.add_argument("--input", required=True, help="CSV of rows to check (same columns)")
    p.add_argument("--output", required=True, help="CSV to write: input rows + anomaly_score, outlier")
    p.add_argument("--method", choices=METHODS, default="elbo")
    p.add_argument(
        "--contamination",
        default="auto",
        help="'auto' (1%% of training rows above the threshold) or the expected outlier fraction in (0, 0.5]",
    )
    p.add_argument(
        "--false-alarm-rate",
        type=float,
        default=None,
        metavar="RATE",
        help="instead of --contamination: flag about this fraction of new normal rows (clean training rows)",
    )
    p.add_argument(
        "--explain", type=int, default=0, metavar="K", help="add the K most anomalous features of each flagged row"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, metavar="DIR", help="also save the fitted detector here")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..anomaly.detector import VAEDetector
    from ..data import read_numeric, write_csv

    if os.path.exists(args.output) and not args.force:
        raise FileExistsError(f"{args.output} already exists; choose another --output or pass --force.")
    if args.save and os.path.exists(args.save):
        raise FileExistsError(f"--save {args.save} already exists; choose a new folder.")
    c = args.contamination
    if c != "auto":
        try:
            c = float(c)
        except ValueError:
            raise ValueError(f"--contamination must be 'auto' or a number in (0, 0.5], got {c!r}.") from None
    _, x_train = read_numeric(args.train)
    h_in, x_in = read_numeric(args.input)
    if x_in.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"{args.input} has {x_in.shape[1]} columns but {args.train} has {x_train.shape[1]}; "
            "both files need the same columns."
        )
    if args.explain < 0:
        raise ValueError(f"--explain must be a number of features >= 0, got {args.explain}.")
    det = VAEDetector(
        method=args.method, contamination=c, random_state=args.seed, false_alarm_rate=args.false_alarm_rate
    ).fit(x_train)
    s = det.anomaly_score(x_in)
    flag = (s > det.threshold_).astype(int)
    names = h_in or [f"x{j + 1}" for j in range(x_in.shape[1])]
    header = names + ["anomaly_score", "outlier"]
    cols = [x_in[:, j] for j in range(x_in.shape[1])] + [s, flag]
    if args.explain:
        k = min(args.explain, x_in.shape[1])
        rows = np.flatnonzero(flag)
        feat = np.full((len(flag), k), "", dtype=object)
        contrib = np.full((len(flag), k), "", dtype=object)
        if len(rows):
            e = det.explain(x_in[rows], top=k)
            for r, top, c_row in zip(rows, e.top_features, e.contributions):
                feat[r] = [names[j] for j in top]
                contrib[r] = [float(c_row[j]) for j in top]
        for i in range(k):
            header += [f"feature_{i + 1}", f"contribution_{i + 1}"]
            cols += [feat[:, i], contrib[:, i]]
    write_csv(args.output, header, cols, force=args.force)
    print(f"flagged {int(flag.sum())} of {len(flag)} rows as outliers -> {args.output}", flush=True)
    if args.save:
        det.save(args.save)  # atomic: a failed save leaves no partial folder
        print(f"detector saved to {args.save}")
    return 0
