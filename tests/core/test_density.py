"""Densities given as functions (issue 16, section 1): vk.DensityPrior and
vk.DensityConditional against the equivalent built-in distributions."""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk

LOG_2PI = math.log(2 * math.pi)


def std_normal_log_prob(z):
    return -0.5 * jnp.sum(z**2) - 0.5 * z.size * LOG_2PI


def bernoulli_log_lik(x, logits):
    return jnp.sum(x * logits - jax.nn.softplus(logits))


def gaussian_log_lik(x, out):
    loc, raw = jnp.split(out, 2)
    scale = jax.nn.softplus(raw) + 1e-4
    return jnp.sum(-0.5 * ((x - loc) / scale) ** 2 - jnp.log(scale) - 0.5 * LOG_2PI)


def _parts(key, d=64, latent=3, dec_out=64):
    k1, k2 = jax.random.split(key)
    enc = vk.Gaussian(vk.MLP(d, 2 * latent, (16,), key=k1), "diag")
    return enc, vk.MLP(latent, dec_out, (16,), key=k2)


def test_density_prior_matches_standard_normal(digits_binary, getkey):
    x = jnp.asarray(digits_binary[:32])
    enc, dnet = _parts(getkey())
    prior = vk.DensityPrior(std_normal_log_prob, lambda k: jax.random.normal(k, (3,)), event_shape=3)
    ours = vk.VAE(prior, enc, vk.Bernoulli(dnet))
    ref = vk.VAE(vk.StandardNormal(3), enc, vk.Bernoulli(dnet))
    z = jax.random.normal(getkey(), (5, 7, 3))
    np.testing.assert_allclose(prior.log_prob(z), vk.StandardNormal(3).log_prob(z), rtol=1e-6)
    key = getkey()

    def loss(m):
        return -jnp.mean(vk.elbo(m, x, key, kl="mc", n_samples=2))

    vg = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    (l1, g1), (l2, g2) = vg(ours), vg(ref)
    assert float(l1) == pytest.approx(float(l2), rel=1e-6)
    for a, b in zip(
        jax.tree_util.tree_leaves(g1.encoder),
        jax.tree_util.tree_leaves(g2.encoder),
        strict=True,
    ):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    # no closed form: kl="auto" is the Monte Carlo estimate, kl="analytic" names the pair
    elbo, iwae = eqx.filter_jit(vk.elbo), eqx.filter_jit(vk.iwae_bound)
    np.testing.assert_allclose(elbo(ours, x, key), elbo(ref, x, key, kl="mc"), rtol=1e-5)
    with pytest.raises(ValueError, match="no closed-form KL"):
        vk.elbo(ours, x, key, kl="analytic")
    np.testing.assert_allclose(iwae(ours, x, key, k=4), iwae(ref, x, key, k=4), rtol=1e-5)
    s = eqx.filter_jit(vk.sample)(ours, getkey(), 2000)
    assert (
        s.z.shape == (2000, 3) and abs(float(jnp.mean(s.z))) < 0.1 and float(jnp.std(s.z)) == pytest.approx(1, abs=0.1)
    )


def test_density_prior_without_sampler_and_bad_input(getkey):
    enc, dnet = _parts(getkey())
    model = vk.VAE(vk.DensityPrior(std_normal_log_prob, event_shape=(3,)), enc, vk.Bernoulli(dnet))
    with pytest.raises(ValueError, match="has no sampler.*sample="):
        vk.sample(model, getkey(), 4)
    with pytest.raises(ValueError, match="must return a scalar"):
        vk.DensityPrior(lambda z: z, event_shape=3)
    with pytest.raises(TypeError, match="log_prob"):
        vk.DensityPrior("normal", event_shape=3)  # type: ignore[arg-type]
    assert model.latent_shape == (3,)
    no_sampler = vk.DensityConditional(dnet, bernoulli_log_lik, event_shape=64, mean=jax.nn.sigmoid)
    model = vk.VAE(vk.StandardNormal(3), enc, no_sampler)
    with pytest.raises(ValueError, match="DensityConditional has no sampler"):
        vk.sample(model, getkey(), 4)


def test_density_prior_with_trainable_params(getkey):
    """``log_prob(z, params)``: a Gaussian with trainable mean equals vk.Normal."""
    mean = jnp.array([0.5, -1.0, 2.0])
    prior = vk.DensityPrior(lambda z, m: std_normal_log_prob(z - m), event_shape=3, params=mean)
    z = jax.random.normal(getkey(), (4, 3))
    np.testing.assert_allclose(prior.log_prob(z), vk.Normal(mean, jnp.ones(3)).log_prob(z), rtol=1e-6)
    g = jax.grad(lambda p: jnp.sum(p.log_prob(z)))(prior)
    np.testing.assert_allclose(g.params, jnp.sum(z - mean, 0), rtol=1e-5)


@pytest.mark.parametrize("family", ["bernoulli", "gaussian"])
def test_density_conditional_matches_builtin_decoder(family, digits_binary, getkey):
    x = jnp.asarray(digits_binary[:32])
    out = 64 if family == "bernoulli" else 128
    enc, dnet = _parts(getkey(), dec_out=out)
    if family == "bernoulli":
        ours = vk.DensityConditional(dnet, bernoulli_log_lik, event_shape=64, mean=jax.nn.sigmoid)
        ref = vk.Bernoulli(dnet)
    else:
        ours = vk.DensityConditional(dnet, gaussian_log_lik, event_shape=(64,), mean=lambda o: o[:64])
        ref = vk.Gaussian(dnet, "diag")
    m1, m2 = (
        vk.VAE(vk.StandardNormal(3), enc, ours),
        vk.VAE(vk.StandardNormal(3), enc, ref),
    )
    key = getkey()
    z = jax.random.normal(getkey(), (2, 5, 3))
    np.testing.assert_allclose(
        ours.dist(z, 2).log_prob(x[:5]),
        ref.dist(z, 2).log_prob(x[:5]),
        rtol=1e-5,
        atol=1e-4,
    )
    np.testing.assert_allclose(ours.mean(z[0]), ref.mean(z[0]), rtol=1e-6)

    def loss(m):
        return -jnp.mean(vk.elbo(m, x, key, n_samples=2))

    vg = eqx.filter_jit(eqx.filter_value_and_grad(loss))
    (l1, g1), (l2, g2) = vg(m1), vg(m2)
    assert float(l1) == pytest.approx(float(l2), rel=1e-5)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)
    assert m1.data_shape == (64,)


def test_function_parts_train_with_fit(digits_binary, getkey):
    x = digits_binary[:100]
    enc, dnet = _parts(getkey())
    model = vk.VAE(
        vk.DensityPrior(std_normal_log_prob, lambda k: jax.random.normal(k, (3,)), event_shape=3),
        enc,
        vk.DensityConditional(
            dnet,
            bernoulli_log_lik,
            event_shape=64,
            mean=jax.nn.sigmoid,
            sample=lambda k, logits: jax.random.bernoulli(k, jax.nn.sigmoid(logits)).astype(jnp.float32),
        ),
    )
    model, hist = vk.fit(
        model,
        x,
        key=getkey(),
        epochs=3,
        batch_size=25,
        optimizer=vk.default_optimizer(3e-3),
    )
    assert np.all(np.isfinite(hist["train_loss"])) and hist["train_loss"][-1] < hist["train_loss"][0]
    s = vk.sample(model, getkey(), 3)
    assert s.mean.shape == (3, 64) and bool(jnp.all((s.mean > 0) & (s.mean < 1)))
    assert set(np.unique(np.asarray(s.x))) <= {0.0, 1.0}
