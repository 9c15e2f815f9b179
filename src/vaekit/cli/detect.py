"""``vaekit detect --train normal.csv --input new.csv --output flagged.csv``.

Fits a ``VAEDetector`` with its defaults on the (normal) training rows, scores the
input rows, and writes them back with two extra columns: ``anomaly_score`` (higher =
more anomalous) and ``outlier`` (1 when the score is above the detector's threshold).
``--save DIR`` also keeps the fitted detector for ``vaekit score``.
"""

from __future__ import annotations

import argparse
import os

from .score import plain, write_csv


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
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default=None, metavar="DIR", help="also save the fitted detector here")
    p.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..anomaly.detector import VAEDetector
    from ..data import read_numeric

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
    h_train, x_train = read_numeric(args.train)
    h_in, x_in = read_numeric(args.input)
    if x_in.shape[1] != x_train.shape[1]:
        raise ValueError(
            f"{args.input} has {x_in.shape[1]} columns but {args.train} has {x_train.shape[1]}; "
            "both files need the same columns."
        )
    det = VAEDetector(method=args.method, contamination=c, random_state=args.seed).fit(x_train)
    s = det.anomaly_score(x_in)
    flag = (det.predict(x_in) == -1).astype(int)
    header = (h_in or [f"x{j + 1}" for j in range(x_in.shape[1])]) + ["anomaly_score", "outlier"]
    cols = [x_in[:, j] for j in range(x_in.shape[1])] + [s, flag]
    write_csv(args.output, header, cols, force=args.force)
    print(f"flagged {int(flag.sum())} of {len(flag)} rows as outliers -> {args.output}", flush=True)
    if args.save:
        det.save(args.save)  # atomic: a failed save leaves no partial folder
        print(f"detector saved to {args.save}")
    return 0
