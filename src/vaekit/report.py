"""Plots and a self-contained ``report.html`` for a run folder.

``make_report(run)`` draws the plots into ``run/plots/`` and writes ``run/report.html``
with the configuration, the final metrics (and ``eval.json`` when present) and every
plot embedded as a base64 PNG, so the page works when copied anywhere.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import jax
import numpy as np

from . import datasets, io as vio, plots
from .run import load_run, read_metrics


def _inverse(pre):
    if pre is None:
        return None
    return lambda a: pre.inverse_transform(np.asarray(a).reshape(a.shape[0], -1)).reshape(a.shape)


def test_data(run: Path, cfg: dict, split: str = "test", limit: int | None = 2000):
    """``(x in model space, y)`` of ``split`` of the run's data (via its preprocessing)."""
    ds = datasets.load(cfg["data"], split, limit=limit, **_kw(cfg))
    return ds, datasets.materialize(ds.x)


def _kw(cfg):
    kw = dict(cfg.get("data_options") or {})
    if cfg.get("label_column"):
        kw["label_column"] = cfg["label_column"]
    return kw


def make_plots(run: str | Path, *, seed: int = 0) -> dict[str, Path]:
    """Draw every plot of the run into ``run/plots``; return ``{title: path}``."""
    run = Path(run)
    model, pre, cfg = load_run(run)
    ds, x = test_data(run, cfg)
    xm = pre.transform(x) if pre is not None else x
    image_shape = ds.meta.get("image_shape")
    inv = _inverse(pre) if pre is not None and pre.kind in ("standardize", "minmax") else None
    out = run / "plots"
    out.mkdir(exist_ok=True)
    k1, k2 = jax.random.split(jax.random.key(seed))
    figs = {}
    history = _history(run)
    figs["Loss curves"] = plots.loss_curves(history, out / "loss.png")
    figs["Latent space (test data)"] = plots.latent_scatter(model, xm, ds.y, out / "latent.png")
    figs["Prior samples: decoder mean, then 3 samples"] = plots.prior_samples(model, k1, out / "samples.png", image_shape=image_shape, inverse=inv)
    figs["Reconstructions: input, then (mean, sample) for 2 latent draws"] = plots.reconstructions(
        model, xm, k2, out / "reconstructions.png", image_shape=image_shape, inverse=inv
    )
    if model.latent_shape == (2,):
        figs["Latent lattice (50 x 50 decoder means)"] = plots.lattice(model, out / "lattice.png", image_shape=image_shape, inverse=inv)
    return figs


def _history(run: Path) -> dict[str, list[float]]:
    h: dict[str, list[float]] = {}
    for row in read_metrics(run):  # tolerates the torn last line a crash leaves
        for k, v in row.items():
            h.setdefault(k, []).append(float("nan") if v is None else v)
    return h


def make_report(run: str | Path) -> Path:
    """Write ``run/report.html`` (plots redrawn); return its path."""
    run = Path(run)
    figs = make_plots(run)
    cfg = vio.read_json(run / "config.json")
    status = vio.read_json(run / vio.META_FILE)
    ev = vio.read_json(run / "eval.json") if (run / "eval.json").is_file() else None
    env = cfg.pop("environment", {})
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in cfg.items())
    env_rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(json.dumps(v))}</td></tr>" for k, v in env.items())
    metrics = dict(status.get("final", {}))
    metrics.pop("time", None)
    metrics["epochs"] = status.get("epochs")
    if ev:
        metrics.update({f"{ev.get('split', 'test')} {k}": v for k, v in ev.items() if k not in ("split",)})
    met_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{v:.4f}</td></tr>" if isinstance(v, float) else f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in metrics.items()
    )
    imgs = ""
    for title, path in figs.items():
        b64 = base64.b64encode(Path(path).read_bytes()).decode()
        imgs += (
            f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{html.escape(title)}</figcaption></figure>\n"
        )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>vaekit run {html.escape(run.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; font-size: 13px; }}
th {{ background: #f4f4f4; }}
figure {{ display: inline-block; margin: 0 1.5em 1.5em 0; vertical-align: top; }}
figure img {{ max-width: 700px; border: 1px solid #ddd; image-rendering: pixelated; }}
figcaption {{ font-size: 13px; color: #555; }}
.cols {{ display: flex; gap: 2em; flex-wrap: wrap; }}
</style></head><body>
<h1>vaekit run <code>{html.escape(run.name)}</code></h1>
<p>Status: {html.escape(str(status.get("status")))}. Data: <code>{html.escape(str(cfg.get("data")))}</code>, model <code>{html.escape(str(cfg.get("model")))}</code>.</p>
<div class="cols">
<div><h2>Final metrics</h2><table>{met_rows}</table></div>
<div><h2>Configuration</h2><table>{rows}</table></div>
<div><h2>Environment</h2><table>{env_rows}</table></div>
</div>
<h2>Plots</h2>
{imgs}
</body></html>
"""
    target = run / "report.html"
    vio.atomic_write(target, lambda f: f.write(page.encode()))
    return target
