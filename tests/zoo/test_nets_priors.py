"""Conv/1-D conv networks, VampPrior, trainable-scale prior, latent plots."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.nets import Conv1dDecoder, Conv1dEncoder, ConvDecoder, ConvEncoder
from vaekit.viz.latent import simplex_to_plane


@pytest.mark.parametrize("shape,res_blocks", [((28, 28), 1), ((32, 32, 3), 1)])
def test_conv_vae_any_image_size(shape, res_blocks, getkey):
    model = vk.presets.conv_vae(
        shape, key=getkey(), latent_dim=4, hidden=(4, 8), res_blocks=res_blocks, likelihood="gaussian"
    )
    assert model.data_shape == shape
    x = jax.random.uniform(getkey(), (3, *shape))
    v, g = eqx.filter_jit(eqx.filter_value_and_grad(lambda m: -jnp.mean(vk.elbo(m, x, jax.random.key(0)))))(model)
    assert np.isfinite(float(v))
    leaves = [np.asarray(a) for a in jax.tree_util.tree_leaves(eqx.filter(g, eqx.is_array))]
    assert all(np.isfinite(a).all() for a in leaves) and max(np.abs(a).max() for a in leaves) > 0
    n_res = sum(
        isinstance(m, vk.nets.ResBlock)
        for m in jax.tree_util.tree_leaves(model, is_leaf=lambda m: isinstance(m, vk.nets.ResBlock))
    )
    assert n_res == 4 * res_blocks  # 2 stages x (encoder + decoder)


def test_conv_shapes_and_layout(getkey):
    dec = ConvDecoder(3, (28, 28), (8, 4), params_per_value=2, key=getkey())
    assert dec(jnp.zeros(3)).shape == (28, 56)
    assert ConvDecoder(3, (32, 32, 3), (8, 4), params_per_value=2, key=getkey())(jnp.zeros(3)).shape == (32, 32, 6)
    assert ConvEncoder((32, 32, 3), 6, (4, 8), key=getkey())(jnp.zeros((32, 32, 3))).shape == (6,)
    with pytest.raises(ValueError, match=r"expects one example of shape \(28, 28\)"):
        ConvEncoder((28, 28), 4, (4,), key=getkey())(jnp.zeros((32, 32)))
    with pytest.raises(ValueError, match="shape must have 2 or 3"):
        ConvEncoder((28,), 4, key=getkey())


def test_audio_frames_conv1d_vae_trains(getkey):
    t = jnp.linspace(0, 1, 50)
    k1, k2 = jax.random.split(getkey())
    freq = jax.random.uniform(k1, (96, 1), minval=2, maxval=6)
    x = jnp.sin(2 * jnp.pi * freq * t) + 0.05 * jax.random.normal(k2, (96, 50))
    assert Conv1dEncoder((50,), 4, key=getkey())(x[0]).shape == (4,)
    assert Conv1dDecoder(2, (50, 2), params_per_value=2, key=getkey())(jnp.zeros(2)).shape == (50, 4)
    model = vk.presets.build("conv_vae", (50,), key=getkey(), latent_dim=2, hidden=(4, 4), likelihood="gaussian")
    model, hist = vk.fit(model, x, key=getkey(), epochs=4, batch_size=32, optimizer=vk.default_optimizer(3e-3))
    loss = hist["train_loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0] - 1.0, loss


def test_vamp_prior_is_the_encoder_mixture(digits_binary, getkey):
    x = digits_binary[:64]
    for init in ("random", "mean"):
        vp = vk.VampPrior.from_data(x, 4, key=getkey(), init=init)
        assert vp.pseudo_inputs.shape == (4, 64)
    rows = {tuple(r) for r in np.asarray(vk.VampPrior.from_data(x, 4, key=getkey()).pseudo_inputs)}
    assert rows <= {tuple(r) for r in x}
    np.testing.assert_allclose(
        vk.VampPrior.from_data(x, 4, key=getkey(), init="mean").pseudo_inputs.mean(0), x.mean(0), atol=0.02
    )
    model = vk.presets.build("vamp_vae", 64, key=getkey(), latent_dim=2, hidden=(16,), pseudo_inputs=vp.pseudo_inputs)
    z = jax.random.normal(getkey(), (7, 2))
    comps = model.encoder.dist(vp.pseudo_inputs)  # batch [4]
    manual = jax.nn.logsumexp(comps.log_prob(z[:, None, :]), 1) - np.log(4)
    np.testing.assert_allclose(np.asarray(model.prior_dist().log_prob(z)), np.asarray(manual), rtol=1e-5)
    # pseudo-inputs and the shared encoder both get gradients from the prior term
    g = eqx.filter_jit(eqx.filter_grad(lambda m: jnp.sum(m.prior_dist().log_prob(z))))(model)
    assert np.abs(np.asarray(g.prior.pseudo_inputs)).max() > 0
    with pytest.raises(ValueError, match="VampVAE"):
        vp.dist()
    with pytest.raises(ValueError, match="'random', 'mean'"):
        vk.VampPrior.from_data(x, 4, key=getkey(), init="kmeans")


def test_trainable_scale_prior_with_fixed_mean(digits_binary, getkey):
    """The Julia original's README prior: variance trained, mean fixed."""
    x = digits_binary[:128]
    loc = jnp.array([0.5, -0.5])
    model = vk.VAE(
        vk.Normal(vk.fixed(loc), jnp.ones(2)),
        vk.Gaussian(vk.MLP(64, 4, (16,), key=getkey())),
        vk.Bernoulli(vk.MLP(2, 64, (16,), key=getkey())),
    )
    trained, _ = vk.fit(model, x, key=getkey(), epochs=3, batch_size=32, optimizer=vk.default_optimizer(1e-2))
    np.testing.assert_array_equal(np.asarray(trained.prior.loc.value), np.asarray(loc))
    assert not np.allclose(np.asarray(trained.prior.log_scale), 0.0)
    d = trained.prior_dist()
    np.testing.assert_allclose(np.asarray(d.base_dist.loc), np.asarray(loc))


def test_simplex_projection_and_plots(tmp_path, getkey):
    np.testing.assert_allclose(simplex_to_plane(np.eye(3)), [[0, 0], [1, 0], [0.5, np.sqrt(3) / 2]], atol=1e-12)
    np.testing.assert_allclose(simplex_to_plane(np.full((1, 3), 1 / 3)), [[0.5, np.sqrt(3) / 6]], atol=1e-12)
    model = vk.presets.dirichlet_vae(10, key=getkey(), latent_dim=3, hidden=(8,))
    x = (jax.random.uniform(getkey(), (20, 10)) > 0.5).astype(jnp.float32)
    p = tmp_path / "simplex.png"
    vk.plot_latent(model, x, labels=np.arange(20) % 3, path=str(p))
    assert p.stat().st_size > 1000 and p.read_bytes()[:4] == b"\x89PNG"
    q = tmp_path / "plane.png"
    vk.plot_latent(vk.presets.vae(10, key=getkey(), latent_dim=4, hidden=(8,)), x, path=str(q))
    assert q.stat().st_size > 1000
    with pytest.raises(ValueError, match=r"\[n, K\] with K >= 3"):
        vk.plot_simplex(np.ones((4, 2)))
    import matplotlib.pyplot as plt

    plt.close("all")
