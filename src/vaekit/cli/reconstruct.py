"""``vaekit reconstruct``: encode and decode examples of a split."""

from __future__ import annotations

import argparse

EXAMPLES = """\
examples:
  vaekit reconstruct runs/digits -n 16 --output recon.png      # rows: input, reconstruction
  vaekit reconstruct runs/tabular --split test --output recon.npy
  vaekit reconstruct runs/audio -n 4 --output recon.wav        # audio runs: the reconstructed frames
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="reconstruct examples of a split (PNG: inputs above reconstructions; .npy: means; .wav: audio)",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("--split", default="test")
    p.add_argument("-n", type=int, default=16, help="number of examples (default 16; .npy: all with -n 0)")
    p.add_argument("--output", "-o", required=True, metavar="FILE.png|FILE.npy|FILE.wav")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args) -> int:
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ..core import check_data, reconstruct
    from ..runs import load_run, load_split
    from .sample import audio_rate_of, check_output, check_wav, write_values

    out = check_output(args.output)
    if out.suffix.lower() == ".wav":
        check_wav(args.run)
    if args.n < 0:
        raise ValueError(f"-n must be >= 0, got {args.n}.")
    model, pre, cfg = load_run(args.run)
    rows = load_split(cfg, pre, args.split, limit=args.n or None)
    x, xm = rows.x, rows.xm
    check_data(model, xm, f"the {args.split} split")
    s = eqx.filter_jit(reconstruct)(model, jnp.asarray(xm), jax.random.key(args.seed))  # one compiled function
    mean = np.asarray(s.mean, np.float32).reshape(len(x), -1)
    if pre is not None:
        mean = pre.inverse_transform(mean)
    n = len(x)
    shown = (
        np.asarray(xm, np.float32).reshape(n, -1)
        if pre is None or pre.kind in ("binarize", "dynamic")
        else x.reshape(n, -1)
    )
    if out.suffix.lower() in (".npy", ".wav"):
        note = write_values(mean, out, cfg, cols=n)
    elif audio_rate_of(cfg) is not None:  # waveforms: input with the reconstruction over it
        note = write_values(shown, out, cfg, cols=n, overlay=mean, titles=[f"{args.split} row {i}" for i in range(n)])
    else:
        note = write_values(np.concatenate([shown, mean]), out, cfg, cols=n)
    print(f"{n} reconstructions written to {out}" + (f" ({note})" if note else ""))
    return 0
