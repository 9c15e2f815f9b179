"""``vaekit sample``: draw from a trained model's prior and decode."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  vaekit sample runs/digits -n 64 --output samples.png
  vaekit sample runs/tabular -n 1000 --output samples.npy --kind sample
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="decode draws from the prior into a PNG grid or a .npy array",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument("--output", "-o", required=True, metavar="FILE.png|FILE.npy")
    p.add_argument("--kind", choices=("mean", "sample"), default="mean", help="decoder mean (default) or a draw from p(x|z)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in (".png", ".npy"):
        raise ValueError(f"--output must end in .png or .npy, got {out.name!r}.")
    if not out.parent.exists():
        raise FileNotFoundError(f"The folder of --output {out} does not exist.")
    return out


def image_shape_of(cfg: dict):
    from .. import datasets

    if cfg["data"] in ("digits",):
        return (8, 8)
    if cfg["data"] in ("mnist", "fashion-mnist", "binarized-mnist"):
        return (28, 28)
    p = Path(str(cfg["data"]))
    if p.is_dir():
        return datasets.load(p, "all", limit=1, **(cfg.get("data_options") or {})).meta.get("image_shape")
    return None


def write_grid(values, out: Path, image_shape, cols: int) -> None:
    import numpy as np

    from ..plots import _display, _save_image, _scale_for, _tiles, grid

    if image_shape is None:
        raise ValueError("PNG output needs image data; this run's data are not images. Use --output FILE.npy.")
    n = len(values)
    rows = -(-n // cols)
    flat = values.reshape(n, -1)
    pad = np.ones((rows * cols - n, flat.shape[1]), np.float32)
    tiles = _tiles(_display(np.concatenate([flat, pad]).reshape(rows, cols, -1), True), image_shape)
    _save_image(grid(tiles, scale=_scale_for(image_shape)), out)


def run(args) -> int:
    import jax
    import numpy as np

    from ..model import sample
    from ..run import load_run

    if args.n < 1:
        raise ValueError(f"-n must be a positive int, got {args.n}.")
    out = check_output(args.output)
    model, pre, cfg = load_run(args.run)
    s = sample(model, jax.random.key(args.seed), args.n)
    v = np.asarray(s.mean if args.kind == "mean" else s.x, np.float32)
    v = v.reshape(args.n, -1)
    if pre is not None:
        v = pre.inverse_transform(v)
    if out.suffix.lower() == ".npy":
        np.save(out, v, allow_pickle=False)
    else:
        write_grid(v, out, image_shape_of(cfg), cols=int(np.ceil(np.sqrt(args.n))))
    print(f"{args.n} samples written to {out}")
    return 0
