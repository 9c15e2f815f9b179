"""mkdocs hooks: the home page's gallery images, made by the build itself, and the API
pages' Sphinx roles shown as code.

Gallery: a 2-D-latent VAE (784 -> 500 tanh -> 2, Bernoulli decoder) is trained for 10 epochs
on 5,000 binarized MNIST images from ``$VAEKIT_DATA_DIR`` (about 20 s on 2 CPU cores), or,
without them, on the embedded 8x8 ``digits``; its latent lattice and prior samples become the
generated files ``assets/gallery/lattice.png`` and ``assets/gallery/samples.png``, so the
pictures on the home page always come from the code of the commit being built.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.gallery")
NAMES = ("lattice.png", "samples.png")
# the docstrings use Sphinx roles (:class:`X`, :func:`f`); the API pages show the name as code
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|ivar):(?=<code>)")
_TILDE = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)</code>")


def _gallery_data() -> tuple[np.ndarray, tuple[int, int], str]:
    import vaekit as vk

    root = Path(os.environ.get("VAEKIT_DATA_DIR", "~/.cache/vaekit")).expanduser()
    if (root / "binarized-mnist" / "binarized_mnist_train.npz").exists():
        x = np.asarray(vk.datasets.load("binarized-mnist", "train", limit=5000).x)
        return (x > 0.5).astype(np.float32), (28, 28), "5,000 binarized MNIST images"
    from sklearn.datasets import load_digits

    return (load_digits().data / 16 > 0.5).astype(np.float32), (8, 8), "the embedded 8x8 digits"


def _make_gallery(out: Path) -> str:
    import jax

    import vaekit as vk
    from vaekit.viz import plots

    x, shape, what = _gallery_data()
    d = x.shape[1]
    k1, k2 = jax.random.split(jax.random.key(0))
    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(d, 4, hidden=(500,), activation="tanh", key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, d, hidden=(500,), activation="tanh", key=k2)),
    )
    model = vk.init_output_bias(model, x)
    small = shape == (8, 8)
    model, _ = vk.fit(
        model,
        x,
        key=1,
        epochs=100 if small else 10,
        batch_size=50 if small else 100,
        optimizer=vk.default_optimizer(1e-2 if small else 1e-3),
    )
    plots.lattice(model, out / "lattice.png", image_shape=shape, size=20, span=2.5)
    plots.prior_samples(model, jax.random.key(2), out / "samples.png", image_shape=shape, rows=8, cols=6)
    return what


def on_files(files: Files, config) -> Files:
    out = Path(tempfile.mkdtemp(prefix="vaekit-gallery-"))
    t0 = time.perf_counter()
    what = _make_gallery(out)
    log.info("gallery images made from %s in %.1f s", what, time.perf_counter() - t0)
    for name in NAMES:
        files.append(File.generated(config, f"assets/gallery/{name}", abs_src_path=str(out / name)))
    return files


def on_page_content(html: str, page, config, files) -> str:
    if not page.file.src_uri.startswith("api/"):
        return html
    html = html.replace("::</p>", ":</p>")  # reST's "text::" before a literal block
    return _TILDE.sub(r"<code>\1</code>", _ROLE.sub("", html))
