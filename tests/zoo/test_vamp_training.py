"""VampPrior training: the matmul mixture density and the decoder-bias initialisation."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest

import vaekit as vk
from vaekit.core import DiagonalNormalMixture


def test_diagonal_normal_mixture_matches_broadcast_form(getkey):
    # VAE-like magnitudes: latent means of a few units, scales down to 0.05, 50 dimensions
    k, d = 37, 50
    logits = jax.random.normal(getkey(), (k,))
    loc = 2.0 * jax.random.normal(getkey(), (k, d))
    scale = jnp.exp(jax.random.uniform(getkey(), (k, d), minval=np.log(0.05), maxval=np.log(2.0)))
    # points near components (the hard case for the expanded square) and far away
    z_near = loc[:5][:, None, :] + 0.05 * jax.random.normal(getkey(), (5, 3, d))
    z_far = 6.0 * jax.random.normal(getkey(), (4, 3, d))
    ref = nd.MixtureSameFamily(nd.CategoricalLogits(logits), nd.Normal(loc, scale).to_event(1))
    fast = DiagonalNormalMixture(logits, loc, scale)
    for z in (z_near, z_far):
        assert fast.log_prob(z).shape == z.shape[:-1]
        np.testing.assert_allclose(np.asarray(fast.log_prob(z)), np.asarray(ref.log_prob(z)), rtol=1e-5, atol=2e-3)

    def grads(cls):
        def f(lg, m, s, z):
            dist = (
                cls(lg, m, s)
                if cls is DiagonalNormalMixture
                else nd.MixtureSameFamily(nd.CategoricalLogits(lg), nd.Normal(m, s).to_event(1))
            )
            return jnp.sum(dist.log_prob(z))

        return jax.grad(f, argnums=(0, 1, 2, 3))(logits, loc, scale, z_near)

    for a, b in zip(grads(DiagonalNormalMixture), grads(None)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-4 * float(jnp.abs(b).max()))
    # the rest of MixtureSameFamily still works (sampling, moments, under jit)
    s = jax.jit(lambda key: fast.sample(key, (2000,)))(getkey())
    assert s.shape == (2000, d)
    np.testing.assert_allclose(np.asarray(fast.mean), np.asarray(ref.mean), rtol=1e-5, atol=1e-5)


def test_mixture_priors_use_the_matmul_form(digits_binary, getkey):
    mog = vk.MixtureOfGaussians(5, 3, key=getkey())
    assert isinstance(mog.dist(), DiagonalNormalMixture)
    model = vk.presets.build("vamp_vae", 64, key=getkey(), latent_dim=3, hidden=(16,), n_pseudo=7)
    assert isinstance(model.prior_dist(), DiagonalNormalMixture)
    # a non-Gaussian encoder keeps numpyro's general mixture
    lap = vk.presets.build("vamp_vae", 64, key=getkey(), latent_dim=3, hidden=(16,), n_pseudo=7, latent="laplace")
    assert type(lap.prior_dist()) is nd.MixtureSameFamily


def test_init_output_bias_sets_the_data_marginal(digits_binary, getkey):
    x = digits_binary
    model = vk.presets.vae(64, key=getkey(), latent_dim=2, hidden=(16,))
    init = vk.init_output_bias(model, x)
    p = np.clip(x.mean(0), 1e-3, 1 - 1e-3)
    np.testing.assert_allclose(np.asarray(init.decoder.net.layers[-1].bias), np.log(p / (1 - p)), rtol=1e-5, atol=1e-5)
    # only that bias changed
    same = jax.tree_util.tree_map(
        lambda a, b: bool(jnp.array_equal(a, b)),
        eqx.filter(model.encoder, eqx.is_array),
        eqx.filter(init.encoder, eqx.is_array),
    )
    assert all(jax.tree_util.tree_leaves(same))
    # Gaussian decoder with per-example variance: means first, scale outputs untouched
    g = vk.presets.vae(64, key=getkey(), latent_dim=2, hidden=(16,), likelihood="gaussian", variance="diag")
    gi = vk.init_output_bias(g, x)
    b0, b1 = np.asarray(g.decoder.net.layers[-1].bias), np.asarray(gi.decoder.net.layers[-1].bias)
    np.testing.assert_allclose(b1[:64], x.mean(0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(b1[64:], b0[64:])
    with pytest.raises(ValueError, match=r"should output 10 values, but it outputs \(64,\)"):
        vk.init_output_bias(model, x[:, :10])
    with pytest.raises(ValueError, match="NaN"):
        vk.init_output_bias(model, np.full((3, 64), np.nan))
    conv = vk.presets.conv_vae((8, 8), key=getkey(), latent_dim=2, hidden=(4,))
    with pytest.raises(TypeError, match="eqx.nn.Linear"):
        vk.init_output_bias(conv, x.reshape(-1, 8, 8))


def _encoder_spread(model, x):
    return float(jnp.std(model.posterior(x).base_dist.loc, 0).mean())


def test_vamp_vae_trains_when_the_decoder_starts_at_the_marginal(digits_binary, getkey):
    """Regression: a VampPrior VAE collapses to the mean-image loss (the encoder ignores
    x) when the decoder starts from random output biases: measured 24.48 and 24.49 nats
    (mean image 24.44) for two seeds without ``init_output_bias``, 19.3-19.9 with it."""
    x = digits_binary
    key = getkey()
    model = vk.presets.build("vamp_vae", 64, key=key, latent_dim=8, hidden=(64, 64), n_pseudo=50)
    p = np.clip(x.mean(0), 1e-3, 1 - 1e-3)
    mean_image_loss = -float(np.mean(np.sum(x * np.log(p) + (1 - x) * np.log1p(-p), 1)))
    trained, hist = vk.fit(vk.init_output_bias(model, x), x, key=getkey(), epochs=30, batch_size=50)
    assert hist["train_loss"][-1] < mean_image_loss - 3.0, (hist["train_loss"][-1], mean_image_loss)
    assert _encoder_spread(trained, x) > 0.1
