"""``vaekit report``: plots and a self-contained report.html for a run."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="draw the plots of a run and write RUN/report.html",
        epilog="examples:\n  vaekit evaluate runs/digits && vaekit report runs/digits\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..report import make_report

    path = make_report(args.run)
    print(f"report written to {path.resolve()}")
    return 0
