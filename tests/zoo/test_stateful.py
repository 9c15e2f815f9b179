"""Stateful networks (BatchNorm) from equinox and Flax inside vk.fit (issue 16, section 1)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vaekit as vk


class BNNet(eqx.Module):
    """Linear -> BatchNorm -> tanh -> Linear, for one example with an ``eqx.nn.State``."""

    l1: eqx.nn.Linear
    bn: eqx.nn.BatchNorm
    l2: eqx.nn.Linear

    def __init__(self, n_in, hidden, n_out, key):
        k1, k2 = jax.random.split(key)
        self.l1 = eqx.nn.Linear(n_in, hidden, key=k1)
        self.bn = eqx.nn.BatchNorm(hidden, axis_name="batch", momentum=0.9, mode="batch")
        self.l2 = eqx.nn.Linear(hidden, n_out, key=k2)

    def __call__(self, x, state):
        h, state = self.bn(self.l1(x), state)
        return self.l2(jnp.tanh(h)), state


def _eqx_model(key):
    k1, k2 = jax.random.split(key)
    net, state = eqx.nn.make_with_state(BNNet)(64, 16, 4, k1)
    enc = vk.Gaussian(vk.nets.from_equinox(net, state=state, example_input=jnp.zeros(64)))
    dec = vk.Bernoulli(vk.MLP(2, 64, (16,), key=k2))
    return vk.VAE(vk.StandardNormal(2), enc, dec), net, state


@pytest.fixture(scope="module")
def x():
    from sklearn.datasets import load_digits

    return (load_digits().data[:300] / 16.0 > 0.5).astype(np.float32)


@pytest.fixture(scope="module")
def trained(x):
    model, _, _ = _eqx_model(jax.random.key(0))
    out, hist = vk.fit(
        model,
        x,
        key=1,
        epochs=3,
        batch_size=50,
        x_val=x[:100],
        optimizer=vk.default_optimizer(5e-3),
    )
    return model, out, hist


def _bn_state(model):
    return model.encoder.net.state.value


def test_training_step_updates_state_like_equinox(x):
    """Reference: equinox's own vmap(axis_name="batch") over the whole batch. One epoch of
    one batch (all rows; BatchNorm statistics do not depend on the order) with lr 0."""
    model, net, state = _eqx_model(jax.random.key(0))
    out, _ = vk.fit(model, x, key=0, epochs=1, batch_size=len(x), optimizer=optax.sgd(0.0))
    _, ref = jax.vmap(net, axis_name="batch", in_axes=(0, None), out_axes=(0, None))(jnp.asarray(x), state)
    got = jax.tree.leaves(_bn_state(out))
    want = jax.tree.leaves(ref)
    assert len(got) == len(want) == 3  # step counter, running mean and variance
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(a, b) for a, b in zip(jax.tree.leaves(state), want))  # it did change


def test_bn_model_trains_and_evaluates_deterministically(trained, x, getkey):
    _, out, hist = trained
    assert hist["train_loss"][-1] < hist["train_loss"][0] - 1
    assert np.isfinite(hist["val_loss"]).all()
    # evaluation uses the stored statistics: an example's code does not depend on its batch
    q5, q1 = out.posterior(x[:5]), out.posterior(x[:1])
    np.testing.assert_allclose(q5.base_dist.loc[0], q1.base_dist.loc[0], rtol=1e-6)
    k = getkey()
    np.testing.assert_array_equal(vk.elbo(out, x, k), vk.elbo(out, x, k))
    # ... and equals equinox's inference mode with the trained state
    net = eqx.combine(
        out.encoder.net.params,
        eqx.partition(eqx.nn.inference_mode(_eqx_model(jax.random.key(0))[1]), eqx.is_array)[1],
    )
    ref = jax.vmap(lambda v: net(v, _bn_state(out))[0])(jnp.asarray(x[:5]))
    np.testing.assert_allclose(q5.base_dist.loc, ref[:, :2], rtol=1e-5, atol=1e-6)


def test_bn_model_resumes_bit_identically(x, tmp_path):
    model, _, _ = _eqx_model(jax.random.key(0))
    full, _ = vk.fit(model, x, key=3, epochs=2, batch_size=50)
    vk.fit(model, x, key=3, epochs=1, batch_size=50, checkpoint_dir=tmp_path)
    resumed, _ = vk.fit(model, x, key=3, epochs=2, batch_size=50, checkpoint_dir=tmp_path)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    assert any(
        not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(_bn_state(full)), jax.tree.leaves(_bn_state(model)))
    )


def test_bn_model_save_load_keeps_state(trained, tmp_path, x, getkey):
    model, out, _ = trained
    vk.save(tmp_path / "m", out)
    back = vk.load(tmp_path / "m", like=model).model
    for a, b in zip(jax.tree.leaves(_bn_state(out)), jax.tree.leaves(_bn_state(back))):
        np.testing.assert_array_equal(a, b)
    k = getkey()
    np.testing.assert_array_equal(vk.elbo(out, x, k), vk.elbo(back, x, k))


def test_equinox_state_missing_is_a_clear_error():
    net, _ = eqx.nn.make_with_state(BNNet)(4, 3, 2, jax.random.key(0))
    with pytest.raises(TypeError, match="make_with_state"):
        vk.nets.from_equinox(net, example_input=jnp.zeros(4))


def test_flax_batch_stats(x):
    """Reference: the same Linen network applied to the whole batch at once."""
    nn = pytest.importorskip("flax.linen")

    class Net(nn.Module):
        axis: str | None = "batch"

        @nn.compact
        def __call__(self, v, train: bool = False):
            h = nn.Dense(16)(v)
            h = nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=self.axis)(h)
            return nn.Dense(4)(jnp.tanh(h))

    enc_net = vk.nets.from_linen(Net(), example_input=jnp.zeros(64), key=jax.random.key(0))
    assert isinstance(enc_net, vk.nets.StatefulNet)
    model = vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(enc_net),
        vk.Bernoulli(vk.MLP(2, 64, (16,), key=jax.random.key(1))),
    )
    out, _ = vk.fit(model, x, key=0, epochs=1, batch_size=len(x), optimizer=optax.sgd(0.0))
    variables = {"params": enc_net.params, **enc_net.state.value}
    _, ref = Net(axis=None).apply(variables, jnp.asarray(x), train=True, mutable=["batch_stats"])
    got = out.encoder.net.state.value["batch_stats"]
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref["batch_stats"])):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # evaluation: running averages, the same in any batch
    q = out.posterior(x[:4]).base_dist.loc
    ref_out = Net(axis=None).apply({"params": enc_net.params, "batch_stats": got}, jnp.asarray(x[:4]), train=False)
    np.testing.assert_allclose(q, ref_out[:, :2], rtol=1e-5, atol=1e-6)
