"""Hyperspherical latents (issue 16, section 2): references are scipy (Bessel functions,
``scipy.stats.vonmises_fisher`` log-densities and entropies, float64 quadrature of the CDF
of ``w = mu^T z``) and closed forms (``E[z] = A_d(k) mu``; the power spherical normalizer
in ``R^3``)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st
from scipy import integrate
from scipy.optimize import brentq

import vaekit as vk
from vaekit.zoo.hyperspherical import _dw_dkappa, log_bessel_ive, mean_resultant_length


def _unit(rng, d):
    v = rng.normal(size=d)
    return v / np.linalg.norm(v)


def _A(k, d):
    """Mean resultant length ``I_{d/2}(k) / I_{d/2-1}(k)``, float64 scipy."""
    return sp.ive(d / 2, k) / sp.ive(d / 2 - 1, k)


def test_log_bessel_ive_matches_scipy():
    for v in (0.0, 0.5, 1.5, 4.0, 14.5, 24.0, 99.0):
        for x in (1e-2, 1.0, 10.0, 50.0, 1e3, 1e4):
            ref = sp.ive(v, x)
            if ref == 0.0:
                continue
            got, ratio = log_bessel_ive(v, jnp.float32(x))
            assert abs(float(got) - np.log(ref)) <= 1e-5 * max(1.0, abs(np.log(ref))), (
                v,
                x,
            )
            assert float(ratio) == pytest.approx(sp.ive(v + 1, x) / ref, rel=1e-4), (
                v,
                x,
            )
    # order 499 near 0, where scipy underflows: the leading terms of the power series
    got, _ = log_bessel_ive(499.0, jnp.float32(1e-2))
    series = 499 * np.log(5e-3) - sp.gammaln(500) + np.log1p(1e-4 / 4 / 500) - 1e-2
    assert float(got) == pytest.approx(series, rel=1e-6)


@pytest.mark.parametrize("d", [3, 5, 10, 50])
def test_vmf_log_prob_matches_scipy(d):
    rng = np.random.default_rng(d)
    for k in (0.5, 5.0, 50.0, 500.0):
        mu = _unit(rng, d)
        ref = st.vonmises_fisher(mu, k)
        z = ref.rvs(6, random_state=rng)
        q = vk.VonMisesFisherDistribution(jnp.asarray(mu, jnp.float32), k)
        got = np.asarray(q.log_prob(jnp.asarray(z, jnp.float32)))
        np.testing.assert_allclose(got, ref.logpdf(z), rtol=1e-5, atol=1e-4)
        # entropy and the closed-form KL to the uniform distribution
        assert float(q.entropy()) == pytest.approx(ref.entropy(), rel=1e-5, abs=1e-4)
        u = vk.HypersphericalUniformDistribution(d)
        kl = vk.kl_divergence(q, u, method="analytic")
        assert float(kl) == pytest.approx(-ref.entropy() - float(u.log_prob(jnp.asarray(mu))), rel=1e-5, abs=1e-4)


def _log_iv_series(v, x, terms=60):
    """``log I_v(x)`` from its power series, float64 (for ``x`` small against ``v``)."""
    k = np.arange(terms)
    t = (2 * k + v) * np.log(x / 2) - sp.gammaln(k + 1) - sp.gammaln(v + k + 1)
    return float(np.logaddexp.reduce(t))


def test_large_concentration_and_dimension_stay_finite():
    """Where scipy's vonmises_fisher underflows (d = 1000, k = 10) and at k up to 1e5."""
    for d, k in ((1000, 10.0), (1000, 1e4), (3, 1e5)):
        q = vk.VonMisesFisherDistribution(jnp.zeros(d).at[0].set(1.0), k)
        lp = q.log_prob(q.loc)
        assert np.isfinite(float(lp)) and np.isfinite(float(q.entropy()))
        # the log-density at the mode, log C_d(k) + k, in float64
        v = d / 2 - 1
        log_iv = _log_iv_series(v, k) if k < v else np.log(sp.ive(v, k)) + k
        ref = v * np.log(k) - d / 2 * np.log(2 * np.pi) - log_iv + k
        assert float(lp) == pytest.approx(ref, rel=1e-5, abs=1e-3), (d, k)


def test_vmf_sample_moments(getkey):
    d = 10
    rng = np.random.default_rng(0)
    kappas = np.array([2.0, 50.0])
    mu = np.stack([_unit(rng, d), _unit(rng, d)])
    q = vk.VonMisesFisherDistribution(jnp.asarray(mu, jnp.float32), jnp.asarray(kappas, jnp.float32))
    n = 20000
    z = np.asarray(q.sample(getkey(), (n,)), np.float64)  # [n, 2, d]
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
    w = np.einsum("nbd,bd->nb", z, mu)
    for b, k in enumerate(kappas):
        se = w[:, b].std() / np.sqrt(n)
        assert abs(w[:, b].mean() - _A(k, d)) < 5 * se, (
            k,
            w[:, b].mean(),
            _A(k, d),
        )  # mean resultant length
        m = z[:, b].mean(0)
        # the mean direction: the component of the sample mean orthogonal to mu is noise
        orth = m - np.dot(m, mu[b]) * mu[b]
        assert np.linalg.norm(orth) < 5 * np.sqrt((1 - _A(k, d) ** 2) / n + 1e-12) * 2
    np.testing.assert_allclose(np.asarray(q.mean), _A(kappas, d)[:, None] * mu, rtol=1e-4, atol=1e-6)


def _cdf_w(w, k, d):
    """``P(mu^T z <= w)`` and the density of ``w`` (float64 quadrature over the angle)."""
    f = lambda t: np.exp(k * (np.cos(t) - 1)) * np.sin(t) ** (d - 2)
    mode = np.arccos(min(1.0, (np.sqrt((d - 2) ** 2 + 4 * k * k) - (d - 2)) / (2 * k)))
    z = integrate.quad(f, 0, np.pi, points=[mode], limit=500, epsabs=0, epsrel=1e-13)[0]
    tw = np.arccos(w)
    return integrate.quad(f, tw, np.pi, limit=500, epsabs=0, epsrel=1e-13)[0] / z, f(tw) / np.sin(tw) / z


def test_implicit_gradient_of_w_matches_quadrature():
    """``dw/dk = -(dF/dk) / p(w)`` against central differences of the CDF in float64."""
    for d in (3, 10, 50):
        for k in (0.5, 5.0, 50.0, 500.0):
            for level in (0.01, 0.5, 0.99):
                w = brentq(
                    lambda w, k=k, d=d, level=level: _cdf_w(w, k, d)[0] - level,
                    -1 + 1e-9,
                    1 - 1e-9,
                    xtol=1e-15,
                )
                h = 1e-4 * k
                ref = -(_cdf_w(w, k + h, d)[0] - _cdf_w(w, k - h, d)[0]) / (2 * h) / _cdf_w(w, k, d)[1]
                got = float(_dw_dkappa(jnp.float32(w), jnp.float32(k), d))
                assert got == pytest.approx(ref, rel=2e-3), (d, k, level)


@pytest.mark.parametrize("family", ["vmf", "power"])
def test_gradients_match_finite_differences(family, getkey):
    """d/d(k, raw loc) of the Monte Carlo estimate of E[a^T z] (reparameterized samples,
    implicit gradients through Wood's acceptance step for the vMF) against central
    differences of its closed form ``m(k) a^T mu``: ``m = A_d(k)`` (vMF), ``k / (d - 1 + k)``
    (power spherical)."""
    d, n = 5, 20000
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.normal(size=d), jnp.float32)
    raw = jnp.asarray(rng.normal(size=d), jnp.float32)
    cls = vk.VonMisesFisherDistribution if family == "vmf" else vk.PowerSphericalDistribution
    m = (lambda k: _A(k, d)) if family == "vmf" else (lambda k: k / (d - 1 + k))
    key = getkey()

    def mc(raw, k):
        q = cls(raw / jnp.linalg.norm(raw), k)
        return jnp.mean(q.rsample(key, (n,)) @ a)

    def exact(raw, k):
        mu = np.asarray(raw, np.float64) / np.linalg.norm(np.asarray(raw, np.float64))
        return m(k) * float(np.dot(np.asarray(a, np.float64), mu))

    grad = jax.jit(jax.grad(mc, argnums=(0, 1)))
    for k in (1.0, 10.0):
        g_raw, g_k = grad(raw, jnp.float32(k))
        h = 1e-4 * k
        fd_k = (exact(raw, k + h) - exact(raw, k - h)) / (2 * h)
        assert float(g_k) == pytest.approx(fd_k, rel=0.05, abs=2e-3), (
            k,
            float(g_k),
            fd_k,
        )
        eye = np.eye(d)
        fd_raw = np.array(
            [(exact(np.asarray(raw) + 1e-4 * e, k) - exact(np.asarray(raw) - 1e-4 * e, k)) / 2e-4 for e in eye]
        )
        np.testing.assert_allclose(np.asarray(g_raw), fd_raw, rtol=0.05, atol=0.01)


@pytest.mark.parametrize("family", ["vmf", "power"])
def test_kl_to_uniform_matches_monte_carlo(family, getkey):
    d, n = 10, 20000
    rng = np.random.default_rng(2)
    cls = vk.VonMisesFisherDistribution if family == "vmf" else vk.PowerSphericalDistribution
    u = vk.HypersphericalUniformDistribution(d)
    kappas = np.array([0.5, 50.0])
    q = cls(
        jnp.asarray(np.stack([_unit(rng, d), _unit(rng, d)]), jnp.float32),
        jnp.asarray(kappas, jnp.float32),
    )
    exact = np.asarray(vk.kl_divergence(q, u, method="analytic"))
    z = q.sample(getkey(), (n,))
    f = np.asarray(q.log_prob(z) - u.log_prob(z), np.float64)  # [n, 2]
    assert np.all(exact >= 0)
    np.testing.assert_array_less(np.abs(exact - f.mean(0)), 5 * f.std(0) / np.sqrt(n) + 1e-4)


def test_power_spherical_density_and_mean(getkey):
    rng = np.random.default_rng(3)
    k = np.array([0.0, 3.0, 40.0])
    mu = np.stack([_unit(rng, 3) for _ in k])
    q = vk.PowerSphericalDistribution(jnp.asarray(mu, jnp.float32), jnp.asarray(k, jnp.float32))
    # in R^3: int (1 + cos t)^k 2 pi sin t dt = 2 pi 2^(k+1) / (k + 1)
    np.testing.assert_allclose(
        np.asarray(q.log_normalizer()),
        np.log((k + 1) / (2 * np.pi * 2 ** (k + 1))),
        rtol=1e-5,
    )
    z = np.asarray(q.sample(getkey(), (20000,)), np.float64)  # [n, 3, 3]
    np.testing.assert_allclose(np.linalg.norm(z, axis=-1), 1.0, atol=1e-5)
    w = np.einsum("nbd,bd->nb", z, mu)
    np.testing.assert_array_less(np.abs(w.mean(0) - k / (2 + k)), 5 * w.std(0) / np.sqrt(len(w)) + 1e-6)
    np.testing.assert_allclose(np.asarray(q.mean), (k / (2 + k))[:, None] * mu, rtol=1e-5, atol=1e-7)


def test_bad_loc_and_dimension_errors():
    with pytest.raises(ValueError, match="unit-norm loc"):
        vk.VonMisesFisherDistribution(jnp.array([1.0, 1.0, 0.0]), 1.0)
    with pytest.raises(ValueError, match="d >= 2"):
        vk.PowerSphericalDistribution(jnp.array([1.0]), 1.0)
    with pytest.raises(ValueError, match="dim"):
        vk.HypersphericalUniform(1)
    assert float(mean_resultant_length(1e-3, 3)) == pytest.approx(1e-3 / 3, rel=1e-3)


def test_svae_preset_parts(getkey):
    """Training is covered by tests/zoo/test_presets.py::test_preset_builds_and_trains_on_digits[svae]."""
    power = vk.presets.build("svae", 64, key=getkey(), latent_dim=3, hidden=(16,), distribution="power")
    assert isinstance(power.encoder, vk.PowerSpherical) and power.latent_shape == (3,)
    model = vk.presets.build("svae", 64, key=getkey(), latent_dim=3, hidden=(16,))
    assert isinstance(model.encoder, vk.VonMisesFisher) and isinstance(model.prior, vk.HypersphericalUniform)
    with pytest.raises(ValueError, match="distribution"):
        vk.presets.build("svae", 64, key=getkey(), distribution="gaussian")
