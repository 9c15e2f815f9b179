"""The continuous Bernoulli (Loaiza-Ganem & Cunningham 2019): a proper density on [0, 1]."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.core import ContinuousBernoulliLogits


def _quadrature(pieces=200, order=20):
    """Composite Gauss-Legendre nodes and weights on [0, 1] (exact for smooth densities)."""
    t, w = np.polynomial.legendre.leggauss(order)
    left = np.arange(pieces) / pieces
    x = (left[:, None] + (t[None] + 1) / (2 * pieces)).ravel()
    return x, np.tile(w / (2 * pieces), pieces)


X, W = _quadrature()


@jax.jit
def _log_density(eta):
    return ContinuousBernoulliLogits(eta).log_prob(jnp.asarray(X, jnp.float32))


@jax.jit
def _summary(eta):
    """mean, variance, 20000 draws, gradients of log p(0.3) and of a reparameterized draw."""
    d = ContinuousBernoulliLogits(eta)
    g_lp = jax.grad(lambda e: ContinuousBernoulliLogits(e).log_prob(0.3))(eta)
    g_s = jax.grad(lambda e: ContinuousBernoulliLogits(e).rsample(jax.random.key(1), (4,)).sum())(eta)
    grid = jnp.linspace(0.01, 0.99, 50)
    return d.mean, d.variance, d.sample(jax.random.key(0), (20000,)), g_lp, g_s, d.cdf(grid)


def _moments(eta):
    p = np.exp(np.asarray(_log_density(jnp.float32(eta)), np.float64))
    return [float(np.sum(W * p * X**k)) for k in range(3)]


LOGITS = [-60.0, -5.0, -0.3, -0.05, -1e-4, 0.0, 1e-6, 0.099, 0.1, 0.7, 5.0, 60.0]


def reference_log_prob(x, eta):
    """The paper's form in float64: log C(l) + x log l + (1 - x) log(1 - l), l = sigmoid(eta),
    C(l) = 2 artanh(1 - 2l) / (1 - 2l), C(1/2) = 2."""
    lam = 1 / (1 + np.exp(-eta))
    c = 2.0 if eta == 0 else 2 * np.arctanh(1 - 2 * lam) / (1 - 2 * lam)
    return np.log(c) + x * np.log(lam) + (1 - x) * np.log1p(-lam)


@pytest.mark.parametrize("eta", LOGITS)
def test_density_integrates_to_one_and_matches_the_formula(eta):
    d = ContinuousBernoulliLogits(jnp.float32(eta))
    assert _moments(eta)[0] == pytest.approx(1.0, abs=1e-5)
    if abs(eta) <= 20:  # beyond, the reference loses precision (1 - 2l rounds)
        xs = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
        np.testing.assert_allclose(
            np.asarray(d.log_prob(jnp.asarray(xs, jnp.float32))), reference_log_prob(xs, eta), atol=2e-6
        )


@pytest.mark.parametrize("eta", [-5.0, -1e-4, 0.0, 0.3, 40.0])
def test_mean_variance_samples_and_gradients(eta):
    _, m1, m2 = _moments(eta)
    mean, var, s, g, g_sample, cdf = (np.asarray(v) for v in _summary(jnp.float32(eta)))
    assert float(mean) == pytest.approx(m1, abs=2e-5) and float(var) == pytest.approx(m2 - m1**2, abs=2e-5)
    assert s.min() >= 0 and s.max() <= 1
    grid = np.linspace(0.01, 0.99, 50)
    ks = np.max(np.abs((s[:, None] <= grid).mean(0) - cdf))
    assert ks < 0.015  # Kolmogorov-Smirnov distance (critical value ~0.0096 at 5 % for 20000 draws)
    assert np.isfinite(g) and np.isfinite(g_sample)
    if abs(eta) < 20:
        fd = (reference_log_prob(0.3, eta + 1e-3) - reference_log_prob(0.3, eta - 1e-3)) / 2e-3
        assert float(g) == pytest.approx(fd, abs=1e-3)


def test_continuous_bernoulli_decoder_learns_grey_values(getkey):
    import equinox as eqx
    import optax
    from sklearn.datasets import load_digits

    x = jnp.asarray(load_digits().data[:200] / 16, jnp.float32)  # grey levels kept, exact 0s and 1s included
    model = vk.presets.build("vae", 64, key=getkey(), hidden=16, likelihood="continuous-bernoulli")
    assert isinstance(model.decoder, vk.ContinuousBernoulli)
    opt = optax.adam(3e-3)

    @eqx.filter_jit
    def step(m, o, k):
        loss, g = eqx.filter_value_and_grad(lambda m: -jnp.mean(vk.elbo(m, x, k)))(m)
        u, o = opt.update(g, o)
        return eqx.apply_updates(m, u), o, loss

    o = opt.init(eqx.filter(model, eqx.is_array))
    losses = []
    for i in range(30):
        model, o, loss = step(model, o, jax.random.key(i))
        losses.append(float(loss))
    assert np.isfinite(losses).all() and losses[-1] < losses[0] - 5
    with pytest.raises(
        ValueError, match=r"outside the support of the decoder ContinuousBernoulli \(values must lie in \[0, 1\]\)"
    ):
        vk.fit(model, np.asarray(x) * 16, key=0, epochs=1, batch_size=50)
