"""Inverse-CDF families: log-densities against scipy, pathwise gradients against finite
differences, closed-form KLs against Monte Carlo, and use as VAE encoders."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
import scipy.stats as st
from scipy.integrate import quad

import vaekit as vk
from vaekit.zoo import families as F

CASES = [
    (F.Exponential, (1.7,), lambda p: st.expon(scale=1 / p[0])),
    (F.Cauchy, (0.3, 1.4), lambda p: st.cauchy(p[0], p[1])),
    (F.Logistic, (0.3, 1.4), lambda p: st.logistic(p[0], p[1])),
    (F.Gumbel, (0.3, 1.4), lambda p: st.gumbel_r(p[0], p[1])),
    (F.Weibull, (1.3, 0.8), lambda p: st.weibull_min(p[1], scale=p[0])),
    (F.Kumaraswamy, (2.0, 3.5), None),
]
IDS = [c[0].__name__ for c in CASES]


def _kumaraswamy_logpdf(x, a, b):
    return np.log(a * b) + (a - 1) * np.log(x) + (b - 1) * np.log1p(-(x**a))


@pytest.mark.parametrize("cls,params,ref", CASES, ids=IDS)
def test_log_prob_cdf_icdf_against_scipy(cls, params, ref):
    d = cls(*params)
    u = np.linspace(0.02, 0.98, 25)
    x = np.asarray(d.icdf(jnp.asarray(u)))
    np.testing.assert_allclose(np.asarray(d.cdf(jnp.asarray(x))), u, rtol=2e-4, atol=2e-5)
    if ref is None:  # Kumaraswamy: closed form, numpyro's implementation, and normalisation
        np.testing.assert_allclose(np.asarray(d.log_prob(x)), _kumaraswamy_logpdf(x, *params), rtol=1e-4)
        np.testing.assert_allclose(
            np.asarray(d.log_prob(x)), np.asarray(nd.Kumaraswamy(*params).log_prob(x)), rtol=1e-4, atol=1e-5
        )
        total, _ = quad(lambda t: np.exp(_kumaraswamy_logpdf(t, *params)), 0, 1)
        assert abs(total - 1) < 1e-6
    else:
        r = ref(params)
        np.testing.assert_allclose(np.asarray(d.log_prob(jnp.asarray(x))), r.logpdf(x), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(x, r.ppf(u), rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("cls,params,ref", CASES, ids=IDS)
def test_sample_moments(cls, params, ref):
    d = cls(*params)
    x = np.asarray(d.sample(jax.random.key(0), (200_000,)))
    assert d.has_rsample
    if cls is F.Cauchy:  # no mean: compare quartiles
        q = np.quantile(x, [0.25, 0.5, 0.75])
        np.testing.assert_allclose(q, ref(params).ppf([0.25, 0.5, 0.75]), atol=0.03)
        return
    mean = float(d.mean)
    sd = float(np.std(x))
    assert abs(x.mean() - mean) < 5 * sd / np.sqrt(x.size)


@pytest.mark.parametrize("cls,params,ref", CASES, ids=IDS)
def test_reparameterized_gradient_matches_finite_differences(cls, params, ref):
    key = jax.random.key(3)

    def f(theta):  # smooth function of the draws, common random numbers
        return jnp.mean(jnp.tanh(cls(*theta).rsample(key, (512,))))

    theta = jnp.asarray(params, dtype=jnp.float32)
    g = np.asarray(jax.grad(f)(theta))
    h = 1e-2
    fd = [(float(f(theta.at[i].add(h))) - float(f(theta.at[i].add(-h)))) / (2 * h) for i in range(theta.shape[0])]
    np.testing.assert_allclose(g, fd, rtol=2e-2, atol=2e-3)
    assert np.all(np.abs(g) > 1e-4)  # the gradient really flows


def test_exponential_kl_closed_form_against_monte_carlo():
    q, p = F.Exponential(jnp.array([0.5, 2.0, 3.0])), F.Exponential(jnp.array([1.0, 1.0, 0.2]))
    exact = vk.kl_divergence(q, p, method="analytic")
    mc = vk.kl_divergence(q, p, method="mc", key=jax.random.key(0), n_samples=200_000)
    np.testing.assert_allclose(np.asarray(exact), np.asarray(mc), rtol=1e-2, atol=2e-3)


def test_kumaraswamy_beta_kl_against_monte_carlo():
    q, p = F.Kumaraswamy(jnp.array([2.0, 0.7]), jnp.array([3.0, 1.5])), nd.Beta(1.0, 1.0)
    exact = vk.kl_divergence(q, p, method="analytic")
    mc = vk.kl_divergence(q, p, method="mc", key=jax.random.key(1), n_samples=100_000)
    np.testing.assert_allclose(np.asarray(exact), np.asarray(mc), atol=1.5e-2)


LATENTS = [
    (vk.Exponential, 1, lambda d: vk.FamilyPrior(nd.Exponential, d, 1.0)),
    (vk.Weibull, 2, lambda d: vk.FamilyPrior(nd.Exponential, d, 1.0)),
    (vk.Kumaraswamy, 2, lambda d: vk.FamilyPrior(nd.Beta, d, 1.0, 1.0)),
    (vk.Cauchy, 2, lambda d: vk.FamilyPrior(F.Cauchy, d, 0.0, 1.0)),
    (vk.Logistic, 2, lambda d: vk.FamilyPrior(F.Logistic, d, 0.0, 1.0)),
    (vk.Gumbel, 2, vk.StandardNormal),
]


def _model(cls, mult, prior, getkey, d=3):
    return vk.VAE(
        prior=prior(d),
        encoder=cls(vk.MLP(64, mult * d, (16,), key=getkey())),
        decoder=vk.Bernoulli(vk.MLP(d, 64, (16,), key=getkey())),
    )


@pytest.mark.parametrize("cls,mult,prior", LATENTS, ids=[c[0].__name__ for c in LATENTS])
def test_family_as_encoder_gives_finite_elbo_gradients(cls, mult, prior, digits_binary, getkey):
    model = _model(cls, mult, prior, getkey)
    q = model.posterior(digits_binary[:8])
    assert q.has_rsample and q.event_shape == (3,)
    x = jnp.asarray(digits_binary[:32])
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.mean(vk.elbo(m, x, jax.random.key(0), estimator="reparam"))))(
        model
    )
    enc = np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(eqx.filter(g.encoder, eqx.is_array))])
    assert np.isfinite(enc).all() and np.abs(enc).max() > 1e-4


@pytest.mark.parametrize("i", [0, 5], ids=["Exponential", "Gumbel"])
def test_family_encoder_trains(i, digits_binary, getkey):
    x = digits_binary[:256]
    model = _model(*LATENTS[i], getkey)
    model, hist = vk.fit(model, x, key=getkey(), epochs=5, batch_size=32, optimizer=vk.default_optimizer(3e-3))
    loss = hist["train_loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0] - 1.0, loss
