"""Hierarchical VAE (issue 16, section 4). Reference: a linear-Gaussian two-layer model
(z2 -> z1 -> x) whose marginal p(x) and exact posteriors are Gaussian (numpy, float64).
With the encoder set to the exact posterior, every importance weight equals p(x), so the
ELBO, the IWAE bound and vk.log_likelihood must all equal log p(x) (float32 rounding)."""

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats as st

import vaekit as vk
from vaekit.zoo.hierarchical import HierarchicalVAE


def _raw(scale):
    return float(np.log(np.expm1(scale - 1e-4)))  # softplus(raw) + 1e-4 = scale


def _affine(weight, bias, key):
    """An MLP with no hidden layer computing ``weight @ u + bias``."""
    weight, bias = np.atleast_2d(weight), np.atleast_1d(bias)
    net = vk.MLP(weight.shape[1], weight.shape[0], (), key=key)
    net = eqx.tree_at(lambda n: n.layers[0].weight, net, jnp.asarray(weight, jnp.float32))
    return eqx.tree_at(lambda n: n.layers[0].bias, net, jnp.asarray(bias, jnp.float32))


def _gauss(mean_w, mean_b, scale, key):
    """Gaussian conditional N(mean_w @ u + mean_b, scale^2) (1-D output)."""
    mean_w = np.atleast_2d(mean_w)
    w = np.concatenate([mean_w, np.zeros_like(mean_w)])
    return vk.Gaussian(_affine(w, [mean_b, _raw(scale)], key), "diag")


@pytest.mark.parametrize("ladder", [False, True])
def test_bounds_equal_log_likelihood_of_linear_gaussian_hierarchy(ladder, getkey):
    """z2 ~ N(0, 1), z1 | z2 ~ N(w z2 + b, s^2), x | z1 ~ N(v z1 + c, t^2 I_2)."""
    w, b, s = 1.3, 0.4, 0.7
    v, c, t = np.array([0.8, -1.1]), np.array([0.3, -0.2]), 0.5
    model = vk.presets.build(
        "hierarchical_vae",
        2,
        key=getkey(),
        latent_dim=1,
        layers=(1,),
        hidden=(4, 4),
        likelihood="gaussian",
        ladder=ladder,
    )
    assert isinstance(model, HierarchicalVAE) and model.latent_shape == (2,)
    k = getkey()
    model = eqx.tree_at(lambda m: m.prior.top_down, model, (_gauss([[w]], b, s, k),))
    dec = np.concatenate([v[:, None], np.zeros((2, 1))])
    model = eqx.tree_at(
        lambda m: m.decoder.net.net,
        model,
        _affine(dec, np.concatenate([c, [_raw(t)] * 2]), k),
    )
    if not ladder:  # q(z1 | x) = p(z1 | x), q(z2 | z1) = p(z2 | z1)
        prec1 = 1 / (w**2 + s**2) + v @ v / t**2
        q1 = _gauss(
            v[None] / t**2 / prec1,
            (b / (w**2 + s**2) - v @ c / t**2) / prec1,
            prec1**-0.5,
            k,
        )
        prec2 = 1 + w**2 / s**2
        q2 = _gauss([[w / s**2 / prec2]], -w * b / s**2 / prec2, prec2**-0.5, k)
        model = eqx.tree_at(lambda m: m.encoder.nets, model, (q1, q2))
    else:  # q(z2 | x) = p(z2 | x); bottom-up z1 estimate = the likelihood factor of p(x | z1)
        u, m0 = v * w, v * b + c
        cov = s**2 * np.outer(v, v) + t**2 * np.eye(2)
        g = np.linalg.solve(cov, u)
        prec2 = 1 + u @ g
        eye = _affine(np.eye(2), np.zeros(2), k)
        head1 = _affine(
            np.stack([v / (v @ v), np.zeros(2)]),
            [-(v @ c) / (v @ v), _raw(t / np.sqrt(v @ v))],
            k,
        )
        head2 = _affine(
            np.stack([g / prec2, np.zeros(2)]),
            [-(g @ m0) / prec2, _raw(prec2**-0.5)],
            k,
        )
        model = eqx.tree_at(
            lambda m: (m.encoder.nets, m.encoder.heads),
            model,
            ((eye, eye), (head1, head2)),
        )
    x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32) * 1.5
    exact = st.multivariate_normal(v * b + c, (w**2 + s**2) * np.outer(v, v) + t**2 * np.eye(2)).logpdf(x)
    elbo = np.asarray(eqx.filter_jit(vk.elbo)(model, x, getkey(), n_samples=3))
    iwae = np.asarray(eqx.filter_jit(vk.iwae_bound)(model, x, getkey(), k=4))
    ll = np.asarray(vk.log_likelihood(model, x, getkey(), n_samples=8))
    for got in (elbo, iwae, ll):
        np.testing.assert_allclose(got, exact, atol=2e-4)
    # the prior's marginal of z1 is N(b, w^2 + s^2)
    z = np.asarray(vk.sample(model, getkey(), 20000).z)
    assert abs(z[:, 0].mean() - b) < 0.05 and abs(z[:, 0].var() - (w**2 + s**2)) < 0.1


def test_hierarchical_preset_options(getkey):
    """Training is covered by tests/zoo/test_presets.py::test_preset_builds_and_trains_on_digits[hierarchical_vae]."""
    # Burda et al.: 784-100-50, two layers of 200 (100) units into (out of) each layer
    model = eqx.filter_eval_shape(lambda k: vk.presets.build("hierarchical_vae", 784, key=k), getkey())
    assert model.prior.dims == (100, 50) and model.encoder.dims == (100, 50)
    shapes = [lin.weight.shape for lin in model.encoder.nets[0].net.layers]
    assert shapes == [(200, 784), (200, 200), (200, 200)]
    shapes = [lin.weight.shape for lin in model.encoder.nets[1].net.layers]
    assert shapes == [(100, 100), (100, 100), (100, 100)]
    shapes = [lin.weight.shape for lin in model.prior.top_down[0].net.layers]
    assert shapes == [(100, 50), (100, 100), (200, 100)]
    with pytest.raises(ValueError, match="one hidden width per stochastic layer"):
        vk.presets.build("hierarchical_vae", 64, key=getkey(), layers=(8, 6), hidden=(32, 16))
