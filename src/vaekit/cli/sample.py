"""``vaekit sample``: draw from a trained model's prior and decode."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

EXAMPLES = """\
examples:
  vaekit sample runs/digits -n 64 --output samples.png
  vaekit sample runs/tabular -n 1000 --output samples.npy --kind sample
  vaekit sample runs/audio -n 8 --output samples.wav          # audio runs: frames one after another
  vaekit sample runs/mnist --grid 10x4                        # 10 prior draws: decoder mean + 3 samples each
  vaekit sample runs/digits -n 64 -o gmm.png --sampler gmm    # codes from a Gaussian mixture fitted to the training codes
"""


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "sample",
        help="decode draws from the prior into a PNG, .npy or (audio) .wav file",
        description=textwrap.fill(
            "Draw z from the prior and decode: -n samples to --output, or with --grid "
            "ROWSxCOLS the prior-samples grid of the report (each row one z: its decoder mean, "
            "then COLS-1 samples of p(x|z)).",
            88,
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", metavar="RUN")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument(
        "--output",
        "-o",
        metavar="FILE.png|FILE.npy|FILE.wav",
        help="output file (required without --grid; with --grid default RUN/plots/samples-grid-RxC.png)",
    )
    p.add_argument("--grid", metavar="ROWSxCOLS", help="the prior-samples grid, e.g. 10x4")
    p.add_argument(
        "--kind", choices=("mean", "sample"), default="mean", help="decoder mean (default) or a draw from p(x|z)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--sampler",
        choices=("prior", "gmm"),
        default="prior",
        help="draw codes from the prior (default) or from a Gaussian mixture fitted to the codes "
        "(posterior means) of the run's training data (vk.fit_latent_sampler)",
    )
    p.add_argument("--components", type=int, default=10, help="mixture components for --sampler gmm (default 10)")
    p.set_defaults(func=run)


SUFFIXES = (".png", ".npy", ".wav")


def check_output(path: str, suffixes: tuple[str, ...] = SUFFIXES) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        extra = " (or .wav for audio runs)" if ".wav" in suffixes else ""
        raise ValueError(f"--output must end in .png or .npy{extra}, got {out.name!r}.")
    if not out.parent.exists():
        raise FileNotFoundError(f"The folder of --output {out} does not exist.")
    return out


def image_shape_of(cfg: dict):
    from ..data import datasets

    if audio_rate_of(cfg):
        return None
    if cfg["data"] in ("digits",):
        return (8, 8)
    if cfg["data"] in ("mnist", "fashion-mnist", "binarized-mnist"):
        return (28, 28)
    summary = cfg.get("data_summary") or {}
    if summary.get("kind") in ("image", "binary") and summary.get("image_shape"):
        return tuple(summary["image_shape"])
    p = Path(str(cfg["data"]))
    if p.is_dir():
        return datasets.load(p, "all", limit=1, **(cfg.get("data_options") or {})).meta.get("image_shape")
    return None


def audio_rate_of(cfg: dict) -> int | None:
    """The sample rate of an audio run (``None`` for other data)."""
    summary = cfg.get("data_summary") or {}
    if "kind" in summary:
        return int(summary.get("sample_rate") or 16000) if summary["kind"] == "audio" else None
    p = Path(str(cfg["data"]))
    if p.is_dir() and next(p.rglob("*.wav"), None) is not None:  # runs recorded before data_summary
        from ..data import datasets

        return int(datasets.load(p, "all", limit=1, **(cfg.get("data_options") or {})).meta.get("sample_rate") or 16000)
    return None


def check_wav(run) -> None:
    """Fail before any work when ``.wav`` output is asked of a run that is not audio."""
    from ..training.checkpoints import read_json

    path = Path(run) / "config.json"
    if path.is_file() and audio_rate_of(read_json(path)) is None:
        raise ValueError(
            "WAV output needs an audio run (trained on a folder of WAV files). Use --output FILE.npy or .png."
        )


def write_values(values, out: Path, cfg: dict, *, cols: int, titles=None, overlay=None) -> str:
    """Examples ``values [n, d]`` (data space) to ``out``: .npy array, PNG image grid (or
    waveforms for audio), or a .wav file of the frames one after another (audio runs).

    Returns a note for the user (e.g. how many samples were clipped), or ``""``.
    """
    import numpy as np

    from ..data import datasets
    from ..viz.plots import image_grid, waveforms

    suffix = out.suffix.lower()
    values = np.asarray(values, np.float32).reshape(len(values), -1)
    rate = audio_rate_of(cfg)
    if suffix == ".npy":
        np.save(out, values, allow_pickle=False)
        return ""
    if suffix == ".wav":
        if rate is None:
            raise ValueError(
                "WAV output needs an audio run (trained on a folder of WAV files). Use --output FILE.npy or .png."
            )
        clipped = datasets.write_wav(out, values, rate, gap=0.05)
        note = f"{len(values)} frames of {values.shape[1]} samples at {rate} Hz, 50 ms of silence between them"
        return note + (f"; {clipped} samples outside [-1, 1] were clipped" if clipped else "")
    if rate is not None:
        waveforms(
            values,
            out,
            overlay=overlay,
            titles=titles,
            labels=("input", "reconstruction (mean)") if overlay is not None else ("", ""),
        )
        return f"waveforms of the first {min(len(values), 12)}" if len(values) > 12 else ""
    image_grid(values, out, image_shape_of(cfg), cols=cols)
    return ""


def parse_grid(text: str) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"--grid must be ROWSxCOLS like 10x4, got {text!r}.") from None
    if rows < 1 or cols < 1 or rows * cols > 10000:
        raise ValueError(f"--grid needs 1..10000 cells with positive ROWS and COLS, got {text!r}.")
    return rows, cols


def run(args) -> int:
    import equinox as eqx
    import jax
    import numpy as np

    from .._validate import positive_int
    from ..core import sample
    from ..runs import load_run

    if args.grid:
        return run_grid(args)
    if args.output is None:
        raise ValueError(
            "--output is required (FILE.png, FILE.npy, or FILE.wav for audio runs), unless --grid is given."
        )
    positive_int(args.n, "-n")
    out = check_output(args.output)
    if out.suffix.lower() == ".wav":
        check_wav(args.run)
    model, pre, cfg = load_run(args.run)
    classes = None
    if getattr(args, "sampler", "prior") == "gmm":
        s = gmm_samples(model, pre, cfg, args)
    else:
        classes = getattr(model, "num_classes", None) if hasattr(model, "given") else None
        y = None if classes is None else np.arange(args.n) % classes  # a conditional run: the classes in turn
        s = eqx.filter_jit(sample)(model, jax.random.key(args.seed), args.n, y)  # one compiled function
    v = np.asarray(s.mean if args.kind == "mean" else s.x, np.float32)
    v = v.reshape(args.n, -1)
    if pre is not None:
        v = pre.inverse_transform(v)
    note = write_values(v, out, cfg, cols=int(np.ceil(np.sqrt(args.n))))
    per = f"; sample i has class i % {classes}" if classes is not None else ""
    print(f"{args.n} samples written to {out}" + (f" ({note})" if note else "") + per)
    return 0


def gmm_samples(model, pre, cfg, args):
    """``args.n`` samples from a Gaussian mixture fitted to the training codes (announced)."""
    import jax

    from ..runs import load_split
    from ..zoo.samplers import fit_latent_sampler

    x = load_split(cfg, pre, "train", limit=cfg.get("limit")).xm
    sampler = fit_latent_sampler(model, x, n_components=args.components, seed=args.seed)
    print(
        f"codes from a {args.components}-component Gaussian mixture fitted to the posterior means of "
        f"{len(x)} training examples (--sampler prior draws from the model's prior)"
    )
    return sampler.generate(model, jax.random.key(args.seed), args.n)


def run_grid(args) -> int:
    import jax

    from ..runs import load_run
    from ..viz.plots import prior_samples
    from ..viz.report import display_inverse

    rows, cols = parse_grid(args.grid)
    if getattr(args, "sampler", "prior") != "prior":
        raise ValueError("--grid draws from the prior; use -n N --output FILE with --sampler gmm.")
    run_dir = Path(args.run)
    out = check_output(args.output, (".png",)) if args.output else run_dir / "plots" / f"samples-grid-{rows}x{cols}.png"
    model, pre, cfg = load_run(run_dir)
    out.parent.mkdir(exist_ok=True)
    inv = display_inverse(pre)
    prior_samples(
        model,
        jax.random.key(args.seed),
        out,
        image_shape=image_shape_of(cfg),
        inverse=inv,
        rows=rows,
        cols=cols,
        audio=audio_rate_of(cfg) is not None,
    )
    print(
        f"{rows}x{cols} grid of prior samples (each row one z: decoder mean, then {cols - 1} samples) written to {out}"
    )
    return 0
