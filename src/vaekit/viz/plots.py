"""Plots of a trained model, written as PNG files (matplotlib; the backend is left alone).

Image grids are assembled as arrays and written with ``imsave`` so that their pixel
size is exact (the 50 x 50 lattice of 28 x 28 images is 1400 x 1400 pixels). Audio
frames are drawn as waveforms (figures of fixed size, whatever the frame length); other
data that are not images as one-row strips of their features or small line plots.
"""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validate import int_at_least, positive
from ..core import AbstractVAE, decoder_mean, on_simplex, reconstruct
from . import latent as latent_plots
from ._matplotlib import pyplot

# The plots run each model computation as one compiled function: op-by-op dispatch
# would compile every small operation separately (seconds for a report).
_reconstruct = eqx.filter_jit(reconstruct)


@eqx.filter_jit
def _prior_draws(model: AbstractVAE, key, rows: int, ns: int):
    kz, kx = jax.random.split(key)
    z = model.prior_dist().sample(kz, (rows,))
    xs = model.likelihood(z).sample(kx, (ns,)) if ns else None
    return model.decoder.mean(z), xs


def as_tiles(x: np.ndarray, image_shape) -> np.ndarray:
    """``[..., d]`` examples as images ``[..., h, w(, 3)]`` (a 1 x d strip for non-images)."""
    shape = tuple(image_shape) if image_shape else (1, x.shape[-1])
    return x.reshape(*x.shape[:-1], *shape) if x.ndim >= 2 else x.reshape(shape)


def grid(images: np.ndarray, pad: int = 1, scale: int = 1) -> np.ndarray:
    """``[rows, cols, h, w(, 3)]`` images as one ``[H, W(, 3)]`` array with ``pad`` gaps."""
    rows, cols, h, w = images.shape[:4]
    extra = images.shape[4:]
    if scale > 1:
        images = images.repeat(scale, 2).repeat(scale, 3)
        h, w = h * scale, w * scale
    out = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, *extra), np.float32)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = pad + r * (h + pad), pad + c * (w + pad)
            out[y0 : y0 + h, x0 : x0 + w] = images[r, c]
    return out


def to_unit(x: np.ndarray, is_image: bool) -> np.ndarray:
    """Values to ``[0, 1]``: clipped for images, min-max scaled otherwise."""
    x = np.asarray(x, np.float32)
    if is_image:
        return np.clip(x, 0, 1)
    lo, hi = np.nanmin(x), np.nanmax(x)
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def save_image(arr: np.ndarray, path: Path) -> Path:
    """Write ``arr [H, W(, 3)]`` in ``[0, 1]`` as a PNG of exactly that many pixels."""
    plt = pyplot()
    kw = {} if arr.ndim == 3 else {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    plt.imsave(path, arr, **kw)
    return path


def tile_scale(image_shape) -> int:
    """How many pixels each pixel of a tile takes (small images are enlarged)."""
    h = image_shape[0] if image_shape else 1
    return max(1, 56 // max(1, h)) if image_shape else 8


def _flat(x) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


def prior_samples(
    model: AbstractVAE, key, path, *, image_shape=None, inverse=None, rows: int = 10, cols: int = 4, audio: bool = False
) -> Path:
    """``rows`` prior draws ``z``, each a row: the decoder mean, then ``cols - 1`` samples of p(x|z).

    Audio (``audio=True``): one panel per draw with the decoder mean and one sample as waveforms.
    """
    if rows < 1 or cols < 1:
        raise ValueError(f"The grid needs at least 1 row and 1 column, got {rows}x{cols}.")
    ns = max(cols - 1, 1 if audio else 0)
    mean, xs = _prior_draws(model, key, rows, ns)
    mean = _flat(mean)
    inv = inverse or (lambda a: a)
    if ns:
        xs = _flat(np.moveaxis(np.asarray(xs), 0, 1).reshape(rows * ns, -1))
        xs = inv(xs).reshape(rows, ns, -1)
    if audio:
        return waveforms(
            xs[:, 0],
            path,
            overlay=inv(mean),
            labels=("sample", "decoder mean"),
            titles=[f"prior draw {i + 1}" for i in range(rows)],
        )
    parts = [inv(mean)[:, None]] + ([xs[:, : cols - 1]] if cols > 1 else [])
    arr = np.concatenate(parts, axis=1)  # [rows, cols, d]
    tiles = as_tiles(to_unit(arr, image_shape is not None), image_shape)
    return save_image(grid(tiles, scale=tile_scale(image_shape)), Path(path))


def prior_sample_grid(
    model: AbstractVAE, key, path, *, image_shape=None, inverse=None, draws: int = 10, samples: int = 3, blocks: int = 2
) -> Path:
    """The report's prior samples: ``draws`` prior draws ``z``, each a row labelled
    ``draw k`` with the decoder mean and ``samples`` samples of p(x|z) in labelled columns,
    laid out as ``blocks`` side-by-side blocks of rows (a wide grid, not a tall strip)."""
    plt = pyplot()
    mean, xs = _prior_draws(model, key, draws, samples)
    inv = inverse or (lambda a: a)
    mean = inv(_flat(mean))
    xs = inv(_flat(np.moveaxis(np.asarray(xs), 0, 1).reshape(draws * samples, -1))).reshape(draws, samples, -1)
    arr = np.concatenate([mean[:, None], xs], axis=1)  # [draws, 1 + samples, d]
    tiles = as_tiles(to_unit(arr, image_shape is not None), image_shape)
    per = -(-draws // blocks)
    scale = tile_scale(image_shape)
    h, w = tiles.shape[2] * scale, tiles.shape[3] * scale
    cols = samples + 1
    fig, axes = plt.subplots(
        1, blocks, figsize=(blocks * (cols * (w + 1) + 90) / 100, (per * (h + 1) + 50) / 100), dpi=100, squeeze=False
    )
    names = ["mean"] + [f"sample {i + 1}" for i in range(samples)]
    for b, ax in enumerate(axes[0]):
        part = tiles[b * per : (b + 1) * per]
        if not len(part):
            ax.axis("off")
            continue
        img = grid(part, scale=scale)
        ax.imshow(img, cmap=None if img.ndim == 3 else "gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([1 + (w + 1) * c + w / 2 for c in range(cols)], names, fontsize=8)
        ax.xaxis.tick_top()
        ax.set_yticks(
            [1 + (h + 1) * r + h / 2 for r in range(len(part))],
            [f"draw {b * per + r + 1}" for r in range(len(part))],
            fontsize=8,
        )
        ax.tick_params(length=0)
        for side in ax.spines.values():
            side.set_visible(False)
    fig.tight_layout(pad=0.3)
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def reconstructions(
    model: AbstractVAE,
    x,
    key,
    path,
    *,
    image_shape=None,
    inverse=None,
    n: int = 4,
    draws: int = 2,
    audio: bool = False,
    titles=None,
) -> Path:
    """Rows of ``x``, then (decoder mean, decoder sample) for each of ``draws`` latent draws.

    Audio (``audio=True``): one panel per row with the input and the decoder mean of one draw.
    """
    x = np.asarray(x[:n], np.float32)
    inv = inverse or (lambda a: a)
    if audio:
        s = _reconstruct(model, jnp.asarray(x), key)
        return waveforms(
            inv(_flat(x)), path, overlay=inv(_flat(s.mean)), labels=("input", "reconstruction (mean)"), titles=titles
        )
    cols = [_flat(x)]
    for k in jax.random.split(key, draws):
        s = _reconstruct(model, jnp.asarray(x), k)
        cols += [_flat(s.mean), _flat(s.x)]
    arr = np.stack([inv(c) for c in cols], axis=1)  # [n, 1 + 2 * draws, d]
    tiles = as_tiles(to_unit(arr, image_shape is not None), image_shape)
    return save_image(grid(tiles, scale=tile_scale(image_shape)), Path(path))


def lattice_points(size: int = 50, span: float | None = None) -> np.ndarray:
    """The ``size`` coordinates of the lattice along each latent axis: ``linspace(-span,
    span)``, or the standard normal's quantiles at ``(i + 1/2) / size`` when ``span`` is None."""
    size = int_at_least(size, 2, "The lattice size")
    if span is None:
        from scipy.stats import norm

        return norm.ppf(np.linspace(0.5 / size, 1 - 0.5 / size, size)).astype(np.float32)
    span = positive(span, "The lattice range r (z in [-r, r]^2)")
    return np.linspace(-span, span, size).astype(np.float32)


def lattice(
    model: AbstractVAE, path, *, image_shape=None, inverse=None, size: int = 50, span: float | None = None
) -> Path:
    """Decoder means on a ``size x size`` grid of 2-D latents (see :func:`lattice_points`).

    Images are tiled; other data (audio, tables) are drawn as small line plots on a
    grid of at most 10 x 10 points.
    """
    if model.latent_shape != (2,):
        raise ValueError(f"The latent lattice needs a 2-D latent, this model's is {model.latent_shape}.")
    if image_shape is None:
        size = min(size, 10)
    q = lattice_points(size, span)
    zy, zx = np.meshgrid(q[::-1], q, indexing="ij")  # z2 grows upwards
    z = jnp.asarray(np.stack([zx.ravel(), zy.ravel()], -1))
    mean = _flat(decoder_mean(model, z))
    mean = (inverse or (lambda a: a))(mean).reshape(size, size, -1)
    if image_shape is None:
        return line_grid(mean, path, row_values=q[::-1], col_values=q)
    tiles = as_tiles(to_unit(mean, True), image_shape)
    scale = max(1, 28 // image_shape[0])  # small images: 28 px tiles
    return save_image(grid(tiles, pad=0, scale=scale), Path(path))


def waveforms(x, path, *, overlay=None, labels=("", ""), titles=None, max_rows: int = 12) -> Path:
    """Rows of ``x [n, T]`` (at most ``max_rows``) as waveforms stacked in one axes, optionally
    with ``overlay [n, T]`` drawn over them; 1000 px wide and 70 px per row whatever ``T`` is."""
    from matplotlib.collections import LineCollection

    plt = pyplot()
    x = _flat(np.asarray(x, np.float32))[:max_rows]
    n, length = x.shape
    ov = None if overlay is None else _flat(np.asarray(overlay, np.float32))[:max_rows]
    both = x if ov is None else np.concatenate([x, ov])
    amp = float(np.nanmax(np.abs(both))) or 1.0
    t = np.arange(length)
    fig, ax = plt.subplots(figsize=(10, 0.8 + 0.7 * n), dpi=100)
    offsets = (n - 1 - np.arange(n)) * 2.2 * amp
    ax.add_collection(
        LineCollection(
            [np.stack([t, x[i] + offsets[i]], -1) for i in range(n)],
            colors="0.35",
            linewidths=0.7,
            label=labels[0] or None,
        )
    )
    if ov is not None:
        ax.add_collection(
            LineCollection(
                [np.stack([t, ov[i] + offsets[i]], -1) for i in range(n)],
                colors="C0",
                linewidths=0.7,
                alpha=0.85,
                label=labels[1] or None,
            )
        )
        if any(labels):
            ax.legend(fontsize=7, loc="upper right")
    ax.set_xlim(0, max(1, length - 1))
    ax.set_ylim(-1.2 * amp, offsets[0] + 1.2 * amp)
    names = [str(titles[i]) if titles is not None and i < len(titles) else f"row {i + 1}" for i in range(n)]
    ax.set_yticks(offsets, names, fontsize=7)
    ax.set_xlabel("sample index", fontsize=8)
    ax.set_title(f"waveforms (rows spaced by {2.2 * amp:.3g})", fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def line_grid(values, path, *, row_values=None, col_values=None) -> Path:
    """``values [rows, cols, d]`` as a grid of small line plots with a shared y range, drawn
    in one axes (fast), at most 1000 x 1000 px; the axes are labelled with the values."""
    from matplotlib.collections import LineCollection

    plt = pyplot()
    v = np.asarray(values, np.float32)
    rows, cols, d = v.shape
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    scaled = (v - lo) / (hi - lo) if hi > lo else np.full_like(v, 0.5)
    t = np.linspace(0.05, 0.95, d) if d > 1 else np.array([0.5])
    segs = [np.stack([c + t, rows - 1 - r + 0.05 + 0.9 * scaled[r, c]], -1) for r in range(rows) for c in range(cols)]
    fig, ax = plt.subplots(figsize=(min(10, 1.0 * cols + 1), min(10, 1.0 * rows + 1)), dpi=100)
    ax.add_collection(LineCollection(segs, linewidths=0.7))
    for k in range(rows + 1):
        ax.axhline(k, color="0.85", lw=0.5)
    for k in range(cols + 1):
        ax.axvline(k, color="0.85", lw=0.5)
    ax.set_xlim(0, cols)
    ax.set_ylim(0, rows)
    if col_values is not None:
        ax.set_xticks(np.arange(cols) + 0.5, [f"{c:.2g}" for c in col_values], fontsize=7)
        ax.set_xlabel("z1")
    if row_values is not None:
        ax.set_yticks(np.arange(rows) + 0.5, [f"{r:.2g}" for r in row_values[::-1]], fontsize=7)
        ax.set_ylabel("z2")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def strip(values, path, *, image_shape=None, audio: bool = False, titles=None) -> Path:
    """``values [n, d]`` side by side: image tiles in one row, else stacked line plots."""
    v = _flat(np.asarray(values, np.float32))
    if image_shape is None and audio:
        return waveforms(v, path, titles=titles)
    if image_shape is None:  # table rows: one line per point of the path, coloured by order
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
        cmap = plt.get_cmap("viridis")
        for i, row in enumerate(v):
            ax.plot(
                np.arange(v.shape[1]),
                row,
                marker=".",
                lw=1,
                color=cmap(i / max(1, len(v) - 1)),
                label=None if titles is None else str(titles[i]),
            )
        ax.set_xlabel("feature")
        ax.set_ylabel("value")
        if titles is not None:
            ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return Path(path)
    tiles = as_tiles(to_unit(v[None], True), image_shape)
    return save_image(grid(tiles, scale=tile_scale(image_shape)), Path(path))


def choose_rows(n: int, labels=None, k: int = 2000, seed: int = 0) -> np.ndarray:
    """``min(k, n)`` row indices drawn at random with a fixed ``seed``, never the first rows.

    With ``labels`` the draw is stratified: each class gets a share proportional to its
    size (at least one row), and the rows are ordered round-robin over the classes, so
    that the first ``c`` rows cover ``c`` different classes.
    """
    rng = np.random.default_rng(seed)
    k = min(int(k), int(n))
    if labels is None:
        return rng.permutation(n)[:k]
    y = np.asarray(labels)[:n]
    classes = np.unique(y)
    pools = [rng.permutation(np.flatnonzero(y == c)) for c in classes]
    share = [max(1, int(round(k * len(p) / n))) for p in pools]
    picked = [p[:s] for p, s in zip(pools, share)]
    order = []
    for i in range(max(len(p) for p in picked)):
        order += [int(p[i]) for p in picked if i < len(p)]
    return np.asarray(order[:k], np.int64)


def latent_scatter(model: AbstractVAE, x, y, path, *, max_points: int = 5000) -> Path:
    """The report's latent plot: :func:`vaekit.plot_latent` of the first ``max_points``
    rows of ``x`` coloured by ``y``, with a title, saved to ``path``."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 6.2), dpi=100)  # readable next to the loss curves
    latent_plots.plot_latent(model, x, y, ax=ax, s=9.0, max_points=max_points)
    if on_simplex(model):
        k = int(np.prod(model.latent_shape))
        ax.set_title(f"Posterior means on the simplex (K={k})")
    else:
        ax.set_title("Posterior means of q(z|x)" + ("" if y is not None else " (no labels)"))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def image_grid(values, path, image_shape, cols: int) -> Path:
    """Examples ``values [n, d]`` (in ``[0, 1]``) as a PNG grid of ``cols`` columns."""
    if image_shape is None:
        raise ValueError("PNG output needs image data; this run's data are not images. Use --output FILE.npy.")
    n = len(values)
    rows = -(-n // cols)
    flat = np.asarray(values, np.float32).reshape(n, -1)
    pad = np.ones((rows * cols - n, flat.shape[1]), np.float32)
    tiles = as_tiles(to_unit(np.concatenate([flat, pad]).reshape(rows, cols, -1), True), image_shape)
    return save_image(grid(tiles, scale=tile_scale(image_shape)), Path(path))


def loss_curves(history: dict[str, list[float]], path) -> Path:
    """Training and validation loss (negative ELBO, nats per example) per epoch."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for k, label in (("train_loss", "train"), ("val_loss", "validation")):
        v = history.get(k) or []
        if v:
            ax.plot(np.arange(1, len(v) + 1), v, marker="." if len(v) < 50 else None, label=label)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)  # whole epochs
    ax.set_ylabel("loss (nats per example)")
    ax.set_title("Loss curves")
    if any(history.get(k) for k in ("train_loss", "val_loss")):
        ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
