"""Every bad input gets a clear error naming the problem and the fix."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk


@pytest.fixture(scope="module")
def model():
    k1, k2 = jax.random.split(jax.random.key(0))
    return vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(vk.MLP(8, 4, hidden=(8,), key=k1)),
        vk.Bernoulli(vk.MLP(2, 8, hidden=(8,), key=k2)),
    )


@pytest.fixture(scope="module")
def x():
    return (np.random.default_rng(0).random((40, 8)) > 0.5).astype(np.float32)


def fit(model, data, **kw):
    kw = {"key": jax.random.key(0), "epochs": 1, "batch_size": 10} | kw
    return vk.fit(model, data, **kw)


def test_wrong_trailing_shape(model, x):
    with pytest.raises(ValueError, match=r"examples of shape \(7,\).*decoder produces examples of shape \(8,\)"):
        fit(model, x[:, :7])


def test_nan_and_inf(model, x):
    bad = x.copy()
    bad[3, 2] = np.nan
    bad[5, 0] = np.inf
    with pytest.raises(ValueError, match=r"2 NaN/inf value\(s\) in 2 row\(s\).*\[3, 5\]"):
        fit(model, bad)
    with pytest.raises(ValueError, match="x_val contains"):
        fit(model, x, x_val=bad)


def test_bernoulli_data_outside_01(model, x):
    with pytest.raises(ValueError, match="outside the support.*0 or 1.*Binarize"):
        fit(model, x * 0.5)


def test_batch_size_too_large_or_invalid(model, x):
    with pytest.raises(ValueError, match="batch_size=100 is larger than x_train, which has 40 examples"):
        fit(model, x, batch_size=100)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        fit(model, x, batch_size=0)


def test_empty_data(model):
    with pytest.raises(ValueError, match="empty"):
        fit(model, np.zeros((0, 8), np.float32))


def test_non_numeric_data(model):
    with pytest.raises(TypeError, match="must be numeric"):
        fit(model, np.array([["a"] * 8] * 4))


def test_unknown_options_list_valid_values(model, x):
    with pytest.raises(ValueError, match="Unknown variance='full'.*'diag', 'scalar', 'shared', 'fixed'"):
        vk.Gaussian(lambda v: v, variance="full")
    with pytest.raises(ValueError, match="Unknown kl='exact'.*'auto', 'analytic', 'mc'"):
        vk.elbo(model, x, jax.random.key(0), kl="exact")
    with pytest.raises(ValueError, match="Unknown kl='exact'"):
        fit(model, x, kl="exact")
    with pytest.raises(ValueError, match="Unknown estimator='pathwise'.*'auto', 'reparam', 'reinforce'"):
        fit(model, x, estimator="pathwise")
    with pytest.raises(ValueError, match="Unknown objective"):
        fit(model, x, objective="elbow")


def test_analytic_kl_without_closed_form(x):
    k1, k2, k3 = jax.random.split(jax.random.key(1), 3)
    m = vk.VAE(
        vk.MixtureOfGaussians(3, 2, key=k3),
        vk.Gaussian(vk.MLP(8, 4, hidden=(), key=k1)),
        vk.Bernoulli(vk.MLP(2, 8, hidden=(), key=k2)),
    )
    with pytest.raises(
        ValueError, match="no closed-form KL is known for Normal against DiagonalNormalMixture.*kl='mc'"
    ):
        vk.elbo(m, x, jax.random.key(0), kl="analytic")
    assert vk.elbo(m, x, jax.random.key(0)).shape == (40,)  # auto falls back to Monte Carlo


def test_constructor_errors():
    with pytest.raises(ValueError, match='variance="fixed"\\) needs scale='):
        vk.Gaussian(lambda v: v, variance="fixed")
    with pytest.raises(ValueError, match="pass size="):
        vk.Gaussian(lambda v: v, variance="shared")
    with pytest.raises(TypeError, match="VAE encoder must be a vaekit Conditional"):
        vk.VAE(vk.StandardNormal(2), lambda v: v, vk.Bernoulli(lambda v: v))
    with pytest.raises(ValueError, match="positive int"):
        vk.StandardNormal(0)
    with pytest.raises(ValueError, match="hidden widths must be positive"):
        vk.MLP(2, 2, hidden=(0,), key=jax.random.key(0))


def test_wrong_network_output_size(x):
    k1, k2 = jax.random.split(jax.random.key(1))
    m = vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(vk.MLP(8, 5, hidden=(), key=k1)),  # needs 2*d outputs
        vk.Bernoulli(vk.MLP(2, 8, hidden=(), key=k2)),
    )
    with pytest.raises(ValueError, match="multiple of 2"):
        vk.elbo(m, jnp.asarray(x), jax.random.key(0))
