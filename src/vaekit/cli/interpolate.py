"""``vaekit interpolate``: decode the latent path between two examples."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

EXAMPLES = """\
examples:
  vaekit interpolate runs/mnist --rows 3 17                   # test rows 3 and 17, 10 steps
  vaekit interpolate runs/mnist --rows 3 17 -n 12 --method slerp --output path.png
  vaekit interpolate runs/audio --rows 0 5 --output path.wav
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "interpolate",
        help="decoder means along the latent path between two rows of a split",
        description=textwrap.fill(
            "Encode rows I and J of a split to their posterior means and decode N points "
            "on the path between them (straight line; great circle with --method slerp; on the "
            "simplex for Dirichlet latents). Writes a PNG strip, a .npy array [N, features] or, "
            "for audio runs, a .wav file.",
            88,
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("--rows", nargs=2, type=int, required=True, metavar=("I", "J"), help="the two rows of the split")
    p.add_argument("--split", default="test", help="data split (default test)")
    p.add_argument("-n", type=int, default=10, help="points on the path, endpoints included (default 10)")
    p.add_argument("--method", choices=("linear", "slerp"), default="linear")
    p.add_argument(
        "--output", "-o", metavar="FILE.png|FILE.npy|FILE.wav", help="default RUN/plots/interpolation-I-J.png"
    )
    p.set_defaults(func=run)


def run(args) -> int:
    import numpy as np

    from ..core import interpolate
    from ..runs import load_run, load_split
    from ..viz.plots import strip
    from .sample import audio_rate_of, check_output, check_wav, image_shape_of, write_values

    run_dir = Path(args.run)
    i, j = args.rows
    out = check_output(args.output) if args.output else run_dir / "plots" / f"interpolation-{i}-{j}.png"
    if out.suffix.lower() == ".wav":
        check_wav(run_dir)
    model, pre, cfg = load_run(run_dir)

    def rows(n, labels):
        for r in (i, j):
            if not 0 <= r < n:
                raise ValueError(
                    f"--rows {i} {j}: row {r} is out of range; the {args.split} split has {n} rows (0..{n - 1})."
                )
        return np.array([i, j])

    ends = load_split(cfg, pre, args.split, rows=rows)
    path = interpolate(model, ends.xm[0], ends.xm[1], n=args.n, method=args.method)
    means = np.asarray(path.mean, np.float32).reshape(args.n, -1)
    if pre is not None:
        means = pre.inverse_transform(means)
    out.parent.mkdir(exist_ok=True)
    titles = [f"t = {t:.2f}" for t in np.linspace(0, 1, args.n)]
    if out.suffix.lower() == ".png" and image_shape_of(cfg) is None and audio_rate_of(cfg) is None:
        strip(means, out, titles=titles)  # table rows: one line per point of the path
        note = ""
    else:
        note = write_values(means, out, cfg, cols=args.n, titles=titles)
    labels = "" if ends.y is None else f" (labels {ends.y[0]} and {ends.y[1]})"
    print(
        f"{args.n} points between {args.split} rows {i} and {j}{labels} written to {out}"
        + (f" ({note})" if note else "")
    )
    return 0
