"""ELBO, IWAE and importance-sampled log-likelihood against exact linear-Gaussian answers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import vaekit as vk

DZ, DX = 2, 5

# Each estimate compiled as one program (eager dispatch compiles every operation on its own:
# several times slower here); the values are those of the plain calls.
elbo_jit = eqx.filter_jit(vk.elbo)
iwae_bound_jit = eqx.filter_jit(vk.iwae_bound)


def inv_softplus(y):
    return np.log(np.expm1(y))


def linear_gaussian(key, encoder="exact", dz=DZ, dx=DX, widen=1.2, offset=0.0):
    """Prior N(0, I), decoder N(Wz + b, diag(psi)); encoder = diag approx of the exact posterior."""
    k1, k2, k3 = jax.random.split(key, 3)
    W = np.asarray(jax.random.normal(k1, (dx, dz)), np.float64)
    b = np.asarray(jax.random.normal(k2, (dx,)), np.float64)
    psi = np.asarray(0.3 + jax.random.uniform(k3, (dx,)), np.float64)
    Sigma = np.linalg.inv(np.eye(dz) + W.T @ np.diag(1 / psi) @ W)
    M = Sigma @ W.T @ np.diag(1 / psi)
    post_sd = np.sqrt(np.diag(Sigma)) * widen
    enc_net = vk.MLP(dx, 2 * dz, hidden=(), key=k1)
    enc_net = eqx.tree_at(
        lambda n: (n.layers[0].weight, n.layers[0].bias),
        enc_net,
        (
            jnp.asarray(np.vstack([M, np.zeros((dz, dx))]), jnp.float32),
            jnp.asarray(np.concatenate([-M @ b + offset, inv_softplus(post_sd - 1e-4)]), jnp.float32),
        ),
    )
    dec_net = vk.MLP(dz, dx, hidden=(), key=k2)
    dec_net = eqx.tree_at(
        lambda n: (n.layers[0].weight, n.layers[0].bias),
        dec_net,
        (jnp.asarray(W, jnp.float32), jnp.asarray(b, jnp.float32)),
    )
    model = vk.VAE(
        prior=vk.StandardNormal(dz),
        encoder=vk.Gaussian(enc_net, variance="diag"),
        decoder=vk.Gaussian(dec_net, variance="fixed", scale=np.sqrt(psi)),
    )
    cov = W @ W.T + np.diag(psi)
    return model, (b, cov)


def exact_logp(x, b, cov):
    return st.multivariate_normal(b, cov).logpdf(np.asarray(x, np.float64))


def test_log_likelihood_matches_exact_marginal(getkey):
    model, (b, cov) = linear_gaussian(getkey())
    x = np.random.default_rng(0).multivariate_normal(b, cov, size=64).astype(np.float32)
    ll = vk.log_likelihood(model, x, getkey(), n_samples=5000)
    exact = exact_logp(x, b, cov)
    assert np.max(np.abs(np.asarray(ll) - exact)) < 0.05
    elbo = np.asarray(elbo_jit(model, x, getkey(), n_samples=4000))
    assert np.all(elbo < exact + 0.02)  # a bound, up to Monte Carlo error of the estimate
    assert np.mean(exact - elbo) > 0.01  # strict on average: diagonal q is not the posterior


def test_elbo_is_exact_with_the_true_posterior(getkey):
    # 1-D latent: the diagonal Gaussian encoder can equal the exact posterior, so
    # log p(x, z) - log q(z|x) = log p(x) for every z: the ELBO is exact, even with one sample.
    model, (b, cov) = linear_gaussian(getkey(), dz=1, widen=1.0)
    x = np.random.default_rng(1).multivariate_normal(b, cov, size=16).astype(np.float32)
    exact = exact_logp(x, b, cov)
    np.testing.assert_allclose(elbo_jit(model, x, getkey(), kl="mc"), exact, atol=2e-3)
    # With the closed-form KL only the expectation is exact.
    np.testing.assert_allclose(elbo_jit(model, x, getkey(), kl="analytic", n_samples=20_000), exact, atol=0.03)
    np.testing.assert_allclose(iwae_bound_jit(model, x, getkey(), k=7), exact, atol=2e-3)


def test_iwae_at_least_elbo_and_nondecreasing(getkey):
    model, (b, cov) = linear_gaussian(getkey(), widen=2.0, offset=0.7)
    x = np.random.default_rng(2).multivariate_normal(b, cov, size=256).astype(np.float32)
    exact = exact_logp(x, b, cov).mean()
    elbo = float(elbo_jit(model, x, getkey(), n_samples=64).mean())
    bounds = [float(iwae_bound_jit(model, x, getkey(), k=k).mean()) for k in (1, 4, 16, 64, 256)]
    assert abs(bounds[0] - elbo) < 0.1  # k = 1 is the ELBO
    assert all(a <= b_ + 0.02 for a, b_ in zip(bounds, bounds[1:])), bounds
    assert bounds[-1] > elbo + 0.1
    assert bounds[-1] <= exact + 0.02


def test_analytic_and_mc_kl_elbo_agree(getkey):
    model, (b, cov) = linear_gaussian(getkey(), offset=0.5)
    x = np.random.default_rng(3).multivariate_normal(b, cov, size=32).astype(np.float32)
    key = getkey()
    a = elbo_jit(model, x, key, n_samples=20_000, kl="analytic")
    m = elbo_jit(model, x, key, n_samples=20_000, kl="mc")
    np.testing.assert_allclose(a, m, atol=0.05)


def test_beta_weights_the_kl(getkey):
    model, (b, cov) = linear_gaussian(getkey(), offset=0.5)
    x = np.random.default_rng(4).multivariate_normal(b, cov, size=8).astype(np.float32)
    key = getkey()
    e1, e0, e2 = (elbo_jit(model, x, key, beta=bb) for bb in (1.0, 0.0, 2.0))
    kl = e0 - e1
    assert np.all(np.asarray(kl) > 0)
    np.testing.assert_allclose(e2, e0 - 2 * kl, rtol=1e-5, atol=1e-4)


def test_log_likelihood_blocking_does_not_change_results(getkey):
    model, (b, cov) = linear_gaussian(getkey())
    x = np.random.default_rng(5).multivariate_normal(b, cov, size=10).astype(np.float32)
    key = getkey()
    a = vk.log_likelihood(model, x, key, n_samples=300, chunk_size=100, block_size=3)
    c = vk.log_likelihood(model, x, key, n_samples=300, chunk_size=100, block_size=64)
    np.testing.assert_allclose(a, c, rtol=1e-6)
    # uneven chunking masks the padded samples
    d = vk.log_likelihood(model, x, key, n_samples=250, chunk_size=100)
    assert np.max(np.abs(np.asarray(d) - exact_logp(x, b, cov))) < 0.1


@pytest.mark.parametrize("kw", [{"n_samples": 0}, {"n_samples": 2.5}, {"chunk_size": 0}])
def test_log_likelihood_rejects_bad_sizes(getkey, kw):
    model, _ = linear_gaussian(getkey())
    with pytest.raises(ValueError, match="positive int"):
        vk.log_likelihood(model, jnp.zeros((2, DX)), getkey(), **kw)
