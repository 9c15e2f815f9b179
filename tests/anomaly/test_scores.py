"""vk.anomaly scores against hand computations and known orderings."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

import vaekit as vk
from vaekit import anomaly


def _tiny_model(key, d=3, k=2, variance="diag", hidden=(8,)):
    k1, k2 = jax.random.split(key)
    enc = vk.Gaussian(vk.MLP(d, 2 * k, hidden, key=k1), "diag")
    out = 2 * d if variance == "diag" else d
    kw = {"scale": 0.7} if variance == "fixed" else {}
    dec = vk.Gaussian(vk.MLP(k, out, hidden, key=k2), variance, **kw)
    return vk.VAE(vk.StandardNormal(k), enc, dec)


@pytest.fixture(scope="module")
def line_model():
    """A VAE trained on points near the line x2 = 2 x1 (1-D latent)."""
    key = jax.random.key(0)
    t = jax.random.normal(key, (400, 1))
    x = jnp.concatenate([t, 2 * t], 1) + 0.05 * jax.random.normal(jax.random.key(1), (400, 2))
    k1, k2 = jax.random.split(jax.random.key(2))
    model = vk.VAE(
        vk.StandardNormal(1),
        vk.Gaussian(vk.MLP(2, 2, (32,), key=k1), "diag"),
        vk.Gaussian(vk.MLP(1, 2, (32,), key=k2), "shared"),
    )
    model, _ = vk.fit(model, x, key=jax.random.key(3), epochs=60, batch_size=32)
    return model, x


@pytest.mark.parametrize("method", anomaly.METHODS)
def test_far_point_scores_higher_than_training_points(line_model, method):
    model, x = line_model
    far = jnp.array([[8.0, 16.0], [4.0, -8.0]])  # along the line but far; off the line
    s = np.asarray(anomaly.score(model, jnp.concatenate([x[:100], far]), jax.random.key(4), method=method))
    assert np.isfinite(s).all()
    assert s[100] > s[:100].max(), (method, s[100], s[:100].max())
    if method != "latent":  # the latent score only sees the position along the manifold
        assert s[101] > s[:100].max(), (method, s[101], s[:100].max())


def _decoder_params(model, z):
    p = model.decoder.parameters(z)
    return np.asarray(p["loc"], np.float64), np.asarray(p["scale"], np.float64)


def test_reconstruction_scores_match_naive_definitions(getkey):
    model = _tiny_model(getkey())
    x = 0.3 * jax.random.normal(getkey(), (5, 3))
    key, L = getkey(), 7
    rp = np.asarray(anomaly.reconstruction_probability(model, x, key, n_samples=L))
    rec = np.asarray(anomaly.reconstruction(model, x, key, n_samples=L))
    for i in range(5):
        z = model.posterior(x[i : i + 1]).sample(key, (L,))[:, 0]  # [L, k]
        loc, scale = _decoder_params(model, z)
        dens = np.prod(norm.pdf(np.asarray(x[i], np.float64), loc, scale), axis=1)  # p(x|z_l), [L]
        np.testing.assert_allclose(rp[i], -np.log(dens.mean()), rtol=1e-4)
        np.testing.assert_allclose(rec[i], -np.log(dens).mean(), rtol=1e-4)
    # reconstruction probability is a log of a mean, reconstruction a mean of logs (Jensen)
    assert (rp <= rec + 1e-5).all()


def test_mean_based_scores_match_hand_computation(getkey):
    model = _tiny_model(getkey())
    x = 0.3 * jax.random.normal(getkey(), (4, 3))
    mu = np.asarray(model.posterior(x).mean, np.float64)
    loc, scale = _decoder_params(model, jnp.asarray(mu, jnp.float32))
    want_rec = -norm.logpdf(np.asarray(x, np.float64), loc, scale).sum(1)
    want_lat = -norm.logpdf(mu).sum(1)
    k = getkey()
    np.testing.assert_allclose(anomaly.reconstruction_mean(model, x, k), want_rec, rtol=1e-4)
    np.testing.assert_allclose(anomaly.latent(model, x, k), want_lat, rtol=1e-5)


def test_elbo_and_log_likelihood_scores(getkey):
    model = _tiny_model(getkey())
    x = 0.3 * jax.random.normal(getkey(), (4, 3))
    key = getkey()
    want = -vk.elbo(model, x[1:2], key, n_samples=5)
    np.testing.assert_allclose(anomaly.negative_elbo(model, x, key, n_samples=5)[1], want[0], rtol=1e-5)
    # with many samples the IS estimate is close to -log p(x) <= -ELBO (on average)
    ll = anomaly.log_likelihood(model, x, key, n_samples=2000)
    el = anomaly.negative_elbo(model, x, key, n_samples=2000)
    assert (ll <= el + 1e-3).all()


def test_jacodeco_linear_decoder_matches_hand_computation(getkey):
    d, k = 4, 2
    k1, k2 = jax.random.split(getkey())
    enc = vk.Gaussian(vk.MLP(d, 2 * k, (8,), key=k1), "diag")
    dec = vk.Gaussian(vk.MLP(k, d, (), key=k2), "fixed", scale=0.5)  # linear: W z + b
    model = vk.VAE(vk.StandardNormal(k), enc, dec)
    x = jax.random.normal(getkey(), (3, d))
    W = np.asarray(dec.net.layers[0].weight, np.float64)  # [d, k]
    b = np.asarray(dec.net.layers[0].bias, np.float64)
    mu = np.asarray(model.posterior(x).mean, np.float64)
    logpx = norm.logpdf(np.asarray(x, np.float64), mu @ W.T + b, 0.5).sum(1)
    logpz = norm.logpdf(mu).sum(1)
    half_logdet = 0.5 * np.linalg.slogdet(W.T @ W)[1]
    want = -(logpx + logpz - half_logdet)
    np.testing.assert_allclose(anomaly.jacodeco(model, x, getkey()), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("method", ["elbo", "reconstruction_probability", "log_likelihood", "jacodeco"])
def test_scores_do_not_depend_on_blocking_or_order(getkey, method):
    model = _tiny_model(getkey())
    x = jax.random.normal(getkey(), (11, 3))
    key = getkey()
    full = np.asarray(anomaly.score(model, x, key, method=method, n_samples=8))
    blocks = np.asarray(anomaly.score(model, x, key, method=method, n_samples=8, batch_size=4))
    perm = np.arange(11)[::-1]
    rev = np.asarray(anomaly.score(model, x[perm], key, method=method, n_samples=8))
    np.testing.assert_allclose(blocks, full, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rev, full[perm], rtol=1e-5, atol=1e-5)
    again = np.asarray(anomaly.score(model, x, key, method=method, n_samples=8))
    np.testing.assert_array_equal(again, full)


def test_score_bad_input(getkey):
    model = _tiny_model(getkey())
    x = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match="Unknown anomaly score method"):
        anomaly.score(model, x, getkey(), method="mahalanobis")
    with pytest.raises(ValueError, match="shape"):
        anomaly.score(model, jnp.zeros((2, 4)), getkey())
    with pytest.raises(ValueError, match="NaN"):
        anomaly.score(model, jnp.full((2, 3), math.nan), getkey())
    with pytest.raises(ValueError, match="n_samples"):
        anomaly.score(model, x, getkey(), n_samples=0)
