"""Discrete latents: REINFORCE unbiasedness by exact enumeration, baselines, Concrete density."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest

import vaekit as vk
from vaekit.zoo.discrete import Concrete, exact_elbo, reinforce_surrogate


def _tiny(kind, getkey, learned):
    d_x = 4
    if kind == "bernoulli":
        enc = vk.Bernoulli(vk.MLP(d_x, 2, (), key=getkey()))
        prior, d_z = vk.BernoulliPrior(2, 0.3), 2
    else:
        enc = vk.Categorical(vk.MLP(d_x, 3, (), key=getkey()), 3, one_hot=True)
        prior, d_z = vk.CategoricalPrior(1, 3), 3
    dec = vk.Bernoulli(vk.MLP(d_z, d_x, (), key=getkey()))
    if learned:  # a non-zero baseline network: must not bias the gradient
        base = vk.MLP(d_x, 1, (3,), key=getkey())
        return vk.BaselineVAE(prior, enc, dec, baseline=base)
    return vk.VAE(prior, enc, dec)


def _flat(tree):
    return np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(tree)])


@pytest.mark.parametrize("kind", ["bernoulli", "categorical"])
@pytest.mark.parametrize("baseline", ["none", "loo", "loo+learned"])
def test_reinforce_gradient_is_unbiased_against_enumeration(kind, baseline, getkey):
    learned = "learned" in baseline
    model = _tiny(kind, getkey, learned)
    x = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    exact = _flat(jax.grad(lambda m: jnp.sum(exact_elbo(m, x)))(model).encoder)

    def one(key):
        g = jax.grad(lambda m: jnp.sum(reinforce_surrogate(m, x, key, n_samples=2, baseline=baseline)))(model)
        return g.encoder

    n = 10_000
    gs = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(7), n))
    leaves = [np.asarray(a).reshape(n, -1) for a in jax.tree_util.tree_leaves(gs)]
    flat = np.concatenate(leaves, 1)
    mean, se = flat.mean(0), flat.std(0) / np.sqrt(n)
    assert np.all(np.abs(mean - exact) < 4.5 * se + 2e-3), (mean, exact, se)
    # the value is the ELBO estimate: its mean matches the exact ELBO
    vals = jax.vmap(lambda k: reinforce_surrogate(model, x, k, n_samples=2, baseline=baseline))(
        jax.random.split(jax.random.key(8), 4000)
    )
    np.testing.assert_allclose(np.asarray(vals.mean(0)), np.asarray(exact_elbo(model, x)), atol=0.05)


def test_baseline_reduces_variance(getkey):
    model = _tiny("bernoulli", getkey, False)
    x = jnp.array([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]])

    def var(baseline):
        def f(k):
            g = jax.grad(lambda m: jnp.sum(reinforce_surrogate(m, x, k, n_samples=4, baseline=baseline)))(model)
            return jnp.concatenate([jnp.ravel(a) for a in jax.tree_util.tree_leaves(g.encoder)])

        g = jax.jit(jax.vmap(f))(jax.random.split(jax.random.key(1), 4000))
        return float(jnp.sum(jnp.var(g, 0)))

    assert var("loo") < 0.5 * var("none")


def test_learned_baseline_is_fitted_and_model_trains(digits_binary, getkey):
    x = digits_binary[:256]
    model = vk.presets.build("discrete_vae", 64, key=getkey(), latent_dim=8, hidden=(32,))
    assert isinstance(model, vk.BaselineVAE)
    opts = vk.presets.fit_options("discrete_vae")
    b0 = _flat(model.baseline)
    model, hist = vk.fit(model, x, key=getkey(), epochs=4, batch_size=32, optimizer=vk.default_optimizer(3e-3), **opts)
    loss = hist["train_loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0] - 1.0, loss
    assert not np.allclose(b0, _flat(model.baseline))
    with pytest.raises(TypeError, match="BaselineVAE"):
        reinforce_surrogate(_tiny("bernoulli", getkey, False), x[:2, :4], getkey(), baseline="learned")
    with pytest.raises(ValueError, match="'loo', 'learned'"):
        vk.reinforce_objective(baseline="bad")


def test_concrete_density_two_classes_matches_binary_concrete():
    logits, tau = jnp.array([0.3, -0.9]), 0.7
    d = Concrete(logits, tau)
    s = jnp.linspace(0.02, 0.98, 11)
    y = jnp.stack([s, 1 - s], -1)
    # the binary Concrete (numpyro RelaxedBernoulli) density of y_1 is the same density
    ref = nd.RelaxedBernoulliLogits(tau, logits[0] - logits[1]).log_prob(s)
    np.testing.assert_allclose(np.asarray(d.log_prob(y)), np.asarray(ref), rtol=1e-4, atol=1e-4)
    # normalised: integrate over the logit t of y_1 (ds = s (1 - s) dt), a smooth integrand
    t = np.linspace(-40, 40, 40_001)
    s_ = 1 / (1 + np.exp(-t))
    dens = np.exp(np.asarray(d.log_prob(jnp.stack([jnp.asarray(s_), jnp.asarray(1 - s_)], -1)), np.float64))
    total = np.trapezoid(dens * s_ * (1 - s_), t)
    assert abs(total - 1) < 2e-3


def test_concrete_sampler_matches_categorical_argmax_and_density():
    logits = jnp.array([1.0, 0.0, -1.0])
    d = Concrete(logits, 0.5)
    y = d.sample(jax.random.key(0), (50_000,))
    freq = np.bincount(np.asarray(jnp.argmax(y, -1)), minlength=3) / y.shape[0]
    np.testing.assert_allclose(freq, np.asarray(jax.nn.softmax(logits)), atol=0.01)  # Gumbel-max
    # at tau = 2 the density is smooth up to the simplex edges: it integrates to 1 on a
    # grid, and its mean equals the mean of the samples (3 classes)
    d = Concrete(logits, 2.0)
    y = d.sample(jax.random.key(1), (50_000,))
    g = np.linspace(0.0025, 0.9975, 200)
    a, b = np.meshgrid(g, g, indexing="ij")
    ok = a + b < 1
    pts = jnp.asarray(np.stack([a[ok], b[ok], 1 - a[ok] - b[ok]], -1))
    w = np.exp(np.asarray(d.log_prob(pts))) * (g[1] - g[0]) ** 2
    assert abs(w.sum() - 1) < 0.02
    np.testing.assert_allclose((w[:, None] * np.asarray(pts)).sum(0) / w.sum(), np.asarray(y.mean(0)), atol=0.01)


def test_gumbel_softmax_vae_trains(digits_binary, getkey):
    x = digits_binary[:256]
    model = vk.presets.build(
        "discrete_vae", 64, key=getkey(), latent="concrete", latent_dim=4, num_classes=5, hidden=(32,)
    )
    assert vk.presets.fit_options("discrete_vae", latent="concrete") == {}
    q = model.posterior(x[:4])
    assert q.has_rsample and q.event_shape == (4, 5)
    model, hist = vk.fit(model, x, key=getkey(), epochs=4, batch_size=32, optimizer=vk.default_optimizer(3e-3))
    loss = hist["train_loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0] - 1.0, loss
