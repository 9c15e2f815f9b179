"""Interop adapters: with the weights of a native vk.MLP, each adapter gives the same
outputs and the same training steps."""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.nets import from_equinox, from_haiku, from_init_apply, from_linen, from_nnx


def _weights(mlp):
    return [(np.asarray(l.weight), np.asarray(l.bias)) for l in mlp.layers]


def _init_apply(mlp, x):
    (w0, b0), (w1, b1) = _weights(mlp)

    def apply(p, x):
        return p["w1"] @ jnp.tanh(p["w0"] @ x + p["b0"]) + p["b1"]

    params = {k: jnp.asarray(v) for k, v in dict(w0=w0, b0=b0, w1=w1, b1=b1).items()}
    return from_init_apply(None, apply, example_input=x, params=params)


def _linen(mlp, x):
    import flax.linen as nn

    out = mlp.out_size

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = jnp.tanh(nn.Dense(5)(x))
            return nn.Dense(out)(h)

    (w0, b0), (w1, b1) = _weights(mlp)
    params = {
        "Dense_0": {"kernel": jnp.asarray(w0.T), "bias": jnp.asarray(b0)},
        "Dense_1": {"kernel": jnp.asarray(w1.T), "bias": jnp.asarray(b1)},
    }
    net = from_linen(Net(), example_input=x, key=jax.random.key(0))
    assert jax.tree_util.tree_structure(net.params) == jax.tree_util.tree_structure(params)
    return from_linen(Net(), example_input=x, params=params)


def _haiku(mlp, x):
    import haiku as hk

    out = mlp.out_size

    def fwd(x):
        h = jnp.tanh(hk.Linear(5)(x))
        return hk.Linear(out)(h)

    f = hk.without_apply_rng(hk.transform(fwd))
    init = f.init(jax.random.key(0), x)
    (w0, b0), (w1, b1) = _weights(mlp)
    params = {
        "linear": {"w": jnp.asarray(w0.T), "b": jnp.asarray(b0)},
        "linear_1": {"w": jnp.asarray(w1.T), "b": jnp.asarray(b1)},
    }
    assert jax.tree_util.tree_structure(init) == jax.tree_util.tree_structure(params)
    return from_haiku(f, example_input=x, params=params)


def _nnx(mlp, x):
    from flax import nnx

    (w0, b0), (w1, b1) = _weights(mlp)
    l0 = nnx.Linear(w0.shape[1], w0.shape[0], rngs=nnx.Rngs(0))
    l1 = nnx.Linear(w1.shape[1], w1.shape[0], rngs=nnx.Rngs(1))
    for layer, w, b in ((l0, w0, b0), (l1, w1, b1)):
        layer.kernel[...] = jnp.asarray(w.T)
        layer.bias[...] = jnp.asarray(b)
    return from_nnx(nnx.Sequential(l0, jnp.tanh, l1), example_input=x)


def _equinox(mlp, x):
    m = eqx.nn.MLP(mlp.in_size, mlp.out_size, 5, 1, activation=jnp.tanh, key=jax.random.key(0))
    (w0, b0), (w1, b1) = _weights(mlp)
    m = eqx.tree_at(
        lambda m: (m.layers[0].weight, m.layers[0].bias, m.layers[1].weight, m.layers[1].bias),
        m,
        tuple(jnp.asarray(a) for a in (w0, b0, w1, b1)),
    )
    return from_equinox(m)


ADAPTERS = {"init_apply": _init_apply, "linen": _linen, "haiku": _haiku, "nnx": _nnx, "equinox": _equinox}


def _enc_out(model, x):
    return np.asarray(jax.vmap(model.encoder.net)(x))


_NATIVE = {}


def _native(x):
    """The native vk.MLP model and its training run (computed once for all adapters)."""
    if not _NATIVE:
        enc_mlp = vk.MLP(64, 4, (5,), key=jax.random.key(11))
        dec_mlp = vk.MLP(2, 64, (5,), key=jax.random.key(12))
        native = vk.VAE(vk.StandardNormal(2), vk.Gaussian(enc_mlp), vk.Bernoulli(dec_mlp))
        m, h = vk.fit(native, x, key=jax.random.key(13), epochs=2, batch_size=16, optimizer=vk.default_optimizer(1e-2))
        _NATIVE.update(enc=enc_mlp, dec=dec_mlp, model=m, hist=h)
    return _NATIVE


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_adapter_matches_native_mlp_outputs_and_training(name, digits_binary):
    x = jnp.asarray(digits_binary[:64])
    nat = _native(x)
    enc = ADAPTERS[name](nat["enc"], x[0])
    dec = ADAPTERS[name](nat["dec"], jnp.zeros(2))
    np.testing.assert_allclose(np.asarray(jax.vmap(enc)(x)), np.asarray(jax.vmap(nat["enc"])(x)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        np.asarray(jax.vmap(dec)(x[:, :2])), np.asarray(jax.vmap(nat["dec"])(x[:, :2])), rtol=1e-6, atol=1e-6
    )
    adapted = vk.VAE(vk.StandardNormal(2), vk.Gaussian(enc), vk.Bernoulli(dec))
    m2, h2 = vk.fit(adapted, x, key=jax.random.key(13), epochs=2, batch_size=16, optimizer=vk.default_optimizer(1e-2))
    np.testing.assert_allclose(h2["train_loss"], nat["hist"]["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(_enc_out(m2, x), _enc_out(nat["model"], x), rtol=1e-4, atol=1e-5)
    assert not np.allclose(_enc_out(m2, x), np.asarray(jax.vmap(enc)(x)), atol=1e-3)  # it did train


@pytest.mark.parametrize(
    "fn,module,extra", [(from_linen, "flax", "flax"), (from_nnx, "flax", "flax"), (from_haiku, "haiku", "haiku")]
)
def test_missing_extra_names_it(fn, module, extra, monkeypatch):
    for name in list(sys.modules):
        if name == module or name.startswith(module + "."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=rf"vaekit\[{extra}\]"):
        fn(object(), example_input=jnp.zeros(2))


def test_adapter_bad_input_errors():
    with pytest.raises(TypeError, match="flax.linen.Module"):
        from_linen(object(), example_input=jnp.zeros(2))
    with pytest.raises(TypeError, match="equinox"):
        from_equinox(lambda x: x)
    with pytest.raises(ValueError, match="params="):
        from_init_apply(None, lambda p, x: x, example_input=jnp.zeros(2))
