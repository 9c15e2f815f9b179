"""Plots and a self-contained ``report.html`` for a run folder.

``make_report(run)`` draws the plots into ``run/plots/`` and writes ``run/report.html``:
a summary first (data, model, headline numbers from ``vaekit.json`` and ``eval.json``,
the loss curves and the latent space), then the other plots, then the final metrics,
the configuration and the environment in collapsible sections. Every plot is embedded
as a base64 PNG, so the page works when copied anywhere.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from ..core import interpolate, on_simplex
from ..data import Preprocessor, datasets
from ..runs import load_run, load_split, read_metrics
from ..training import checkpoints as ckpt
from . import plots


def display_inverse(pre: Preprocessor | None) -> Callable[[np.ndarray], np.ndarray] | None:
    """Model space -> data space for showing values (``[n, ...]`` arrays), when the
    preprocessing can be undone (``standardize``, ``minmax``, ``scale``, ``clip``); else None."""
    if pre is None or pre.kind not in ("standardize", "minmax", "scale", "clip"):
        return None
    return lambda a: pre.inverse_transform(np.asarray(a).reshape(a.shape[0], -1)).reshape(a.shape)


def plot_split(cfg: dict) -> str:
    """The split the plots show: ``test`` when the data have one."""
    sp = datasets.splits(cfg["data"])
    return "test" if "test" in sp else sp[0]


def is_audio(cfg: dict, meta: dict | None = None) -> bool:
    """Whether the run's data are audio frames (recorded in config.json, else from the dataset)."""
    kind = (cfg.get("data_summary") or {}).get("kind")
    if kind is not None:
        return kind == "audio"
    return bool((meta or {}).get("audio"))


def _rows_text(rows, y) -> str:
    if y is None:
        return ", ".join(str(int(r)) for r in rows)
    return ", ".join(f"{int(r)} (label {v})" for r, v in zip(rows, y))


def make_plots(
    run: str | Path,
    *,
    seed: int = 0,
    lattice_range: float | None = None,
    lattice_size: int = 50,
    n_rows: int = 2000,
) -> dict[str, Path]:
    """Draw every plot of the run into ``run/plots``; return ``{caption: path}``.

    The plots use ``n_rows`` rows of the test split drawn at random with ``seed``
    (stratified by label when the split has labels), never the first rows, and each
    caption says which rows and labels it shows. ``plots/plots.json`` records the rows.

    :param lattice_range: the lattice covers ``z in [-r, r]^2``; default: the standard
        normal's quantiles.
    """
    run = Path(run)
    model, pre, cfg = load_run(run)
    split = plot_split(cfg)
    shown = load_split(cfg, pre, split, rows=lambda n, labels: plots.choose_rows(n, labels, n_rows, seed))
    ds, rows, xm, y = shown.dataset, shown.rows, shown.xm, shown.y
    n = datasets.n_examples(ds.x)
    audio = is_audio(cfg, ds.meta)
    image_shape = None if audio else ds.meta.get("image_shape")
    inv = display_inverse(pre)
    out = run / "plots"
    out.mkdir(exist_ok=True)
    k1, k2 = jax.random.split(jax.random.key(seed))
    figs = {}
    manifest: dict = {"split": split, "n_split": n, "seed": seed, "rows": rows.tolist()}
    how = f"{len(rows)} of the {n} {split} rows, drawn at random (seed {seed})"
    if y is not None:
        classes = np.unique(y)
        how += f", stratified by label; colours are the labels ({len(classes)} classes)"
        manifest["labels_shown"] = classes.tolist()
    else:
        how += "; this split has no labels, so the points are not coloured"
        manifest["labels_shown"] = None
    hist = _history(run)
    n_ep = len(hist.get("train_loss", []))
    figs[
        f"Loss curves: negative ELBO per example (nats) over epochs 1-{n_ep}, on the training rows and the held-out validation rows"
    ] = plots.loss_curves(hist, out / "loss.png")
    where = (
        "on the simplex"
        if on_simplex(model)
        else ("(first two principal components)" if int(np.prod(model.latent_shape)) > 2 else "")
    )
    classes = getattr(model, "num_classes", None) if hasattr(model, "given") else None
    if classes is not None:  # a conditional run (cvae, m2): every plot is of p(x|z, y) for given labels
        if y is None:
            raise ValueError(
                f"the {split} split has no labels, but this run's model is conditional on them: "
                "report on a split with labels (the run's data must carry labels)."
            )
        return _conditional_plots(
            model, xm, y, rows, out, figs, manifest, how, where, k1, k2, split, seed, classes, image_shape, inv
        )
    figs[f"Latent space: posterior means {where} of {how}".replace("  ", " ")] = plots.latent_scatter(
        model, xm, y, out / "latent.png"
    )
    if audio:
        figs["Prior samples: decoder mean and one sample of p(x|z) for each of 10 prior draws"] = plots.prior_samples(
            model, k1, out / "samples.png", image_shape=image_shape, inverse=inv, audio=audio
        )
    else:
        figs[
            f"Prior samples: 10 draws z ~ p(z) (seed {seed}); each row is one draw: the decoder mean, then 3 samples of p(x|z)"
        ] = plots.prior_sample_grid(model, k1, out / "samples.png", image_shape=image_shape, inverse=inv)
    rec = rows[:4]
    manifest["reconstruction_rows"] = rec.tolist()
    rec_y = None if y is None else y[:4]
    rec_caption = f"Reconstructions of {split} rows {_rows_text(rec, rec_y)}: " + (
        "input and the decoder mean of one latent draw"
        if audio
        else "input, then (decoder mean, sample) for 2 latent draws"
    )
    figs[rec_caption] = plots.reconstructions(
        model,
        xm,
        k2,
        out / "reconstructions.png",
        image_shape=image_shape,
        inverse=inv,
        audio=audio,
        titles=[
            f"{split} row {int(r)}" + ("" if rec_y is None else f" (label {v})")
            for r, v in zip(rec, rec_y if rec_y is not None else [None] * 4)
        ],
    )
    if len(rows) >= 2:
        i, j = 0, 1
        path = interpolate(model, xm[i], xm[j], n=10)
        manifest["interpolation_rows"] = [int(rows[i]), int(rows[j])]
        ends = _rows_text(rows[[i, j]], None if y is None else y[[i, j]])
        figs[
            f"Interpolation between {split} rows {ends}: decoder means at 10 points on the straight line between their posterior means"
        ] = plots.strip(
            inv(np.asarray(path.mean)) if inv else np.asarray(path.mean),
            out / "interpolation.png",
            image_shape=image_shape,
            audio=audio,
            titles=[f"t = {t:.2f}" for t in np.linspace(0, 1, 10)],
        )
    if model.latent_shape == (2,) and not on_simplex(model):
        size = lattice_size if image_shape is not None else min(lattice_size, 10)
        q = plots.lattice_points(size, lattice_range)
        span = (
            f"z in [{-lattice_range:g}, {lattice_range:g}]²"
            if lattice_range
            else f"z at the standard normal's quantiles ({q[0]:.2f} to {q[-1]:.2f})"
        )
        manifest["lattice"] = {"size": size, "range": lattice_range}
        figs[f"Latent lattice: {size} x {size} decoder means, {span}"] = plots.lattice(
            model, out / "lattice.png", image_shape=image_shape, inverse=inv, size=size, span=lattice_range
        )
    manifest["captions"] = {title: Path(p).name for title, p in figs.items()}
    ckpt.write_json(out / "plots.json", manifest)
    return figs


def _conditional_plots(
    model, xm, y, rows, out, figs, manifest, how, where, k1, k2, split, seed, classes, image_shape, inv
) -> dict[str, Path]:
    """The plots of a conditional run: the latent space of q(z|x, y) at the rows' own
    labels, prior samples per class (row k: class k mod C) and reconstructions; no
    lattice or interpolation (they would need one label for the whole picture)."""
    y = np.asarray(y).astype(int)
    figs[f"Latent space: posterior means of q(z|x, y) at each row's label {where} of {how}".replace("  ", " ")] = (
        plots.latent_scatter(model.given(y), xm, y, out / "latent.png")
    )
    per_class = np.arange(10) % classes
    figs[
        f"Prior samples per class: 10 draws z ~ p(z) (seed {seed}); row k is decoded with label {{k mod {classes}}}"
        " (labels " + ", ".join(str(int(c)) for c in per_class) + "): the decoder mean, then 3 samples of p(x|z, y)"
    ] = plots.prior_sample_grid(model.given(per_class), k1, out / "samples.png", image_shape=image_shape, inverse=inv)
    manifest["sample_labels"] = per_class.tolist()
    rec, rec_y = rows[:4], y[:4]
    manifest["reconstruction_rows"] = rec.tolist()
    figs[
        f"Reconstructions of {split} rows {_rows_text(rec, rec_y)} given their labels: input, then (decoder mean, "
        "sample) for 2 latent draws"
    ] = plots.reconstructions(
        model.given(rec_y),
        xm[:4],
        k2,
        out / "reconstructions.png",
        image_shape=image_shape,
        inverse=inv,
        titles=[f"{split} row {int(r)} (label {v})" for r, v in zip(rec, rec_y)],
    )
    manifest["captions"] = {title: Path(p).name for title, p in figs.items()}
    ckpt.write_json(out / "plots.json", manifest)
    return figs


def _history(run: Path) -> dict[str, list[float]]:
    h: dict[str, list[float]] = {}
    for row in read_metrics(run):  # tolerates the torn last line a crash leaves
        for k, v in row.items():
            h.setdefault(k, []).append(float("nan") if v is None else v)
    return h


def _cell(v, floats: bool) -> str:
    if floats and isinstance(v, float):
        return f"{v:.4f}"
    return html.escape(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))


def _table(d: dict, floats: bool = False) -> str:
    """``d`` as a two-column table; ``floats``: numbers with 4 decimals, else as recorded (JSON)."""
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_cell(v, floats)}</td></tr>" for k, v in d.items())
    return f"<table>{rows}</table>"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _figure(title: str, path, cls: str = "") -> str:
    b64 = base64.b64encode(Path(path).read_bytes()).decode()
    return (
        f'<figure class="{cls}"><img alt="{html.escape(title)}" src="data:image/png;base64,{b64}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>\n"
    )


def _headline(status: dict, ev: dict | None, hist: dict) -> list[tuple[str, str, str]]:
    """``(label, value, note)`` of the numbers a reader wants first."""
    tiles = []
    if ev:
        where = f"{ev.get('split', 'test')}, {ev.get('n')} rows"
        tiles.append((f"{ev.get('split', 'test')} ELBO", f"{ev['elbo']:.2f}", f"nats per example ({where})"))
        tiles.append(
            ("log-likelihood", f"{ev['log_likelihood']:.2f}", f"nats, {ev.get('iw_samples')} importance samples")
        )
    else:
        tiles.append(("test ELBO", "n/a", "not evaluated yet: vaekit evaluate RUN"))
    final = status.get("final", {})
    for key, label in (("train_loss", "final train loss"), ("val_loss", "final validation loss")):
        if isinstance(final.get(key), float):
            tiles.append((label, f"{final[key]:.2f}", "negative ELBO, nats per example"))
    epochs = status.get("epochs")
    tiles.append(
        ("epochs", str(epochs), "stopped early" if status.get("stopped_early") else str(status.get("status", "")))
    )
    times = [t for t in hist.get("time", []) if isinstance(t, float) and math.isfinite(t)]
    tiles.append(("training time", _duration(sum(times)), f"{len(times)} epochs timed"))
    tiles.append(("skipped steps", str(status.get("skipped_steps", 0) or 0), "non-finite loss or gradient"))
    return tiles


def make_report(run: str | Path, *, lattice_range: float | None = None, lattice_size: int = 50, seed: int = 0) -> Path:
    """Write ``run/report.html`` (plots redrawn, see :func:`make_plots`); return its path.

    The page opens with a summary (data, model, the headline numbers, the loss curves and
    the latent space), then the other plots; the configuration, the final metrics and the
    environment come last, in collapsible sections. Every image is embedded (base64), so
    the page is one self-contained file.
    """
    run = Path(run)
    figs = make_plots(run, lattice_range=lattice_range, lattice_size=lattice_size, seed=seed)
    cfg = ckpt.read_json(run / "config.json")
    status = ckpt.read_json(run / ckpt.META_FILE)
    notice = (cfg.get("defaults_chosen") or {}).get("notice")
    ev = ckpt.read_json(run / "eval.json") if (run / "eval.json").is_file() else None
    env = cfg.pop("environment", {})
    hist = _history(run)
    metrics = dict(status.get("final", {}))
    metrics.pop("time", None)
    metrics["epochs"] = status.get("epochs")
    if ev:
        metrics.update({f"{ev.get('split', 'test')} {k}": v for k, v in ev.items() if k not in ("split",)})
    summary = cfg.get("data_summary") or {}
    spec = (cfg.get("model_spec") or {}).get("options", {})
    pre = (cfg.get("defaults_chosen") or {}).get("preprocessing") or cfg.get("preprocessing")
    data_line = f"<b>Data</b> <code>{html.escape(str(cfg.get('data')))}</code>"
    if summary.get("description"):
        data_line += f": {html.escape(summary['description'])}"
    data_line += f"; preprocessing {html.escape(str(pre))}, {cfg.get('val_fraction', 0):.0%} of the training rows held out for validation."
    model_bits = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in spec.items())
    model_line = f"<b>Model</b> <code>{html.escape(str(cfg.get('model')))}</code>" + (
        f" ({html.escape(model_bits)})" if model_bits else ""
    )
    model_line += f", batch size {cfg.get('batch_size')}, learning rate {cfg.get('lr')}, seed {cfg.get('seed')}."
    tiles = "".join(
        f'<div class="tile"><div class="label">{html.escape(a)}</div><div class="value">{html.escape(b)}</div>'
        f'<div class="note">{html.escape(c)}</div></div>'
        for a, b, c in _headline(status, ev, hist)
    )
    key_plots, more = "", ""
    for title, path in figs.items():
        stem = Path(path).stem
        if stem in ("loss", "latent"):
            key_plots += _figure(title, path, "key")
        else:
            more += _figure(title, path, "wide" if stem == "lattice" else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaekit run {html.escape(run.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em 1.5em; color: #222; }}
h1 {{ font-size: 22px; margin: 0 0 4px 0; }}
h2 {{ font-size: 18px; margin: 1.2em 0 0.5em 0; }}
p {{ margin: 3px 0; font-size: 14px; }}
.notice {{ color: #555; font-size: 13px; }}
.tiles {{ display: flex; flex-wrap: wrap; gap: 8px; margin: 10px 0; }}
.tile {{ border: 1px solid #ccd; border-radius: 4px; padding: 4px 10px; min-width: 120px; background: #f7f8fb; }}
.tile .label {{ font-size: 12px; color: #555; }}
.tile .value {{ font-size: 22px; font-weight: bold; }}
.tile .note {{ font-size: 11px; color: #777; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }}
th {{ background: #f4f4f4; }}
figure {{ display: inline-block; margin: 0 1.2em 1.2em 0; vertical-align: top; }}
figure img {{ max-width: 700px; border: 1px solid #ddd; image-rendering: pixelated; }}
figure.key img {{ width: 590px; max-width: 46vw; image-rendering: auto; }}
figure.key figcaption {{ max-width: 590px; }}
figure.wide img {{ width: 900px; max-width: 95vw; }}
figure.wide figcaption {{ max-width: 900px; }}
figcaption {{ font-size: 13px; color: #555; max-width: 700px; }}
details {{ margin: 0.4em 0; }}
summary {{ cursor: pointer; font-weight: bold; }}
</style></head><body>
<section id="summary">
<h1>vaekit run <code>{html.escape(run.name)}</code> <small>({html.escape(str(status.get("status")))})</small></h1>
<p>{data_line}</p>
<p>{model_line}</p>
{f'<p class="notice">{html.escape(notice)}</p>' if notice else ""}
<div class="tiles" id="headline">{tiles}</div>
<div id="key-plots">{key_plots}</div>
</section>
<section id="plots"><h2>Samples, reconstructions and the latent space</h2>
{more}</section>
<section id="details"><h2>Details</h2>
<details id="metrics"><summary>All final metrics</summary>{_table(metrics, floats=True)}</details>
<details id="config"><summary>Configuration ({len(cfg)} keys, as recorded in config.json)</summary>{_table(cfg)}</details>
<details id="environment"><summary>Environment</summary>{_table(env)}</details>
</section>
</body></html>
"""
    target = run / "report.html"
    ckpt.atomic_write(target, lambda f: f.write(page.encode()))
    from ..runs.tracking import log_images

    log_images(run, {Path(p).stem: p for p in figs.values()})  # artifacts of the run's --logger trackers
    return target
