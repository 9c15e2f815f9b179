import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import vaekit as vk


def test_public_names_import():
    for name in vk.__all__:
        assert hasattr(vk, name), name


def test_readme_model_shapes(getkey):
    k1, k2 = jax.random.split(getkey())
    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(784, 2 * 2, hidden=(500,), activation=jax.nn.tanh, key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, 784, hidden=(500,), activation=jax.nn.tanh, key=k2)),
    )
    assert isinstance(model, eqx.Module)
    assert model.data_shape == (784,) and model.latent_shape == (2,)
    x = (jax.random.uniform(getkey(), (7, 784)) > 0.5).astype(jnp.float32)
    assert vk.elbo(model, x, getkey()).shape == (7,)
    assert vk.elbo(model, x, getkey(), n_samples=3, beta=0.5).shape == (7,)
    assert vk.iwae_bound(model, x, getkey(), k=4).shape == (7,)
    ll = vk.log_likelihood(model, x, getkey(), n_samples=20, chunk_size=8)
    assert ll.shape == (7,) and bool(jnp.all(jnp.isfinite(ll)))
    s = vk.sample(model, getkey(), 5)
    assert s.z.shape == (5, 2) and s.mean.shape == (5, 784) and s.x.shape == (5, 784)
    assert bool(jnp.all((s.mean > 0) & (s.mean < 1)))
    assert set(np.unique(np.asarray(s.x))) <= {0.0, 1.0}
    params = vk.encode(model, x)
    assert params["loc"].shape == (7, 2) and bool(jnp.all(params["scale"] > 0))
    r = vk.reconstruct(model, x, getkey())
    assert r.z.shape == (7, 2) and r.mean.shape == (7, 784)


def test_objectives_jit_and_grad(getkey):
    k1, k2 = jax.random.split(getkey())
    model = vk.presets.vae(6, key=k1, latent_dim=2, hidden=(8,))
    x = (jax.random.uniform(k2, (4, 6)) > 0.5).astype(jnp.float32)
    key = getkey()
    eager = vk.elbo(model, x, key)
    jitted = eqx.filter_jit(vk.elbo)(model, x, key)
    np.testing.assert_allclose(eager, jitted, rtol=1e-5, atol=1e-5)
    grads = eqx.filter_grad(lambda m: -jnp.mean(vk.elbo(m, x, key)))(model)
    leaves = jax.tree_util.tree_leaves(grads)
    assert leaves and all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    per_example = jax.vmap(lambda xi: vk.elbo(model, xi[None], key)[0])(x)
    assert per_example.shape == (4,)
