"""The evaluation functions run the decoder in tiles of (example, sample) pairs: the
values must be those of one untiled pass."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.anomaly import scores
from vaekit.core import _objectives
from vaekit.core._conditionals import softplus


def _model(d=12, latent=2):
    k1, k2 = jax.random.split(jax.random.key(0))
    return vk.VAE(
        prior=vk.StandardNormal(latent),
        encoder=vk.Gaussian(vk.MLP(d, 2 * latent, hidden=(16,), key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(latent, d, hidden=(16,), key=k2)),
    )


@pytest.fixture
def data():
    return (np.random.default_rng(0).random((7, 12)) < 0.4).astype(np.float32)


@pytest.fixture
def tiny_tiles(monkeypatch):
    """Tiles of 8 pairs: every call below is split into many tiles (with padding)."""
    monkeypatch.setattr(_objectives, "TILE_PAIRS", 8)
    monkeypatch.setattr(scores, "TILE_PAIRS", 8)
    jax.clear_caches()  # the compiled functions read TILE_PAIRS when traced
    yield
    jax.clear_caches()


def _untiled(monkeypatch):
    monkeypatch.setattr(_objectives, "TILE_PAIRS", 10**9)
    monkeypatch.setattr(scores, "TILE_PAIRS", 10**9)
    jax.clear_caches()


def test_decoder_log_prob_tiles_match_one_pass(data, tiny_tiles):
    model = _model()
    x = jnp.asarray(data)
    z = jax.random.normal(jax.random.key(1), (37, 7, 2))  # 37 samples: the last tile is padded
    tiled = _objectives.decoder_log_prob(model, z, x)
    assert tiled.shape == (37, 7)
    direct = model.likelihood(z, batch_ndim=2).log_prob(x)
    np.testing.assert_allclose(tiled, direct, rtol=1e-5, atol=1e-4)


def test_iwae_bound_and_its_gradient_do_not_depend_on_tiling(data, tiny_tiles, monkeypatch):
    model, x, key = _model(), jnp.asarray(data), jax.random.key(2)

    def f(m):
        return jnp.sum(vk.iwae_bound(m, x, key, k=13))

    v1, g1 = jax.value_and_grad(f)(model)
    _untiled(monkeypatch)
    v2, g2 = jax.value_and_grad(f)(model)
    np.testing.assert_allclose(v1, v2, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_log_likelihood_does_not_depend_on_tiling_or_blocks(data, tiny_tiles, monkeypatch):
    model, x, key = _model(), jnp.asarray(data), jax.random.key(3)
    tiled = vk.log_likelihood(model, x, key, n_samples=45, chunk_size=4)  # 12 chunks, the last one partial
    blocks = vk.log_likelihood(model, x, key, n_samples=45, chunk_size=4, block_size=3)
    _untiled(monkeypatch)
    direct = vk.log_likelihood(model, x, key, n_samples=45, chunk_size=4)
    np.testing.assert_allclose(tiled, direct, rtol=1e-5)
    np.testing.assert_allclose(blocks, direct, rtol=1e-5)
    # and it is the log-mean-exp of the importance weights of each example's own keys
    keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(7))
    for i in (0, 6):
        logw = jnp.concatenate(
            [
                _objectives.log_weights(model, x[i : i + 1], jax.random.fold_in(keys[i], c), 4, "reparam")[0][:, 0]
                for c in range(12)
            ]
        )[:45]
        np.testing.assert_allclose(direct[i], jax.nn.logsumexp(logw) - np.log(45), rtol=1e-5)


@pytest.mark.parametrize("method", ["log_likelihood", "elbo", "reconstruction_mean"])
def test_anomaly_scores_do_not_depend_on_grouping(data, tiny_tiles, monkeypatch, method):
    model, x, key = _model(), jnp.asarray(data), jax.random.key(4)
    grouped = vk.anomaly.score(model, x, key, method=method, n_samples=3)
    _untiled(monkeypatch)
    direct = vk.anomaly.score(model, x, key, method=method, n_samples=3)
    np.testing.assert_allclose(grouped, direct, rtol=1e-5)


def test_softplus_matches_jax_with_sigmoid_gradient():
    x = jnp.array([-100.0, -20.0, -3.0, -1e-3, 0.0, 1e-3, 3.0, 20.0, 100.0])
    np.testing.assert_allclose(softplus(x), jax.nn.softplus(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(jax.vmap(jax.grad(softplus))(x), jax.nn.sigmoid(x), rtol=1e-6, atol=1e-7)
    assert float(jax.grad(softplus)(0.0)) == 0.5
    out = softplus(jnp.array([jnp.inf, -jnp.inf, jnp.nan]))
    assert out[0] == jnp.inf and out[1] == 0.0 and jnp.isnan(out[2])
