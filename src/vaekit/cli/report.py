"""``vaekit report``: plots and a self-contained report.html for a run."""

from __future__ import annotations

import argparse
import textwrap


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="draw the plots of a run and write RUN/report.html",
        description=textwrap.fill(
            "Draw the plots of a run into RUN/plots and write RUN/report.html, a self-contained "
            "page with the configuration, the final metrics (and eval.json when present) and every "
            "plot: loss curves, posterior means of test rows drawn at random (stratified by label), "
            "prior samples, reconstructions, an interpolation between two test rows and, for a 2-D "
            "latent, the latent lattice. Each caption says which rows and labels it shows.",
            88,
        ),
        epilog="examples:\n  vaekit evaluate runs/digits && vaekit report runs/digits\n  vaekit report runs/mnist --lattice-range 3\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument(
        "--lattice-range",
        type=float,
        metavar="R",
        help="lattice over z in [-R, R]^2 (default: the standard normal's quantiles)",
    )
    p.add_argument("--lattice-size", type=int, default=50, metavar="N", help="lattice points per axis (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed of the rows drawn for the plots (default 0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..viz.report import make_report

    path = make_report(args.run, lattice_range=args.lattice_range, lattice_size=args.lattice_size, seed=args.seed)
    print(f"report written to {path.resolve()}")
    return 0
