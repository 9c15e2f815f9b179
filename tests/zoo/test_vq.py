"""VQ-VAE (van den Oord et al. 2017): straight-through, commitment, EMA codebook (issue 16, section 5)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vaekit as vk
from vaekit.zoo import vq


@pytest.fixture(scope="module")
def x():
    from sklearn.datasets import load_digits

    return (load_digits().data[:300] / 16.0 > 0.5).astype(np.float32).reshape(-1, 8, 8)


def _model(key=0, **kw):
    return vk.presets.build("vq_vae", (8, 8), key=jax.random.key(key), hidden=(8, 16), num_codes=16, **kw)


@pytest.fixture(scope="module")
def trained(x):
    model = _model()
    out, hist = vk.fit(
        model,
        x,
        key=0,
        epochs=4,
        batch_size=50,
        optimizer=vk.default_optimizer(3e-3),
        **vk.presets.fit_options("vq_vae"),
    )
    return model, out, hist


def _numpy_ema(book, counts, sums, z, decay, eps):
    """Reference: the EMA codebook update of the paper's appendix, in float64 numpy."""
    z = z.reshape(-1, z.shape[-1]).astype(np.float64)
    idx = np.argmin(((z[:, None, :] - book[None]) ** 2).sum(-1), 1)
    k = book.shape[0]
    n = np.bincount(idx, minlength=k)
    s = np.zeros_like(sums, dtype=np.float64)
    np.add.at(s, idx, z)
    counts = decay * counts + (1 - decay) * n
    sums = decay * sums + (1 - decay) * s
    total = counts.sum()
    return sums / ((counts + eps) / (total + k * eps) * total)[:, None]


def test_ema_update_inside_fit_matches_numpy(x):
    """One step over all rows (lr 0: the encoder does not move) updates the codebook as the reference does."""
    model = _model(decay=0.9)
    out, _ = vk.fit(model, x, key=0, epochs=1, batch_size=len(x), optimizer=optax.sgd(0.0), objective=vq.vq_objective)
    book, counts, sums = (np.asarray(a, np.float64) for a in model.codebook.state.value)
    z = np.asarray(model.encoder.raw(x))
    ref = _numpy_ema(book, counts, sums, z, 0.9, 1e-5)
    np.testing.assert_allclose(out.codebook.vectors, ref, rtol=1e-4, atol=1e-5)
    assert not np.allclose(out.codebook.vectors, book)
    # evaluation never moves the codebook
    before = np.asarray(out.codebook.vectors)
    vq.vq_objective(out, jnp.asarray(x[:10]), jax.random.key(0), 0)
    np.testing.assert_array_equal(out.codebook.vectors, before)


def test_straight_through_and_commitment(x, getkey):
    model = _model()
    xb = jnp.asarray(x[:6])
    z_e = model.encoder.raw(xb)
    z_q, idx = model.codebook.quantize(z_e)
    # z_q is the nearest codebook vector (brute force)
    d = jnp.sum((z_e[:, :, None, :] - model.codebook.vectors[None, None]) ** 2, -1)
    np.testing.assert_array_equal(idx, jnp.argmin(d, -1))
    np.testing.assert_allclose(z_q, model.codebook.vectors[jnp.argmin(d, -1)])
    # value: reconstruction NLL at z_q plus beta * ||z_e - z_q||^2
    loss = vq.vq_objective(model, xb, getkey(), 0)
    rec = -model.decoder.dist(z_q).log_prob(xb)
    np.testing.assert_allclose(loss, rec + 0.25 * jnp.sum((z_e - z_q) ** 2, (-2, -1)), rtol=1e-5)

    # gradient w.r.t. z_e: the decoder's gradient at z_q (straight-through) + 2 beta (z_e - z_q)
    def through(ze):
        zq, _ = model.codebook.quantize(ze)
        zst = ze + jax.lax.stop_gradient(zq - ze)
        return jnp.sum(
            -model.decoder.dist(zst).log_prob(xb) + 0.25 * jnp.sum((ze - jax.lax.stop_gradient(zq)) ** 2, (-2, -1))
        )

    g = jax.grad(through)(z_e)
    g_dec = jax.grad(lambda zq: jnp.sum(-model.decoder.dist(zq).log_prob(xb)))(z_q)
    np.testing.assert_allclose(g, g_dec + 0.5 * (z_e - z_q), rtol=1e-4, atol=1e-5)


def test_vq_vae_trains_with_codebook_metrics(trained, x):
    _, out, hist = trained
    loss = hist["train_loss"]
    assert loss[-1] < loss[0] - 1, loss
    for k in ("codebook_perplexity", "codebook_usage"):
        assert len(hist[k]) == 4
    assert all(1.0 <= p <= 16.0 for p in hist["codebook_perplexity"])
    assert all(0.0 < u <= 1.0 for u in hist["codebook_usage"])
    # perplexity is exp(entropy) of the EMA code frequencies
    p = np.asarray(out.codebook.frequencies(), np.float64)
    np.testing.assert_allclose(hist["codebook_perplexity"][-1], np.exp(-np.sum(p * np.log(p))), rtol=1e-6)


def test_code_prior_is_the_code_frequencies_per_position(trained, x):
    _, out, _ = trained
    fitted = vq.fit_code_prior(out, x, smoothing=0.5)
    idx = np.asarray(vq.codes(out, x))  # [n, P]
    assert idx.shape == (len(x), 4)
    probs = np.exp(np.asarray(fitted.prior.logits.value))
    for p in range(4):
        ref = (np.bincount(idx[:, p], minlength=16) + 0.5) / (len(x) + 16 * 0.5)
        np.testing.assert_allclose(probs[p], ref, rtol=1e-5)
    s = vk.sample(fitted, jax.random.key(0), 2000)
    assert s.x.shape == (2000, 8, 8)
    # sampled codes follow the fitted frequencies (position 0; 2000 draws)
    drawn = np.asarray(out.codebook.nearest(s.z))[:, 0]
    freq = np.bincount(drawn, minlength=16) / 2000
    assert np.abs(freq - probs[0]).max() < 0.05


def test_vq_state_survives_save_load(trained, tmp_path, x):
    model, out, _ = trained
    vk.save(tmp_path / "vq", out)
    back = vk.load(tmp_path / "vq", like=model).model
    np.testing.assert_array_equal(back.codebook.vectors, out.codebook.vectors)
    np.testing.assert_array_equal(vq.codes(back, x), vq.codes(out, x))
