"""default_optimizer: clipping + Adam + skipping non-finite steps, checked against optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vaekit as vk
from vaekit.training import clip_skip_nonfinite


def _run(opt, grads_seq, params):
    state = opt.init(params)
    out = []
    for g in grads_seq:
        updates, state = jax.jit(opt.update)(g, state, params)
        params = optax.apply_updates(params, updates)
        out.append(params)
    return out, state


def _grads(n, nonfinite_steps, big_steps=()):
    rng = np.random.default_rng(0)
    seq = []
    for i in range(n):
        g = {"w": jnp.asarray(rng.normal(size=(5, 3)), jnp.float32), "b": jnp.asarray(rng.normal(size=3), jnp.float32)}
        if i in big_steps:  # norm above the clipping threshold
            g = jax.tree.map(lambda t: 50.0 * t, g)
        if i in nonfinite_steps:
            g["w"] = g["w"].at[1, 2].set(jnp.nan if i % 2 else jnp.inf)
        seq.append(g)
    return seq


@pytest.mark.parametrize("max_errors", [2, 10])
def test_matches_optax_apply_if_finite(max_errors):
    """Same parameters as optax's apply_if_finite(chain(clip, adam)) step by step,
    through clipped steps, isolated NaN/inf steps, and a run of more than max_errors."""
    params = {"w": jnp.ones((5, 3)), "b": jnp.zeros(3)}
    bad = {3, 6, 7, 8, 9, 10}  # a lone one, then 5 in a row (> 2, < 10)
    seq = _grads(14, bad, big_steps={1, 12})
    ref_opt = optax.apply_if_finite(
        optax.chain(optax.clip_by_global_norm(10.0), optax.adam(1e-2)), max_consecutive_errors=max_errors
    )
    ours_opt = clip_skip_nonfinite(optax.adam(1e-2), 10.0, max_consecutive_errors=max_errors)
    ref, ref_state = _run(ref_opt, seq, params)
    ours, state = _run(ours_opt, seq, params)
    for i, (a, b) in enumerate(zip(ref, ours)):
        for k in a:
            np.testing.assert_allclose(
                np.asarray(b[k]), np.asarray(a[k]), rtol=1e-6, atol=1e-7, err_msg=f"step {i} {k}"
            )
    assert int(state.total_notfinite) == int(ref_state.total_notfinite) == len(bad)
    assert int(state.notfinite_count) == int(ref_state.notfinite_count) == 0
    if max_errors == 10:  # every bad step skipped: parameters stay finite
        assert all(np.isfinite(np.asarray(p["w"])).all() for p in ours)
    else:  # the 3rd bad step in a row is applied, so the failure shows
        assert not np.isfinite(np.asarray(ours[8]["w"])).all()


def test_skipped_step_leaves_state_unchanged():
    params = {"w": jnp.ones((5, 3)), "b": jnp.zeros(3)}
    opt = vk.default_optimizer(1e-2)
    s0 = opt.init(params)
    good = _grads(1, set())[0]
    _, s1 = opt.update(good, s0, params)
    bad = _grads(2, {1})[1]
    updates, s2 = opt.update(bad, s1, params)
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))
    for a, b in zip(jax.tree.leaves(s1.inner_state), jax.tree.leaves(s2.inner_state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(s2.notfinite_count) == 1 and int(s2.total_notfinite) == 1


def test_fit_survives_a_nan_batch(digits_binary):
    """A batch that makes the gradient NaN is skipped inside the compiled epoch."""
    x = np.asarray(digits_binary[:256])
    key = jax.random.key(0)
    k1, k2 = jax.random.split(key)
    model = vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(vk.MLP(64, 4, hidden=(16,), key=k1)),
        vk.Bernoulli(vk.MLP(2, 64, hidden=(16,), key=k2)),
    )

    def loss(m, xb, k, step):  # poison every 3rd step
        value = -vk.elbo(m, xb, k)
        return jnp.where(step % 3 == 1, jnp.nan, 1.0) * value

    with pytest.warns(RuntimeWarning, match="non-finite losses"):
        trained, hist = vk.fit(model, x, key=key, epochs=4, batch_size=32, objective=loss)
    leaves = [np.asarray(a) for a in jax.tree.leaves(trained) if hasattr(a, "dtype") and a.dtype == jnp.float32]
    assert all(np.isfinite(a).all() for a in leaves)
    before = [np.asarray(a) for a in jax.tree.leaves(model) if hasattr(a, "dtype") and a.dtype == jnp.float32]
    assert any(not np.array_equal(a, b) for a, b in zip(leaves, before))  # the good steps trained it
    assert np.isnan(hist["train_loss"]).all()  # every epoch had a poisoned batch
    assert float(jnp.mean(-vk.elbo(trained, x, key))) < float(jnp.mean(-vk.elbo(model, x, key)))
