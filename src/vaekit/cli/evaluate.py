"""``vaekit evaluate``: test ELBO and importance-sampled log-likelihood of a run."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """\
examples:
  vaekit evaluate runs/digits
  vaekit evaluate runs/mnist --split test --iw-samples 5000
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="test ELBO and log-likelihood of a run",
        description="Compute the ELBO and the importance-sampled log-likelihood on a split; "
        "print them and write RUN/eval.json.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN", help="run folder written by vaekit train")
    p.add_argument("--split", default="test", help="data split (default test)")
    p.add_argument("--iw-samples", type=int, default=1000, help="importance samples per example (default 1000)")
    p.add_argument("--elbo-samples", type=int, default=10, help="latent samples for the ELBO estimate (default 10)")
    p.add_argument("--limit", type=int, help="evaluate only the first N examples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def evaluate(
    run_dir,
    split: str = "test",
    iw_samples: int = 1000,
    elbo_samples: int = 10,
    limit=None,
    seed: int = 0,
    quiet: bool = True,
    write: bool = True,
) -> dict:
    """Test ELBO and log-likelihood of a run; ``quiet=False`` shows a progress bar with an ETA on stderr."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from .._validate import positive_int
    from ..core import check_data, elbo, log_likelihood
    from ..runs import load_run, load_split
    from ..training import checkpoints as ckpt

    run_dir = Path(run_dir)
    positive_int(iw_samples, "--iw-samples")
    positive_int(elbo_samples, "--elbo-samples")
    model, pre, cfg = load_run(run_dir)
    x = jnp.asarray(load_split(cfg, pre, split, limit=limit).xm)
    check_data(model, x, f"the {split} split")
    k1, k2 = jax.random.split(jax.random.key(seed))
    bs = 1000

    def progress(what: str):
        if quiet:
            return None
        import sys

        from tqdm.auto import tqdm

        return tqdm(total=len(x), desc=f"{what} ({split})", unit="ex", file=sys.stderr, dynamic_ncols=True)

    bar = progress(f"ELBO, {elbo_samples} samples")
    try:
        parts = []
        for i in range(0, len(x), bs):
            parts.append(np.asarray(elbo(model, x[i : i + bs], jax.random.fold_in(k1, i), n_samples=elbo_samples)))
            if bar is not None:
                bar.update(len(parts[-1]))
    finally:
        if bar is not None:
            bar.close()
    el = np.concatenate(parts)
    bar = progress(f"log-likelihood, {iw_samples} importance samples")
    try:
        ll = np.asarray(
            log_likelihood(model, x, k2, n_samples=iw_samples, progress=bar.update if bar is not None else None)
        )
    finally:
        if bar is not None:
            bar.close()
    result = {
        "split": split,
        "n": int(len(x)),
        "elbo": float(el.mean()),
        "log_likelihood": float(ll.mean()),
        "iw_samples": iw_samples,
        "elbo_samples": elbo_samples,
        "preprocessing": pre.kind if pre is not None else "none",  # values are nats of the preprocessed data
    }
    if write:
        ckpt.write_json(run_dir / "eval.json", result)
    return result


def run(args) -> int:
    from ..training import checkpoints as ckpt

    r = evaluate(
        args.run, args.split, args.iw_samples, args.elbo_samples, args.limit, args.seed, quiet=args.quiet, write=False
    )
    print(f"{r['split']} ({r['n']} examples)")
    print(f"  ELBO            {r['elbo']:10.3f} nats per example ({r['elbo_samples']} samples)")
    print(
        f"  log-likelihood  {r['log_likelihood']:10.3f} nats per example ({r['iw_samples']} importance samples)",
        flush=True,
    )
    # printed first, so a failed write (read-only folder, disk full) does not lose them
    ckpt.write_json(Path(args.run) / "eval.json", r)
    print(f"written to {Path(args.run) / 'eval.json'}")
    from ..runs.tracking import log_metrics

    log_metrics(args.run, {f"{r['split']}_{k}": r[k] for k in ("elbo", "log_likelihood")})  # --logger trackers
    return 0
