"""Gradient estimators: REINFORCE agrees with reparameterization and with exact enumeration."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk


def enc_grads(model, x, key, **kw):
    diff, static = eqx.partition(model, vk.trainable(model))
    f = lambda d: jnp.mean(vk.elbo(eqx.combine(d, static), x, key, **kw))  # noqa: E731
    return jax.grad(f)(diff).encoder


def flat(tree):
    return jnp.concatenate([jnp.ravel(a) for a in jax.tree_util.tree_leaves(tree)])


@eqx.filter_jit  # one program per estimator (eager dispatch compiles every operation on its own)
def repeated(model, x, keys, **kw):
    return jax.vmap(lambda k: flat(enc_grads(model, x, k, **kw)))(keys)


elbo_jit = eqx.filter_jit(vk.elbo)
iwae_bound_jit = eqx.filter_jit(vk.iwae_bound)


def assert_same_mean(a, b, exact=None):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ma, mb = a.mean(0), b.mean(0)
    se = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b))
    assert np.all(np.abs(ma - mb) < 4.5 * se + 1e-3), np.max(np.abs(ma - mb) / (se + 1e-9))
    if exact is not None:
        se_b = np.sqrt(b.var(0) / len(b))
        assert np.all(np.abs(mb - exact) < 4.5 * se_b + 1e-3)


def test_reinforce_and_reparam_agree_on_gaussian_latent(getkey):
    k1, k2 = jax.random.split(getkey())
    model = vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(vk.MLP(3, 4, hidden=(), key=k1)),
        vk.Gaussian(vk.MLP(2, 3, hidden=(), key=k2), variance="fixed", scale=1.0),
    )
    x = jax.random.normal(getkey(), (4, 3))
    keys = jax.random.split(getkey(), 300)
    rep = repeated(model, x, keys, n_samples=20, kl="mc", estimator="reparam")
    rf = repeated(model, x, keys, n_samples=20, kl="mc", estimator="reinforce")
    assert not np.allclose(rep, rf)  # really two different estimators
    assert_same_mean(rep, rf)
    # REINFORCE has the larger variance, the reason reparameterization is preferred
    assert rf.var(0).sum() > rep.var(0).sum()


def bernoulli_latent_model(key, dz=2, dx=3):
    k1, k2 = jax.random.split(key)
    return vk.VAE(
        vk.BernoulliPrior(dz),
        vk.Bernoulli(vk.MLP(dx, dz, hidden=(), key=k1)),
        vk.Gaussian(vk.MLP(dz, dx, hidden=(), key=k2), variance="fixed", scale=0.7),
    )


def exact_elbo(model, x):
    """Sum over all 2^dz latent configurations (exact expectation under q)."""
    q, p = model.posterior(x), model.prior_dist()
    dz = q.event_shape[0]
    zs = jnp.array(list(itertools.product([0.0, 1.0], repeat=dz)))  # [C, dz]
    z = jnp.broadcast_to(zs[:, None, :], (len(zs), x.shape[0], dz))
    logq = q.log_prob(z)
    f = model.likelihood(z, batch_ndim=2).log_prob(x) + p.log_prob(z) - logq
    return jnp.sum(jnp.exp(logq) * f, 0)


@pytest.mark.parametrize("n_samples", [1, 8])
def test_reinforce_unbiased_against_enumeration(getkey, n_samples):
    model = bernoulli_latent_model(getkey())
    x = jax.random.normal(getkey(), (5, 3))
    diff, static = eqx.partition(model, vk.trainable(model))
    exact = flat(jax.grad(lambda d: jnp.mean(exact_elbo(eqx.combine(d, static), x)))(diff).encoder)
    keys = jax.random.split(getkey(), 2000)
    est = repeated(model, x, keys, n_samples=n_samples, kl="mc")  # auto -> reinforce
    se = np.asarray(est).std(0) / np.sqrt(len(keys))
    assert np.all(np.abs(np.asarray(est).mean(0) - np.asarray(exact)) < 4.5 * se + 1e-3)
    # the value is the ELBO, unchanged by the surrogate term
    v = elbo_jit(model, x, getkey(), n_samples=20_000, kl="mc")
    np.testing.assert_allclose(v, exact_elbo(model, x), atol=0.05)


def test_estimator_choice_and_errors(getkey):
    model = bernoulli_latent_model(getkey())
    x = jax.random.normal(getkey(), (2, 3))
    q = model.posterior(x)
    from vaekit.core import resolve_estimator

    assert resolve_estimator(q, "auto") == "reinforce"
    assert resolve_estimator(vk.Gaussian(lambda v: jnp.zeros(4)).dist(x), "auto") == "reparam"
    with pytest.raises(ValueError, match="no reparameterized sampler.*reinforce"):
        vk.elbo(model, x, getkey(), estimator="reparam")
    with pytest.raises(ValueError, match="Valid values: 'auto', 'reparam', 'reinforce'"):
        vk.elbo(model, x, getkey(), estimator="score")
    # analytic Bernoulli KL exists and agrees with the MC version
    a = elbo_jit(model, x, getkey(), kl="analytic", n_samples=20_000)
    np.testing.assert_allclose(a, exact_elbo(model, x), atol=0.05)


def test_iwae_vimco_gradient_is_finite_and_bound_holds(getkey):
    model = bernoulli_latent_model(getkey())
    x = jax.random.normal(getkey(), (5, 3))
    g = flat(enc_grads(model, x, getkey(), n_samples=1))
    assert bool(jnp.all(jnp.isfinite(g)))
    diff, static = eqx.partition(model, vk.trainable(model))
    gi = eqx.filter_jit(jax.grad(lambda d, k: jnp.mean(vk.iwae_bound(eqx.combine(d, static), x, k, k=8))))(
        diff, getkey()
    )
    assert all(bool(jnp.all(jnp.isfinite(a))) for a in jax.tree_util.tree_leaves(gi))
    xr = jnp.repeat(x, 400, 0)  # average out the Monte Carlo noise of each bound
    b1, b8, b64 = (float(iwae_bound_jit(model, xr, getkey(), k=k).mean()) for k in (1, 8, 64))
    assert b1 < b8 < b64
    # exact log p(x) by enumeration bounds them all
    q_all = jnp.array([[a, b] for a in (0.0, 1.0) for b in (0.0, 1.0)])
    z = jnp.broadcast_to(q_all[:, None], (4, xr.shape[0], 2))
    logpxz = model.likelihood(z, batch_ndim=2).log_prob(xr) + model.prior_dist().log_prob(z)
    assert b64 <= float(jax.nn.logsumexp(logpxz, 0).mean()) + 0.01


def test_dirichlet_latent_uses_implicit_reparameterization(getkey):
    k1, k2 = jax.random.split(getkey())
    model = vk.VAE(
        _DirichletPrior(jnp.full((3,), 0.9)),
        vk.Dirichlet(vk.MLP(4, 3, hidden=(), key=k1)),
        vk.Gaussian(vk.MLP(3, 4, hidden=(), key=k2), variance="fixed", scale=1.0),
    )
    x = jax.random.normal(getkey(), (3, 4))
    from vaekit.core import resolve_estimator

    assert resolve_estimator(model.posterior(x), "auto") == "reparam"
    keys = jax.random.split(getkey(), 200)
    rep = repeated(model, x, keys, n_samples=10, kl="mc", estimator="reparam")
    rf = repeated(model, x, keys, n_samples=10, kl="mc", estimator="reinforce")
    assert_same_mean(rep, rf)


class _DirichletPrior(vk.Prior):
    """A user-defined prior: any numpyro distribution works."""

    alpha: jax.Array

    def dist(self):
        import numpyro.distributions as nd

        return nd.Dirichlet(self.alpha)
