"""``vaekit train``: train a model into a run folder."""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from . import _distributed

EXAMPLES = """\
examples:
  vaekit train --data digits --latent-dim 2 --epochs 30 --out runs/digits
  vaekit train --config mnist.toml --epochs 50 --out runs/mnist
  vaekit train --data data.csv --label-column label --out runs/tab   # standardize + gaussian
  vaekit train --data mnist --likelihood continuous-bernoulli --out runs/cb   # keep grey levels
  vaekit train --data images/ --model dirichlet_vae --latent-dim 10 \\
      --clip-norm 1 --adam-betas 0.9,0.99 --out runs/dir   # the Dirichlet-VAE recipe
  vaekit train --resume runs/mnist --epochs 100      # continue from the last checkpoint
  vaekit train --config mnist.toml --out /shared/runs/mnist \
      --distributed 10.0.0.1:1234 --num-processes 2 --process-id 0   # and --process-id 1 on the other host
  srun vaekit train --config mnist.toml --out runs/mnist --distributed auto   # SLURM / Open MPI
  vaekit train --data mnist --logger tensorboard --logger mlflow --out runs/m  # trackers

defaults chosen from the data (when --likelihood/--preprocessing are not set; the
choice is printed in one line at the start and recorded in config.json):
  binary {0,1}                -> bernoulli decoder, no preprocessing
  grey images in [0,1]/0-255  -> binarize at 0.5/127.5 (announced), bernoulli decoder
  colour images               -> continuous-bernoulli decoder (intensities kept)
  audio frames in [-1,1]      -> gaussian decoder, no preprocessing
  other real-valued data      -> standardize (fitted on train), gaussian decoder with a
                                 learned per-feature scale

--hidden per model (each preset has its own width option and default):
%s

config file (TOML; flags override it; unknown keys are errors):
  data = "mnist"
  likelihood = "bernoulli"
  latent_dim = 2
  hidden = [500]
  epochs = 50
  batch_size = 100
  kl_warmup_epochs = 5
  clip_norm = 1.0
  adam_betas = [0.9, 0.99]
  weight_decay = 0.0
  skip_nonfinite = true
  loggers = ["tensorboard"]
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
    "lr_warmup_epochs": "lr_warmup_epochs",
    "clip_norm": "clip_norm",
    "adam_betas": "adam_betas",
    "weight_decay": "weight_decay",
    "skip_nonfinite": "skip_nonfinite",
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
    "logger": "loggers",
    "condition_on": "condition_on",
}


def add_parser(subparsers) -> None:
    from ..zoo.presets import widths_help

    p = subparsers.add_parser(
        "train",
        help="train a model into a run folder",
        description="Train a VAE and write a run folder (config, metrics, checkpoints, model).",
        epilog=EXAMPLES % widths_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", metavar="FILE.toml", help="TOML configuration; flags override it")
    p.add_argument(
        "--data", metavar="NAME|PATH", help="digits, iris, mnist, fashion-mnist, binarized-mnist, or a file/folder"
    )
    p.add_argument(
        "--likelihood",
        help="decoder family: auto (chosen from the data; default), bernoulli, continuous-bernoulli, beta, gaussian, laplace, studentt",
    )
    p.add_argument("--latent-dim", type=int)
    p.add_argument(
        "--hidden",
        help="the model's widths, e.g. 500 or 256,128: MLP layer widths, or conv channels for conv_vae (defaults below)",
    )
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, help="examples per step (default 100, or the training rows if fewer)")
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--lr-schedule", help="constant (default), cosine (to 0), exponential (to lr/10) or linear (to 0)")
    p.add_argument(
        "--lr-warmup-epochs", type=int, metavar="N", help="raise the learning rate linearly from 0 over N epochs first"
    )
    p.add_argument(
        "--clip-norm", type=float, metavar="FLOAT", help="global gradient-norm clipping (default 100; 0: off)"
    )
    p.add_argument("--adam-betas", metavar="B1,B2", help="Adam's betas (default 0.9,0.999)")
    p.add_argument("--weight-decay", type=float, metavar="FLOAT", help="decoupled weight decay, AdamW (default 0)")
    p.add_argument(
        "--no-skip-nonfinite",
        dest="skip_nonfinite",
        action="store_const",
        const=False,
        default=None,
        help="apply updates whose gradient has a NaN/inf (by default they are skipped)",
    )
    p.add_argument("--beta", type=float, help="KL weight")
    p.add_argument("--kl-warmup-epochs", type=int, help="raise beta linearly from 0 over this many epochs")
    p.add_argument("--seed", type=int)
    p.add_argument("--model", help="preset name (default vae)")
    p.add_argument("--latent", help="latent family, for presets that take one")
    p.add_argument("--prior", help="prior, for presets that take one")
    p.add_argument(
        "--preprocessing",
        help="auto (chosen from the data; default), none, standardize, minmax, binarize, dynamic, scale, clip",
    )
    p.add_argument("--label-column", help="label column of a CSV/Parquet file")
    p.add_argument(
        "--condition-on",
        metavar="label",
        help="train a conditional model (--model cvae or m2) on the data's labels (-1: unlabelled, m2 only)",
    )
    p.add_argument("--limit", type=int, help="use only the first N training examples")
    p.add_argument("--val-fraction", type=float, help="fraction of the training split held out for validation")
    p.add_argument("--patience", type=int, help="early stopping patience in epochs (0: off)")
    p.add_argument("--checkpoint-every", type=int, metavar="N", help="checkpoint every N epochs")
    p.add_argument(
        "--keep-checkpoints", type=int, metavar="K", help="keep the newest K checkpoints (0: all; default 3)"
    )
    p.add_argument("--n-samples", type=int, help="latent samples per example in the objective")
    p.add_argument("--devices", help="data-parallel training: 'all' or a device count (default: one device)")
    p.add_argument(
        "--logger",
        action="append",
        choices=("tensorboard", "mlflow", "wandb"),
        help="send metrics to an experiment tracker (repeatable): tensorboard (RUN/tensorboard), mlflow "
        "($MLFLOW_TRACKING_URI), wandb ($WANDB_PROJECT, $WANDB_MODE); pip install 'vaekit[NAME]'",
    )
    p.add_argument("--out", metavar="RUN_DIR", help="run folder (default runs/<data>-<time>)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", metavar="RUN", help="continue this run from its newest checkpoint")
    g.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (only a vaekit run; only the files vaekit wrote)",
    )
    p.add_argument(
        "--allow-data-change",
        action="store_true",
        help="with --resume: continue even though the training data changed since the run started",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    _distributed.add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    file_cfg, table = _distributed.split_config(args.config) if args.config else ({}, {})
    dist = _distributed.settings(args, table)
    if dist is None:
        return _run(args, file_cfg)
    if args.devices is None and file_cfg.get("devices") is None:
        args.devices = "all"  # every process trains its share of each batch
    return _distributed.run_joined(args, dist, lambda: _run(args, file_cfg))


def _run(args, file_cfg: dict) -> int:
    from ..runs import resolve_config, train
    from ..training.distributed import is_main_process
    from . import CLIError

    explicit = {key: getattr(args, flag) for flag, key in FLAGS.items() if getattr(args, flag) is not None}
    if args.resume:
        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise CLIError("--out and --resume name different folders; a resumed run stays in its folder.")
        out = Path(args.resume)
        train(
            {},
            out,
            resume=True,
            quiet=args.quiet,
            explicit={**file_cfg, **explicit},
            allow_data_change=args.allow_data_change,
        )
    else:
        if args.allow_data_change:
            raise CLIError("--allow-data-change applies only with --resume.")
        cfg = resolve_config(file_cfg, explicit)
        if args.out:
            out = Path(args.out)
        else:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            out = Path("runs") / f"{Path(str(cfg['data'])).stem}-{stamp}"
        train(cfg, out, overwrite=args.overwrite, quiet=args.quiet)
    if is_main_process():
        print(f"run written to {out}")
    return 0
