"""Mixed precision: vk.fit(..., compute_dtype=jnp.bfloat16) (issue 16, section 7)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.training import precision


@pytest.fixture(scope="module")
def runs(request):
    from sklearn.datasets import load_digits

    x = (load_digits().data[:300] / 16.0 > 0.5).astype(np.float32)
    model = vk.presets.build("vae", 64, key=jax.random.key(0), latent_dim=2, hidden=(32,))
    kw = {"key": 1, "epochs": 3, "batch_size": 50, "optimizer": vk.default_optimizer(5e-3), "x_val": x[:100]}
    f32 = vk.fit(model, x, **kw)
    bf16 = vk.fit(model, x, compute_dtype=jnp.bfloat16, **kw)
    return x, model, f32, bf16


def test_bf16_trains_within_tolerance_of_float32(runs):
    """Reference: the same run in float32. Tolerance: 1% of the loss (bf16 has 8 bits of mantissa)."""
    _, _, (m32, h32), (m16, h16) = runs
    for k in ("train_loss", "val_loss"):
        np.testing.assert_allclose(h16[k], h32[k], rtol=0.01)
    assert h16["train_loss"][-1] < h16["train_loss"][0] - 1  # it trains
    # parameters stay float32 (and differ: bf16 arithmetic was used)
    leaves16 = [a for a in jax.tree.leaves(m16) if eqx.is_inexact_array(a)]
    assert leaves16 and all(a.dtype == jnp.float32 for a in leaves16)
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(m16), jax.tree.leaves(m32)))


def _dots(jaxpr):
    """The dot_general equations of a jaxpr and of all its sub-jaxprs."""
    out = []
    for e in jaxpr.eqns:
        if e.primitive.name == "dot_general":
            out.append(e)
        for p in e.params.values():
            for sub in p if isinstance(p, (list, tuple)) else [p]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    out += _dots(inner)
    return out


def test_matmuls_in_bf16_losses_in_float32(runs, getkey):
    x, model, _, _ = runs
    k = getkey()
    for dtype, want in ((jnp.bfloat16, jnp.bfloat16), (jnp.float32, jnp.float32)):
        loss = precision.mixed_precision(vk.training.make_loss(), dtype)
        params, static = eqx.partition(model, eqx.is_array)
        jaxpr = jax.make_jaxpr(
            lambda p, loss=loss, static=static: loss(eqx.combine(p, static), jnp.asarray(x[:8]), k, 0)
        )(params)
        dots = _dots(jaxpr.jaxpr)
        assert len(dots) >= 4  # two layers each in the encoder and the decoder
        assert all(v.aval.dtype == want for e in dots for v in e.invars), dtype
        assert jaxpr.out_avals[0].dtype == jnp.float32


def test_bad_dtype_is_a_clear_error(runs):
    x, model, _, _ = runs
    with pytest.raises(ValueError, match="compute_dtype must be one of"):
        vk.fit(model, x, key=0, epochs=1, batch_size=50, compute_dtype=jnp.int8)
