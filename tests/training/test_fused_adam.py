"""clip_skip_adam (the default optimizer) against clip_skip_nonfinite(optax.adam): the same
state layout (checkpoints load either way) and the same updates, step by step."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vaekit as vk
from vaekit.training._optimizers import clip_skip_adam, clip_skip_nonfinite


def _grads(n, nonfinite, big):
    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        g = {"w": jnp.asarray(rng.normal(size=(6, 4)), jnp.float32), "b": jnp.asarray(rng.normal(size=4), jnp.float32)}
        if i in big:
            g = jax.tree.map(lambda t: 40.0 * t, g)
        if i in nonfinite:
            g["b"] = g["b"].at[0].set(jnp.nan if i % 2 else jnp.inf)
        out.append(g)
    return out


@pytest.mark.parametrize(
    "lr,max_errors",
    [(1e-2, 10), (1e-2, 2), (optax.linear_schedule(1e-2, 1e-3, 10), 3)],
)
def test_same_updates_and_state_as_the_optax_composition(lr, max_errors):
    params = {"w": jnp.ones((6, 4)), "b": jnp.zeros(4)}
    ref = clip_skip_nonfinite(optax.adam(lr, b1=0.8, b2=0.99), 5.0, max_consecutive_errors=max_errors)
    ours = clip_skip_adam(lr, 5.0, b1=0.8, b2=0.99, max_consecutive_errors=max_errors)
    s_ref, s_ours = ref.init(params), ours.init(params)
    assert jax.tree.structure(s_ref) == jax.tree.structure(s_ours)
    p_ref = p_ours = params
    for i, g in enumerate(_grads(16, nonfinite={2, 5, 6, 7, 8}, big={0, 11})):
        u_ref, s_ref = jax.jit(ref.update)(g, s_ref, p_ref)
        u_ours, s_ours = jax.jit(ours.update)(g, s_ours, p_ours)
        p_ref, p_ours = optax.apply_updates(p_ref, u_ref), optax.apply_updates(p_ours, u_ours)
        for a, b in zip(jax.tree.leaves((p_ref, s_ref)), jax.tree.leaves((p_ours, s_ours))):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=2e-6, atol=1e-7, err_msg=f"step {i}")
    # with max_errors=2 the third bad step in a row was applied, so NaN shows in both
    assert np.isfinite(np.asarray(p_ours["b"])).all() == (max_errors > 3)


def test_default_optimizer_is_the_fused_one_and_loads_old_states():
    params = {"w": jnp.ones((6, 4)), "b": jnp.zeros(4)}
    opt = vk.default_optimizer(1e-3)
    old = clip_skip_nonfinite(optax.adam(1e-3), 100.0).init(params)  # a state saved before
    g = _grads(1, set(), set())[0]
    u, new = opt.update(g, old, params)
    u_ref, new_ref = clip_skip_nonfinite(optax.adam(1e-3), 100.0).update(g, old, params)
    for a, b in zip(jax.tree.leaves((u_ref, new_ref)), jax.tree.leaves((u, new))):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-8)
    assert jax.tree.structure(new) == jax.tree.structure(new_ref)
