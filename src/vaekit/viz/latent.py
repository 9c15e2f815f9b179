"""Latent-space plots: codes on the 2-D plane or on the probability simplex, latent paths.

:func:`plot_latent` is the one latent scatter (the report's ``latent.png`` is drawn by
it). matplotlib is imported only when a plot is drawn, and its backend is left alone.
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from ..core import on_simplex, posterior_mean
from ._matplotlib import pyplot

#: corners of the 2-simplex in the plane (an equilateral triangle)
TRIANGLE = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])


def _scatter(ax: Any, xy: np.ndarray, labels: ArrayLike | None, s: float) -> None:
    """Points coloured by label: a legend for up to 20 classes, else a colour bar."""
    if labels is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=s)
        return
    labels = np.asarray(labels)
    classes = np.unique(labels)
    if len(classes) > 20:
        sc = ax.scatter(xy[:, 0], xy[:, 1], s=s, c=labels, cmap="viridis")
        ax.figure.colorbar(sc, ax=ax)
        return
    cmap = pyplot().get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for i, c in enumerate(classes):
        sel = labels == c
        ax.scatter(xy[sel, 0], xy[sel, 1], s=s, color=cmap(i), label=str(c))
    ax.legend(markerscale=2, fontsize=7, title="label", loc="best")


def simplex_to_plane(p: ArrayLike) -> np.ndarray:
    """Barycentric map of points on the 2-simplex ``p [n, 3]`` to the triangle, ``[n, 2]``."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"simplex_to_plane needs points of shape [n, 3], got {p.shape}.")
    return p @ TRIANGLE


def plot_simplex(
    z: ArrayLike, labels: ArrayLike | None = None, *, ax: Any = None, path: str | None = None, s: float = 4.0
):
    """Scatter simplex codes ``z [n, K]``; ``K > 3`` keeps the 3 coordinates with the
    largest mean and renormalises. Saves to ``path`` when given. Returns the axes."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 3:
        raise ValueError(f"plot_simplex needs codes of shape [n, K] with K >= 3, got {z.shape}.")
    if z.shape[1] > 3:
        keep = np.argsort(-z.mean(0))[:3]
        z = z[:, keep] / np.maximum(z[:, keep].sum(1, keepdims=True), 1e-12)
    plt = pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4.5))
    xy = simplex_to_plane(z)
    ax.plot(*np.vstack([TRIANGLE, TRIANGLE[:1]]).T, color="k", lw=0.8)
    _scatter(ax, xy, labels, s)
    ax.set_aspect("equal")
    ax.axis("off")
    if path is not None:
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    return ax


def plot_latent(
    model: Any,
    x: ArrayLike,
    labels: ArrayLike | None = None,
    *,
    ax: Any = None,
    path: str | None = None,
    s: float = 4.0,
    max_points: int | None = None,
):
    """Posterior means of ``x`` (the means of ``q(z|x)``), coloured by ``labels``.

    Dirichlet latents (and other codes on the simplex) are drawn on the simplex (the
    triangle of the three coordinates with the largest mean, renormalised, when there
    are more); other codes as their two coordinates, or their first two principal
    components (with the variance each explains) when there are more. Saves to ``path``
    when given. Returns the axes.

    :param max_points: draw only the first ``max_points`` rows.
    """
    x = np.asarray(x, dtype=np.float32)[:max_points]
    z = np.asarray(posterior_mean(model, jnp.asarray(x)), dtype=np.float64).reshape(len(x), -1)
    if labels is not None:
        labels = np.asarray(labels)[: len(z)]
    simplex = on_simplex(model) or (z.shape[1] >= 3 and np.all(z >= -1e-6) and np.allclose(z.sum(1), 1.0, atol=1e-4))
    if simplex and z.shape[1] >= 3:
        return plot_simplex(z, labels, ax=ax, path=path, s=s)
    xlabel, ylabel = "z1", "z2"
    if z.shape[1] > 2:
        zc = z - z.mean(0)
        _, sv, vt = np.linalg.svd(zc, full_matrices=False)
        z = zc @ vt[:2].T
        ev = sv**2 / np.sum(sv**2)
        xlabel, ylabel = f"PC1 ({ev[0]:.0%})", f"PC2 ({ev[1]:.0%})"
    elif z.shape[1] == 1:
        z = np.hstack([z, np.zeros_like(z)])
        ylabel = ""
    if ax is None:
        _, ax = pyplot().subplots(figsize=(5, 4.5))
    _scatter(ax, z, labels, s)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if path is not None:
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    return ax


def _strip(values: np.ndarray, image_shape, titles, ax, path):
    """A row of images (``image_shape``) or one line per point, on ``ax``."""
    plt = pyplot()
    v = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    n = len(v)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(12, 1.2 * n), 1.6) if image_shape else (6, 4))
    if image_shape is not None:
        h, w = tuple(image_shape)[:2]
        tiles = np.clip(v, 0, 1).reshape(n, *image_shape)
        gap = np.ones((h, 1, *tiles.shape[3:]))
        row = np.concatenate([np.concatenate([t, gap], 1) for t in tiles], 1)[:, :-1]
        ax.imshow(row, cmap="gray" if row.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
        ax.set_xticks([(w + 1) * i + w / 2 for i in range(n)], titles or [""] * n, fontsize=6)
        ax.set_yticks([])
    else:
        cmap = plt.get_cmap("viridis")
        for i, row in enumerate(v):
            ax.plot(row, lw=0.8, color=cmap(i / max(1, n - 1)), label=None if titles is None else titles[i])
        if titles is not None and n <= 12:
            ax.legend(fontsize=6, ncol=2)
    if path is not None:
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
    return ax


def plot_interpolation(result: Any, *, image_shape=None, ax: Any = None, path: str | None = None):
    """Draw the decoder means of :func:`vaekit.interpolate` in order: a strip of images
    (``image_shape=(h, w)``) or one line per point, coloured from start to end. Returns the axes."""
    mean = np.asarray(getattr(result, "mean", result))
    n = len(mean)
    titles = [f"t={t:.2f}" for t in np.linspace(0, 1, n)]
    return _strip(mean, image_shape, titles, ax, path)


def plot_traversal(result: Any, values: ArrayLike, *, image_shape=None, ax: Any = None, path: str | None = None):
    """Draw the decoder means of :func:`vaekit.traverse` labelled with the coordinate ``values``. Returns the axes."""
    mean = np.asarray(getattr(result, "mean", result))
    titles = [f"{v:.3g}" for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    return _strip(mean, image_shape, titles, ax, path)
