"""``vaekit train``: train a model into a run folder."""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

EXAMPLES = """\
examples:
  vaekit train --data digits --latent-dim 2 --epochs 30 --out runs/digits
  vaekit train --config mnist.toml --epochs 50 --out runs/mnist
  vaekit train --data data.csv --label-column label --likelihood gaussian --out runs/tab
  vaekit train --resume runs/mnist --epochs 100      # continue from the last checkpoint

config file (TOML; flags override it; unknown keys are errors):
  data = "mnist"
  likelihood = "bernoulli"
  latent_dim = 2
  hidden = [500]
  epochs = 50
  batch_size = 100
  kl_warmup_epochs = 5
  [model_options]
  activation = "tanh"
"""

#: flag -> config key, for flags that map one to one.
FLAGS = {
    "data": "data",
    "likelihood": "likelihood",
    "latent_dim": "latent_dim",
    "hidden": "hidden",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "lr_schedule": "lr_schedule",
    "beta": "beta",
    "kl_warmup_epochs": "kl_warmup_epochs",
    "seed": "seed",
    "model": "model",
    "latent": "latent",
    "prior": "prior",
    "preprocessing": "preprocessing",
    "label_column": "label_column",
    "limit": "limit",
    "val_fraction": "val_fraction",
    "patience": "patience",
    "checkpoint_every": "checkpoint_every",
    "keep_checkpoints": "keep_checkpoints",
    "n_samples": "n_samples",
    "devices": "devices",
}


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model into a run folder",
        description="Train a VAE and write a run folder (config, metrics, checkpoints, model).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE.toml", help="TOML configuration; flags override it")
    p.add_argument("--data", metavar="NAME|PATH", help="digits, iris, mnist, fashion-mnist, binarized-mnist, or a file/folder")
    p.add_argument("--likelihood", help="decoder family: bernoulli, gaussian, laplace, studentt, beta")
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--hidden", help="hidden layer widths, e.g. 500 or 256,128")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--lr-schedule", help="constant, cosine or exponential")
    p.add_argument("--beta", type=float, help="KL weight")
    p.add_argument("--kl-warmup-epochs", type=int, help="raise beta linearly from 0 over this many epochs")
    p.add_argument("--seed", type=int)
    p.add_argument("--model", help="preset name (default vae)")
    p.add_argument("--latent", help="latent family, for presets that take one")
    p.add_argument("--prior", help="prior, for presets that take one")
    p.add_argument("--preprocessing", help="auto, none, standardize, minmax, binarize, dynamic")
    p.add_argument("--label-column", help="label column of a CSV/Parquet file")
    p.add_argument("--limit", type=int, help="use only the first N training examples")
    p.add_argument("--val-fraction", type=float, help="fraction of the training split held out for validation")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint every N epochs")
    p.add_argument("--keep-checkpoints", type=int, metavar="K", help="keep the newest K checkpoints (0: all; default 3)")
    p.add_argument("--n-samples", type=int, help="latent samples per example in the objective")
    p.add_argument("--devices", help="data-parallel training: 'all' or a device count (default: one device)")
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<data>-<time>)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", metavar="RUN", help="continue this run from its newest checkpoint")
    g.add_argument("--overwrite", action="store_true", help="replace the run in --out (only a vaekit run; only the files vaekit wrote)")
    p.add_argument(
        "--allow-data-change", action="store_true",
        help="with --resume: continue even though the training data changed since the run started",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import run as vrun
    from . import CLIError

    explicit = {key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None}
    file_cfg = vrun.read_config(args.config) if args.config else {}
    if args.resume:
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise CLIError("--out and --resume name different folders; a resumed run stays in its folder.")
        out = Path(args.resume)
        vrun.train({}, out, resume=True, quiet=args.quiet, explicit={**file_cfg, **explicit}, allow_data_change=args.allow_data_change)
    else:
        if args.allow_data_change:
            raise CLIError("--allow-data-change applies only with --resume.")
        cfg = vrun.resolve_config(file_cfg, explicit)
        if args.out:
            out = Path(args.out)
        else:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"{Path(str(cfg['data'])).stem}-{stamp}"
        vrun.train(cfg, out, overwrite=args.overwrite, quiet=args.quiet)
    print(f"run written to {out}")
    return 0
