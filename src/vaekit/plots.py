"""Plots of a trained model (matplotlib, Agg backend), written as PNG files.

Image grids are assembled as arrays and written with ``imsave`` so that their pixel
size is exact (the 50 x 50 lattice of 28 x 28 images is 1400 x 1400 pixels). Data that
are not images are drawn as one-row strips of their features.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .model import VAE, encode, reconstruct, sample


def _mpl():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _tiles(x: np.ndarray, image_shape) -> np.ndarray:
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


def _display(x: np.ndarray, is_image: bool) -> np.ndarray:
    """Values to ``[0, 1]``: clipped for images, min-max scaled otherwise."""
    x = np.asarray(x, np.float32)
    if is_image:
        return np.clip(x, 0, 1)
    lo, hi = np.nanmin(x), np.nanmax(x)
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def _save_image(arr: np.ndarray, path: Path) -> Path:
    plt = _mpl()
    kw = {} if arr.ndim == 3 else {"cmap": "gray", "vmin": 0.0, "vmax": 1.0}
    plt.imsave(path, arr, **kw)
    return path


def _scale_for(image_shape) -> int:
    h = image_shape[0] if image_shape else 1
    return max(1, 56 // max(1, h)) if image_shape else 8


def _flat(x) -> np.ndarray:
    x = np.asarray(x)
    return x.reshape(x.shape[0], -1)


def prior_samples(model: VAE, key, path, *, image_shape=None, inverse=None, rows: int = 10) -> Path:
    """10 rows, each the decoder mean and 3 samples of one prior draw ``z``."""
    kz, kx = jax.random.split(key)
    z = model.prior.sample(kz, rows)
    mean = _flat(model.decoder.mean(z))
    xs = _flat(np.moveaxis(np.asarray(model.likelihood(z).sample(kx, (3,))), 0, 1).reshape(rows * 3, -1))
    inv = inverse or (lambda a: a)
    cols = np.concatenate([inv(mean)[:, None], inv(xs).reshape(rows, 3, -1)], axis=1)  # [rows, 4, d]
    tiles = _tiles(_display(cols, image_shape is not None), image_shape)
    return _save_image(grid(tiles, scale=_scale_for(image_shape)), Path(path))


def reconstructions(model: VAE, x, key, path, *, image_shape=None, inverse=None, n: int = 4, draws: int = 2) -> Path:
    """Rows of ``x``, then (decoder mean, decoder sample) for each of ``draws`` latent draws."""
    x = np.asarray(x[:n], np.float32)
    cols = [_flat(x)]
    for k in jax.random.split(key, draws):
        s = reconstruct(model, jnp.asarray(x), k)
        cols += [_flat(s.mean), _flat(s.x)]
    inv = inverse or (lambda a: a)
    arr = np.stack([inv(c) for c in cols], axis=1)  # [n, 1 + 2 * draws, d]
    tiles = _tiles(_display(arr, image_shape is not None), image_shape)
    return _save_image(grid(tiles, scale=_scale_for(image_shape)), Path(path))


def lattice(model: VAE, path, *, image_shape=None, inverse=None, size: int = 50) -> Path:
    """Decoder means on a ``size x size`` grid of 2-D latents (standard normal quantiles)."""
    if model.latent_shape != (2,):
        raise ValueError(f"The latent lattice needs a 2-D latent, this model's is {model.latent_shape}.")
    from scipy.stats import norm

    q = norm.ppf(np.linspace(0.5 / size, 1 - 0.5 / size, size)).astype(np.float32)
    zy, zx = np.meshgrid(q[::-1], q, indexing="ij")  # z2 grows upwards
    z = jnp.asarray(np.stack([zx.ravel(), zy.ravel()], -1))
    mean = _flat(model.decoder.mean(z))
    mean = (inverse or (lambda a: a))(mean).reshape(size, size, -1)
    tiles = _tiles(_display(mean, image_shape is not None), image_shape)
    scale = max(1, 28 // image_shape[0]) if image_shape else 1  # small images: 28 px tiles
    return _save_image(grid(tiles, pad=0, scale=scale), Path(path))


def latent_scatter(model: VAE, x, y, path, *, max_points: int = 5000) -> Path:
    """Encoder means coloured by label; the first two principal components when d > 2."""
    plt = _mpl()
    x = np.asarray(x[:max_points], np.float32)
    params = encode(model, jnp.asarray(x))
    m = _flat(params.get("loc", next(iter(params.values()))))
    xlabel, ylabel = "z1", "z2"
    if m.shape[1] > 2:
        c = m - m.mean(0)
        _, s, vt = np.linalg.svd(c, full_matrices=False)
        m = c @ vt[:2].T
        ev = s**2 / np.sum(s**2)
        xlabel, ylabel = f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})"
    elif m.shape[1] == 1:
        m = np.concatenate([m, np.zeros_like(m)], 1)
        ylabel = ""
    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    if y is not None:
        y = np.asarray(y)[: len(m)]
        labels = np.unique(y)
        cmap = plt.get_cmap("tab10" if len(labels) <= 10 else "viridis")
        for i, lab in enumerate(labels):
            sel = y == lab
            ax.scatter(m[sel, 0], m[sel, 1], s=6, alpha=0.7, color=cmap(i % 10 if len(labels) <= 10 else i / max(1, len(labels) - 1)), label=str(lab))
        if len(labels) <= 20:
            ax.legend(markerscale=3, fontsize=7, loc="best", title="label")
    else:
        ax.scatter(m[:, 0], m[:, 1], s=6, alpha=0.7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title("Latent means of q(z|x)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)


def loss_curves(history: dict[str, list[float]], path) -> Path:
    """Training and validation loss (negative ELBO, nats per example) per epoch."""
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for k, label in (("train_loss", "train"), ("val_loss", "validation")):
        v = history.get(k) or []
        if v:
            ax.plot(np.arange(1, len(v) + 1), v, marker="." if len(v) < 50 else None, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (nats per example)")
    ax.set_title("Loss curves")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
