"""Flow posteriors (change of variables, inverses, MC KL) and the MMD regulariser."""

import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest
from numpyro.distributions.transforms import AffineTransform, IndependentTransform

import vaekit as vk
from vaekit.zoo.mmd import kernel_matrix, mmd


def _layers(kind, d, key):
    keys = jax.random.split(key, 2)
    if kind == "planar":
        # a visibly non-identity planar map (w.u < -1 before the u_hat correction)
        return [
            eqx_replace(
                vk.Planar(d, key=k), w=jnp.linspace(-1.0, 1.5, d), u=jnp.linspace(1.0, -0.8, d), b=jnp.array(0.3)
            )
            for k in keys
        ]
    layers = []
    for k in keys:
        layer = vk.IAF(d, (8,), key=k)
        ws = tuple(0.5 * jax.random.normal(jax.random.fold_in(k, i), w.shape) for i, w in enumerate(layer.made.weights))
        layers.append(eqx_replace_made(layer, ws))
    return layers


def eqx_replace(m, **kw):
    import equinox as eqx

    return eqx.tree_at(lambda t: tuple(getattr(t, k) for k in kw), m, tuple(kw.values()))


def eqx_replace_made(layer, ws):
    import equinox as eqx

    return eqx.tree_at(lambda t: t.made.weights, layer, ws)


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_density_change_of_variables_and_inverse(kind, getkey):
    d = 3
    layers = _layers(kind, d, getkey())
    loc, scale = jnp.array([0.2, -0.5, 1.0]), jnp.array([0.7, 1.2, 0.5])
    base = nd.Normal(loc, scale).to_event(1)
    q = nd.TransformedDistribution(base, [layer.transform() for layer in layers])
    eps = base.sample(getkey(), (16,))
    z = eps
    for layer in layers:
        z = layer.transform()(z)
    # inverse recovers the base draw
    x = z
    for layer in reversed(layers):
        x = layer.transform().inv(x)
    np.testing.assert_allclose(np.asarray(x), np.asarray(eps), atol=2e-4)

    def push(e):
        for layer in layers:
            e = layer.transform()(e)
        return e

    logdet = jax.vmap(lambda e: jnp.linalg.slogdet(jax.jacfwd(push)(e))[1])(eps)
    expected = base.log_prob(eps) - logdet
    np.testing.assert_allclose(np.asarray(q.log_prob(z)), np.asarray(expected), rtol=1e-4, atol=1e-4)
    assert float(jnp.max(jnp.abs(logdet))) > 1e-2  # the flow is not the identity


def test_flow_mc_kl_matches_closed_form_for_affine_flow(getkey):
    enc = vk.Gaussian(lambda x: jnp.concatenate([x, jnp.zeros_like(x)]), "diag")
    layer = vk.flows.Transform(
        lambda: IndependentTransform(AffineTransform(jnp.array([1.0, -2.0]), jnp.array([2.0, 0.5])), 1)
    )
    q = vk.FlowPosterior(enc, [layer]).dist(jnp.array([[0.3, -0.1]]))
    # pushforward of N(m, s^2) by a + b z is N(a + b m, (b s)^2)
    s = float(jax.nn.softplus(0.0) + 1e-4)
    exact = nd.kl_divergence(nd.Normal(jnp.array([1.6, -2.05]), jnp.array([2 * s, 0.5 * s])), nd.Normal(0.0, 1.0)).sum()
    mc = vk.kl_divergence(q, nd.Normal(jnp.zeros(2), 1.0).to_event(1), key=getkey(), n_samples=100_000)
    np.testing.assert_allclose(float(mc[0]), float(exact), rtol=2e-2)


@pytest.mark.parametrize("kind", ["planar", "iaf"])
def test_flow_vae_trains(kind, digits_binary, getkey):
    x = digits_binary[:256]
    model = vk.presets.build("flow_vae", 64, key=getkey(), latent=kind, latent_dim=2, hidden=(32,), n_flows=2)
    assert isinstance(model.encoder, vk.FlowPosterior)
    model, hist = vk.fit(model, x, key=getkey(), epochs=4, batch_size=32, optimizer=vk.default_optimizer(3e-3))
    loss = hist["train_loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0] - 1.0, loss


def _gauss_kernel_mean(a, s, b, t, h):
    """E exp(-(x - y)^2 / (2 h^2)) for x ~ N(a, s^2), y ~ N(b, t^2) (1-D, independent)."""
    v = h**2 + s**2 + t**2
    return h / np.sqrt(v) * np.exp(-((a - b) ** 2) / (2 * v))


def test_rbf_mmd_is_unbiased_against_closed_form():
    h, (a, s), (b, t) = 1.3, (0.0, 1.0), (0.8, 0.6)
    exact = (
        _gauss_kernel_mean(a, s, a, s, h) + _gauss_kernel_mean(b, t, b, t, h) - 2 * _gauss_kernel_mean(a, s, b, t, h)
    )

    def one(k):
        k1, k2 = jax.random.split(k)
        x = a + s * jax.random.normal(k1, (16, 1))
        y = b + t * jax.random.normal(k2, (16, 1))
        return mmd(x, y, kernel="rbf", scale=h)

    est = np.asarray(jax.vmap(one)(jax.random.split(jax.random.key(0), 20_000)))
    assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(est.size)
    assert exact > 0.05


def test_imq_mmd_against_quadrature_and_zero_for_equal_distributions():
    # E k(x, y) by Gauss-Hermite quadrature, 1-D Gaussians, C = 2 d h^2
    h = 1.0
    c = 2.0 * h**2
    gx, gw = np.polynomial.hermite_e.hermegauss(80)
    gw = gw / gw.sum()

    def ek(a, s, b, t):
        xx, yy = np.meshgrid(a + s * gx, b + t * gx, indexing="ij")
        return float(np.sum(np.outer(gw, gw) * c / (c + (xx - yy) ** 2)))

    exact = ek(0, 1, 0, 1) + ek(1, 0.5, 1, 0.5) - 2 * ek(0, 1, 1, 0.5)

    def one(k, b, t):
        k1, k2 = jax.random.split(k)
        return mmd(jax.random.normal(k1, (16, 1)), b + t * jax.random.normal(k2, (16, 1)), kernel="imq", scale=h)

    keys = jax.random.split(jax.random.key(1), 20_000)
    est = np.asarray(jax.vmap(lambda k: one(k, 1.0, 0.5))(keys))
    assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(est.size)
    same = np.asarray(jax.vmap(lambda k: one(k, 0.0, 1.0))(keys))
    assert abs(same.mean()) < 4 * same.std() / np.sqrt(same.size)
    np.testing.assert_allclose(kernel_matrix(jnp.zeros((1, 3)), jnp.ones((1, 3)), "imq", 1.0), [[6.0 / 9.0]], rtol=1e-6)


@pytest.mark.parametrize("codes,kernel", [("sample", "imq"), ("mean", "rbf")])
def test_mmd_objective_trains_through_fit(codes, kernel, digits_binary, getkey):
    x = digits_binary[:256]
    model = vk.presets.vae(64, key=getkey(), latent_dim=2, hidden=(32,))
    loss = vk.mmd_objective(weight=10.0, kernel=kernel, codes=codes)
    model, hist = vk.fit(
        model, x, key=getkey(), epochs=4, batch_size=32, objective=loss, optimizer=vk.default_optimizer(3e-3)
    )
    h = hist["train_loss"]
    assert np.isfinite(h).all() and h[-1] < h[0] - 1.0, h
    with pytest.raises(ValueError, match="'rbf', 'imq'"):
        vk.mmd_objective(kernel="gauss")
    with pytest.raises(ValueError, match="'sample', 'mean'"):
        vk.mmd_objective(codes="z")
