"""Every closed-form KL vaekit uses agrees with a Monte Carlo estimate (within 4 s.e.)."""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst

import vaekit as vk
from vaekit.core import has_analytic_kl

N = 200_000


@partial(jax.jit, static_argnums=3)  # one compiled program, not one per operation
def log_ratio(q, p, key, n):
    z = q.sample(key, (n,))
    return q.log_prob(z) - p.log_prob(z)


def mc_check(q, p, key, n=N):
    diff = np.asarray(log_ratio(q, p, key, n), dtype=np.float64)
    est, se = diff.mean(0), diff.std(0) / np.sqrt(n)
    exact = np.asarray(vk.kl_divergence(q, p, method="analytic"))
    assert has_analytic_kl(q, p)
    assert np.all(np.abs(est - exact) < 4 * se + 1e-3), (est, exact, se)
    assert np.all(exact >= -1e-6)


def pairs():
    k = jax.random.split(jax.random.key(7), 8)
    n = lambda i, s: jax.random.normal(k[i], s)  # noqa: E731
    return {
        "normal": (
            nd.Normal(n(0, (3,)), jnp.exp(0.3 * n(1, (3,)))).to_event(1),
            nd.Normal(jnp.zeros(3), jnp.ones(3)).to_event(1),
        ),
        "laplace": (
            nd.Laplace(n(2, (3,)), jnp.array([0.5, 1.0, 2.0])),
            nd.Laplace(jnp.array([0.3, -1.0, 0.0]), jnp.array([1.5, 0.7, 1.0])),
        ),
        "bernoulli": (
            vk.Bernoulli(lambda x: x).dist(n(3, (1, 4))),
            nd.BernoulliLogits(jnp.array([0.5, -1.0, 0.0, 2.0])).to_event(1),
        ),
        "categorical": (nd.CategoricalLogits(n(4, (2, 5))), nd.CategoricalLogits(n(5, (2, 5)))),
        "onehot": (vk.OneHotCategoricalLogits(n(4, (2, 5))), vk.OneHotCategoricalLogits(jnp.zeros((2, 5)))),
        "beta": (
            nd.Beta(jnp.array([0.5, 2.0]), jnp.array([3.0, 0.8])),
            nd.Beta(jnp.array([1.0, 1.0]), jnp.array([1.0, 2.0])),
        ),
        "dirichlet": (nd.Dirichlet(jnp.array([0.7, 2.0, 3.0])), nd.Dirichlet(jnp.ones(3))),
    }


@pytest.mark.parametrize("name", list(pairs()))
def test_closed_form_kl_matches_monte_carlo(name, getkey):
    q, p = pairs()[name]
    mc_check(q, p, getkey())


@settings(max_examples=15, deadline=None)
@given(m1=hst.floats(-3, 3), m2=hst.floats(-3, 3), s1=hst.floats(0.2, 3), s2=hst.floats(0.2, 3))
def test_laplace_kl_property(m1, m2, s1, s2):
    q, p = nd.Laplace(m1, s1), nd.Laplace(m2, s2)
    mc_check(q, p, jax.random.key(0), n=100_000)


def test_kl_methods_and_errors(getkey):
    q = nd.Normal(jnp.ones(2), 0.5 * jnp.ones(2)).to_event(1)
    p = vk.MixtureOfGaussians(3, 2, key=getkey()).dist()
    assert not has_analytic_kl(q, p)
    with pytest.raises(ValueError, match="no closed-form KL.*kl='mc'"):
        vk.kl_divergence(q, p, method="analytic")
    mc = vk.kl_divergence(q, p, method="auto", key=getkey(), n_samples=50_000)
    assert mc.shape == () and float(mc) > 0
    with pytest.raises(ValueError, match="Valid values: 'auto', 'analytic', 'mc'"):
        vk.kl_divergence(q, p, method="exact")
    q2 = nd.Normal(jnp.zeros(2), jnp.ones(2)).to_event(1)
    std = vk.StandardNormal(2).dist()
    np.testing.assert_allclose(vk.kl_divergence(q2, std), 0.0, atol=1e-7)
