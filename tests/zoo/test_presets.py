"""Presets through ``build``: every one trains on binarized digits; options are checked."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.zoo import presets

SMALL = dict(latent_dim=3, hidden=(16,))
CASES = {
    "vae": {},
    "beta_vae": {"beta": 2.0},
    "iwae": {"k": 3},
    "dirichlet_vae": {},
    "vamp_vae": {"n_pseudo": 5},
    "conv_vae": {"hidden": (8, 8)},
    "discrete_vae": {"latent_dim": 6},
    "flow_vae": {},
    "svae": {},
    "hierarchical_vae": {"layers": (4,), "ladder": True},
}


def test_every_preset_is_covered():
    assert set(CASES) == set(presets.PRESETS) - {"cvae", "m2", "vq_vae"}  # tests/zoo/test_conditional.py, test_vq.py


@pytest.mark.parametrize("name", list(CASES))
def test_preset_builds_and_trains_on_digits(name, digits_binary, getkey):
    x = digits_binary[:192]
    opts = {**SMALL, **CASES[name]}
    if name == "conv_vae":
        x = x.reshape(-1, 8, 8)
    n_features = x.shape[1] if x.ndim == 2 else x.shape[1:]
    model = presets.build(name, n_features, key=getkey(), likelihood="bernoulli", **opts)
    fit_kw = presets.fit_options(name, **opts)
    model, hist = vk.fit(
        model, x, key=getkey(), epochs=4, batch_size=32, optimizer=vk.default_optimizer(5e-3), **fit_kw
    )
    loss = hist["train_loss"]  # the preset's own objective, mean over each epoch
    assert np.isfinite(loss).all()
    assert loss[-1] < loss[0] - 1.0, (name, loss)
    s = vk.sample(model, getkey(), 3)
    assert s.x.shape == (3, *x.shape[1:])


def test_fit_options():
    assert presets.fit_options("iwae", k=7) == {"objective": "iwae", "n_samples": 7}
    assert presets.fit_options("beta_vae", beta=3) == {"beta": 3.0}
    assert presets.fit_options("vae") == {}
    assert callable(presets.fit_options("discrete_vae")["objective"])


def test_unknown_options_and_combinations_are_rejected(getkey):
    with pytest.raises(ValueError, match="Valid options: .*latent_dim"):
        presets.build("vae", 10, key=getkey(), latnet_dim=3)
    with pytest.raises(ValueError, match="Valid values: 'vae'"):
        presets.build("vea", 10, key=getkey())
    with pytest.raises(ValueError, match="prior='mog' is not available for latent='dirichlet'"):
        presets.build("vae", 10, key=getkey(), latent="dirichlet", prior="mog")
    with pytest.raises(ValueError, match="Valid values: 'gaussian'"):
        presets.build("vae", 10, key=getkey(), latent="vmf")
    with pytest.raises(ValueError, match="Valid values: 'standard', 'trainable', 'mog', 'vamp'"):
        presets.build("vae", 10, key=getkey(), prior="flat")
    with pytest.raises(ValueError, match="conv_vae needs"):
        presets.build("conv_vae", (2, 3, 4, 5), key=getkey())
    with pytest.raises(ValueError, match="likelihood"):
        presets.build("dirichlet_vae", 10, key=getkey(), likelihood="poisson")


@pytest.mark.parametrize(
    "latent,prior",
    [("laplace", "mog"), ("exponential", None), ("categorical", None)],
)
def test_latent_and_prior_options_compose(latent, prior, getkey):
    opts = {"latent": latent} | ({"prior": prior} if prior else {})
    model = presets.build("vae", 12, key=getkey(), latent_dim=2, hidden=(8,), **opts)
    x = (jax.random.uniform(getkey(), (5, 12)) > 0.5).astype(jnp.float32)
    kw = presets.fit_options("vae", **opts)
    v = eqx.filter_jit(lambda m, x, k: vk.elbo(m, x, k, **kw))(model, x, getkey())
    assert v.shape == (5,) and bool(jnp.all(jnp.isfinite(v)))


def test_shaped_data_with_mlp_preset(getkey):
    model = presets.build("vae", (6, 5), key=getkey(), latent_dim=2, hidden=(8,), likelihood="gaussian")
    assert model.data_shape == (6, 5)
    v = eqx.filter_jit(vk.elbo)(model, jax.random.normal(getkey(), (4, 6, 5)), getkey())
    assert bool(jnp.all(jnp.isfinite(v)))
