"""``vaekit lattice``: decoder means on a grid of 2-D latents."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

EXAMPLES = """\
examples:
  vaekit lattice runs/mnist --range 3 --size 50        # z in [-3, 3]^2, 50 x 50 decoder means
  vaekit lattice runs/mnist --output lattice.png       # default: the standard normal's quantiles
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "lattice",
        help="decoder means on a SIZE x SIZE grid of a 2-D latent space (PNG)",
        description=textwrap.fill(
            "Decode a SIZE x SIZE lattice of 2-D latent points: z in [-R, R]^2 with "
            "--range R, else the standard normal's quantiles at (i + 1/2)/SIZE. Images are tiled; "
            "other data are drawn as small line plots (at most 10 x 10).",
            88,
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument(
        "--range", dest="span", type=float, metavar="R", help="cover z in [-R, R]^2 (default: prior quantiles)"
    )
    p.add_argument("--size", type=int, default=50, help="points per axis (default 50)")
    p.add_argument("--output", "-o", metavar="FILE.png", help="default RUN/plots/lattice-SIZE[-rR].png")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..runs import load_run
    from ..viz.plots import lattice
    from ..viz.report import display_inverse
    from .sample import check_output, image_shape_of

    run_dir = Path(args.run)
    model, pre, cfg = load_run(run_dir)
    if model.latent_shape != (2,):
        raise ValueError(f"The lattice needs a 2-D latent; this run's latent has shape {model.latent_shape}.")
    image_shape = image_shape_of(cfg)
    size = args.size if image_shape is not None else min(args.size, 10)
    tag = f"-r{args.span:g}" if args.span is not None else ""
    out = check_output(args.output, (".png",)) if args.output else run_dir / "plots" / f"lattice-{size}{tag}.png"
    out.parent.mkdir(exist_ok=True)
    inv = display_inverse(pre)
    lattice(model, out, image_shape=image_shape, inverse=inv, size=args.size, span=args.span)
    where = (
        f"z in [{-args.span:g}, {args.span:g}]^2" if args.span is not None else "z at the standard normal's quantiles"
    )
    print(f"{size} x {size} lattice of decoder means ({where}) written to {out}")
    return 0
