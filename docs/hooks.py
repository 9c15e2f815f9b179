"""mkdocs hook: the home page's gallery images, made by the build itself.

A 2-D-latent VAE is trained on the embedded digits (binarized 8x8, 30 epochs, a few seconds
on 2 CPU cores); its latent lattice and prior samples are written as generated files
``assets/gallery/lattice.png`` and ``assets/gallery/samples.png``, so the pictures on the home
page always come from the code of the commit being built.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.gallery")
NAMES = ("lattice.png", "samples.png")
# the docstrings use Sphinx roles (:class:`X`, :func:`f`); the API pages show the name as code
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|ivar):(?=<code>)")
_TILDE = re.compile(r"<code>~(?:[\w]+\.)*([\w]+)</code>")


def _make_gallery(out: Path) -> None:
    import jax
    import numpy as np
    from sklearn.datasets import load_digits

    import vaekit as vk
    from vaekit.viz import plots

    x = (load_digits().data / 16 > 0.5).astype(np.float32)
    k1, k2 = jax.random.split(jax.random.key(0))
    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(64, 4, hidden=(200,), activation="tanh", key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, 64, hidden=(200,), activation="tanh", key=k2)),
    )
    model = vk.init_output_bias(model, x)
    model, _ = vk.fit(model, x, key=1, epochs=30, batch_size=50)
    plots.lattice(model, out / "lattice.png", image_shape=(8, 8), size=20, span=2.5)
    plots.prior_samples(model, jax.random.key(2), out / "samples.png", image_shape=(8, 8), rows=8, cols=6)


def on_files(files: Files, config) -> Files:
    out = Path(tempfile.mkdtemp(prefix="vaekit-gallery-"))
    t0 = time.perf_counter()
    _make_gallery(out)
    log.info("gallery images made in %.1f s", time.perf_counter() - t0)
    for name in NAMES:
        files.append(File.generated(config, f"assets/gallery/{name}", abs_src_path=str(out / name)))
    return files


def on_page_content(html: str, page, config, files) -> str:
    if not page.file.src_uri.startswith("api/"):
        return html
    return _TILDE.sub(r"<code>\1</code>", _ROLE.sub("", html))
