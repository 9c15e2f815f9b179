"""Conditional distributions: log-probs against scipy.stats, shapes, options."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import vaekit as vk


def affine(out, key, in_size=3):
    return vk.MLP(in_size, out, hidden=(), key=key)


@pytest.fixture
def x(getkey):
    return jax.random.normal(getkey(), (5, 3))


def test_gaussian_diag_matches_scipy(getkey, x):
    d = 4
    g = vk.Gaussian(affine(2 * d, getkey()), variance="diag")
    y = jax.random.normal(getkey(), (5, d))
    out = jax.vmap(g.net)(x)
    loc, scale = out[:, :d], jax.nn.softplus(out[:, d:]) + 1e-4
    ref = st.norm(np.asarray(loc), np.asarray(scale)).logpdf(np.asarray(y)).sum(-1)
    np.testing.assert_allclose(g.log_prob(y, x), ref, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(g.mean(x), loc, rtol=1e-6)
    assert g.dist(x).event_shape == (d,) and g.dist(x).batch_shape == (5,)
    assert g.sample(getkey(), x).shape == (5, d)


@pytest.mark.parametrize("variance", ["scalar", "shared", "fixed"])
def test_gaussian_variance_options(getkey, x, variance):
    d = 4
    out = {"scalar": d + 1, "shared": d, "fixed": d}[variance]
    kw = {"scale": 0.3} if variance == "fixed" else {}
    g = vk.Gaussian(affine(out, getkey()), variance=variance, **kw)
    scale = g.parameters(x)["scale"]
    assert scale.shape == (5, d)
    if variance == "scalar":  # one scale per example
        np.testing.assert_allclose(scale, scale[:, :1] * np.ones((1, d)))
    if variance == "shared":  # same scale for every input
        np.testing.assert_allclose(scale, np.broadcast_to(scale[:1], scale.shape))
        np.testing.assert_allclose(scale[0], 1.0, rtol=1e-5)  # init_scale
    if variance == "fixed":
        np.testing.assert_allclose(scale, 0.3, rtol=1e-6)
        assert not any(jax.tree_util.tree_leaves(vk.trainable(g.raw_scale)))


def test_laplace_studentt_match_scipy(getkey, x):
    d = 3
    y = jax.random.normal(getkey(), (5, d))
    lap = vk.Laplace(affine(2 * d, getkey()))
    p = lap.parameters(x)
    ref = st.laplace(np.asarray(p["loc"]), np.asarray(p["scale"])).logpdf(np.asarray(y)).sum(-1)
    np.testing.assert_allclose(lap.log_prob(y, x), ref, rtol=1e-5, atol=1e-4)
    t = vk.StudentT(affine(2 * d, getkey()), df=4.0)
    p = t.parameters(x)
    np.testing.assert_allclose(p["df"], 4.0, rtol=1e-5)
    ref = st.t(4.0, np.asarray(p["loc"]), np.asarray(p["scale"])).logpdf(np.asarray(y)).sum(-1)
    np.testing.assert_allclose(t.log_prob(y, x), ref, rtol=1e-4, atol=1e-4)


def test_beta_dirichlet_categorical_match_scipy(getkey, x):
    d = 3
    b = vk.Beta(affine(2 * d, getkey()))
    y = jax.random.uniform(getkey(), (5, d), minval=0.05, maxval=0.95)
    p = b.parameters(x)
    ref = st.beta(np.asarray(p["concentration1"]), np.asarray(p["concentration0"])).logpdf(np.asarray(y)).sum(-1)
    np.testing.assert_allclose(b.log_prob(y, x), ref, rtol=1e-4, atol=1e-4)

    dr = vk.Dirichlet(affine(d, getkey()))
    y = jax.random.dirichlet(getkey(), jnp.ones(d), (5,))
    alpha = np.asarray(dr.parameters(x)["concentration"], dtype=np.float64)
    yy = np.asarray(y, dtype=np.float64)
    yy = yy / yy.sum(-1, keepdims=True)
    ref = [st.dirichlet(alpha[i]).logpdf(yy[i]) for i in range(5)]
    np.testing.assert_allclose(dr.log_prob(y, x), ref, rtol=1e-3, atol=1e-3)
    assert dr.dist(x).event_shape == (d,)

    k = 4
    c = vk.Categorical(affine(2 * k, getkey()), num_classes=k)
    y = jax.random.randint(getkey(), (5, 2), 0, k)
    logits = np.asarray(jax.vmap(c.net)(x)).reshape(5, 2, k)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ref = np.take_along_axis(logp, np.asarray(y)[..., None], -1)[..., 0].sum(-1)
    np.testing.assert_allclose(c.log_prob(y, x), ref, rtol=1e-5, atol=1e-5)
    oh = vk.Categorical(c.net, num_classes=k, one_hot=True)
    np.testing.assert_allclose(oh.log_prob(jax.nn.one_hot(y, k), x), ref, rtol=1e-5, atol=1e-5)
    s = oh.sample(getkey(), x)
    assert s.shape == (5, 2, k) and bool(jnp.all(s.sum(-1) == 1))


@pytest.mark.parametrize("logit", [1e4, -1e4, 30.0, -30.0, 0.0])
def test_bernoulli_log_prob_extreme_logits(logit):
    bern = vk.Bernoulli(lambda z: jnp.full((2,), logit))
    y = jnp.array([[1.0, 0.0]])
    lp = bern.log_prob(y, jnp.zeros((1, 1)))
    # exact: log sigmoid(l) + log sigmoid(-l), computed in float64 by numpy
    l64 = np.float64(logit)
    ref = -np.logaddexp(0, -l64) - np.logaddexp(0, l64)
    assert np.isfinite(np.asarray(lp)).all()
    np.testing.assert_allclose(lp, [ref], rtol=1e-6)


def test_bernoulli_grad_finite_at_extreme_logits():
    g = jax.grad(lambda l: vk.Bernoulli(lambda z: l).log_prob(jnp.ones((1, 3)), jnp.zeros((1, 1)))[0])(
        jnp.array([1e4, -1e4, 0.0])
    )
    assert bool(jnp.all(jnp.isfinite(g)))
    np.testing.assert_allclose(g, [0.0, 1.0, 0.5], atol=1e-6)


def test_batch_ndim_two_matches_loop(getkey):
    g = vk.Gaussian(affine(4, getkey(), in_size=2))
    z = jax.random.normal(getkey(), (3, 5, 2))
    y = jax.random.normal(getkey(), (3, 5, 2))
    lp = g.log_prob(y, z, batch_ndim=2)
    ref = jnp.stack([g.log_prob(y[i], z[i]) for i in range(3)])
    np.testing.assert_allclose(lp, ref, rtol=1e-5, atol=1e-5)


def test_jit_roundtrip(getkey, x):
    g = vk.Gaussian(affine(6, getkey()))
    y = jax.random.normal(getkey(), (5, 3))
    f = jax.jit(lambda yy, xx: g.log_prob(yy, xx))
    np.testing.assert_allclose(f(y, x), g.log_prob(y, x), rtol=1e-6)


def test_priors(getkey):
    p = vk.StandardNormal(3)
    z = jax.random.normal(getkey(), (4, 3))
    np.testing.assert_allclose(p.log_prob(z), st.norm().logpdf(np.asarray(z)).sum(-1), rtol=1e-6)
    n = vk.Normal(jnp.array([1.0, -1.0]), jnp.array([2.0, 0.5]))
    z2 = z[:, :2]
    ref = st.norm([1.0, -1.0], [2.0, 0.5]).logpdf(np.asarray(z2)).sum(-1)
    np.testing.assert_allclose(n.log_prob(z2), ref, rtol=1e-5)
    mog = vk.MixtureOfGaussians(3, 2, key=getkey())
    locs, sc = np.asarray(mog.locs), np.exp(np.asarray(mog.log_scales))
    comp = np.stack([st.norm(locs[j], sc[j]).logpdf(np.asarray(z2)).sum(-1) for j in range(3)])
    ref = np.log(np.exp(comp).mean(0))
    np.testing.assert_allclose(mog.log_prob(z2), ref, rtol=1e-5)
    assert mog.sample(getkey(), 7).shape == (7, 2)
    assert vk.CategoricalPrior(2, 3).sample(getkey(), 4).shape == (4, 2, 3)
    assert vk.BernoulliPrior(5).sample(getkey(), 4).shape == (4, 5)
