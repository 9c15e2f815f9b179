"""vk.fit: learns, respects vk.fixed, is deterministic, compiles once, resumes exactly."""

import logging

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vaekit as vk


def small_model(key, n=64, latent=2, prior=None):
    k1, k2 = jax.random.split(key)
    return vk.VAE(
        prior=prior or vk.StandardNormal(latent),
        encoder=vk.Gaussian(vk.MLP(n, 2 * latent, hidden=(32,), key=k1)),
        decoder=vk.Bernoulli(vk.MLP(latent, n, hidden=(32,), key=k2)),
    )


def leaves_equal(a, b):
    la, lb = (
        jax.tree_util.tree_leaves(eqx.filter(a, eqx.is_array)),
        jax.tree_util.tree_leaves(eqx.filter(b, eqx.is_array)),
    )
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def test_fit_lowers_loss_on_digits(digits_binary):
    x_train, x_val = digits_binary[:1400], digits_binary[1400:]
    model = small_model(jax.random.key(0))
    key = jax.random.key(5)
    before = float(-vk.elbo(model, x_val, key, n_samples=10).mean())
    model, hist = vk.fit(model, x_train, key=jax.random.key(1), epochs=8, batch_size=100, x_val=x_val)
    after = float(-vk.elbo(model, x_val, key, n_samples=10).mean())
    assert len(hist["train_loss"]) == 8 and len(hist["val_loss"]) == 8
    assert hist["train_loss"][-1] < hist["train_loss"][0] - 3.0
    assert after < before - 10.0
    assert abs(hist["val_loss"][-1] - after) < 1.0  # val_loss is the negative ELBO


def test_fixed_arrays_unchanged_and_trainable_filter(digits_binary):
    loc = jnp.array([0.5, -0.5])
    prior = vk.Normal(vk.fixed(loc), jnp.ones(2))  # trainable scale, fixed mean
    model = small_model(jax.random.key(0), prior=prior)
    spec = vk.trainable(model)
    assert jax.tree_util.tree_leaves(spec.prior.loc) == [False]
    assert jax.tree_util.tree_leaves(spec.prior.log_scale) == [True]
    trained, _ = vk.fit(model, digits_binary[:400], key=jax.random.key(1), epochs=3, batch_size=50)
    assert np.array_equal(np.asarray(trained.prior.loc.value), np.asarray(loc))
    assert isinstance(trained.prior.loc, vk.Fixed)
    assert not np.array_equal(np.asarray(trained.prior.log_scale), np.asarray(model.prior.log_scale))


def test_fixed_inside_a_network(digits_binary):
    model = small_model(jax.random.key(0))
    w = model.encoder.net.layers[0].weight
    model = eqx.tree_at(lambda m: m.encoder.net.layers[0].weight, model, vk.fixed(w))
    trained, _ = vk.fit(model, digits_binary[:300], key=jax.random.key(1), epochs=2, batch_size=50)
    assert np.array_equal(np.asarray(trained.encoder.net.layers[0].weight.value), np.asarray(w))
    assert not np.array_equal(
        np.asarray(trained.encoder.net.layers[1].weight), np.asarray(model.encoder.net.layers[1].weight)
    )


def test_same_keys_bit_identical(digits_binary):
    runs = [
        vk.fit(small_model(jax.random.key(0)), digits_binary[:300], key=jax.random.key(3), epochs=2, batch_size=32)
        for _ in range(2)
    ]
    assert leaves_equal(runs[0][0], runs[1][0])
    assert runs[0][1]["train_loss"] == runs[1][1]["train_loss"]
    other, _ = vk.fit(
        small_model(jax.random.key(0)), digits_binary[:300], key=jax.random.key(4), epochs=2, batch_size=32
    )
    assert not leaves_equal(runs[0][0], other)


def test_epoch_compiles_once(digits_binary, caplog):
    model = small_model(jax.random.key(0))
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        vk.fit(model, digits_binary[:300], key=jax.random.key(1), epochs=4, batch_size=50, x_val=digits_binary[300:400])
    compiles = [
        r.getMessage() for r in caplog.records if "train_epoch" in r.getMessage() and "Compiling" in r.getMessage()
    ]
    assert len(compiles) == 1, compiles


def test_resume_is_bit_identical(digits_binary):
    x = digits_binary[:300]
    full, hfull = vk.fit(small_model(jax.random.key(0)), x, key=jax.random.key(2), epochs=4, batch_size=50)
    saved = []

    def stop_after_two(state):
        saved.append(state)
        return state.epoch == 2

    vk.fit(small_model(jax.random.key(0)), x, key=jax.random.key(2), epochs=4, batch_size=50, callback=stop_after_two)
    assert saved[-1].epoch == 2
    resumed, hres = vk.fit(
        small_model(jax.random.key(9)), x, key=jax.random.key(2), epochs=4, batch_size=50, resume=saved[-1]
    )
    assert leaves_equal(full, resumed)
    assert hfull["train_loss"] == hres["train_loss"]


def test_callback_can_replace_state_and_batch_transform(digits_binary):
    grey = jnp.asarray(digits_binary[:200]) * 0.8 + 0.1  # probabilities, not binary
    seen = []

    def binarize(key, xb):
        out = jax.random.bernoulli(key, xb).astype(xb.dtype)
        return out

    def cb(state):
        seen.append(state.epoch)
        prior = vk.Normal(jnp.zeros(2), jnp.full((2,), 2.0))
        return state._replace(model=eqx.tree_at(lambda m: m.prior, state.model, prior))

    model = small_model(jax.random.key(0), prior=vk.Normal(jnp.zeros(2), jnp.ones(2)))
    # the Bernoulli decoder needs binary data: check_data sees the binary version
    trained, hist = vk.fit(
        model,
        (grey > 0.5).astype(np.float32),
        key=jax.random.key(1),
        epochs=2,
        batch_size=50,
        batch_transform=binarize,
        callback=cb,
    )
    assert seen == [1, 2]
    np.testing.assert_allclose(jnp.exp(trained.prior.log_scale), 2.0, rtol=1e-6)
    assert np.isfinite(hist["train_loss"]).all()


@pytest.mark.parametrize("objective", ["iwae", "custom"])
def test_other_objectives_and_optimizer(digits_binary, objective):
    x = digits_binary[:400]
    obj = (lambda m, xb, k, step: -vk.elbo(m, xb, k, beta=0.5)) if objective == "custom" else "iwae"
    model, hist = vk.fit(
        small_model(jax.random.key(0)),
        x,
        key=jax.random.key(1),
        epochs=4,
        batch_size=50,
        objective=obj,
        n_samples=4,
        optimizer=optax.adam(3e-3),
    )
    assert hist["train_loss"][-1] < hist["train_loss"][0]


def test_kl_warmup_schedule(digits_binary):
    sched = optax.linear_schedule(0.0, 1.0, transition_steps=10)
    model, hist = vk.fit(
        small_model(jax.random.key(0)), digits_binary[:200], key=jax.random.key(1), epochs=3, batch_size=50, beta=sched
    )
    assert len(hist["train_loss"]) == 3 and np.isfinite(hist["train_loss"]).all()
