# %% [markdown]
# # 1. Composable VAEs
#
# A vaekit model is three parts: a **prior** p(z), an **encoder** q(z|x) and a **decoder**
# p(x|z). Each is an equinox module that holds its own parameters, so you build a model by
# choosing the parts, and every part is an ordinary pytree you can inspect.
#
# This tutorial builds a VAE for the 8x8 `digits` images (grey levels scaled to [0, 1]) with
#
# * a **diagonal-variance** Gaussian encoder (one mean and one scale per latent dimension),
# * a **scalar-variance** Gaussian decoder (one scale per example, shared by its 64 pixels),
# * a Gaussian prior whose **mean is fixed** at 0 and whose **scale is trainable**,
#
# counts what is trained, samples from the prior, looks at decoder means and samples, and
# evaluates the ELBO with a KL weight beta.
#
# **Quick mode** (what the site build runs): 40 epochs. **Full size**: 300 epochs, same
# data and model (`VAEKIT_DOCS_QUICK=0`); its measured results are at the end of the page.

# %%
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

import vaekit as vk

QUICK = os.environ.get("VAEKIT_DOCS_QUICK", "1") != "0"
EPOCHS = 40 if QUICK else 300
print("quick mode" if QUICK else "full size", "- epochs:", EPOCHS)

# %% [markdown]
# ## Data
# 1797 images of 8x8 pixels, 0..16 grey levels, scaled to [0, 1]. A Gaussian decoder
# models them as real values.

# %%
digits = load_digits()
x = (digits.data / 16.0).astype(np.float32)  # [1797, 64]
rng = np.random.default_rng(0)
order = rng.permutation(len(x))
x_train, x_test = x[order[:1500]], x[order[1500:]]
print(x_train.shape, x_test.shape)

# %% [markdown]
# ## The three parts
#
# Networks map **one** example to the unconstrained parameters of a family. With
# `variance="diag"` the encoder's network outputs `2 * d` numbers (a mean and a raw scale per
# latent dimension); with `variance="scalar"` the decoder's network outputs `64 + 1` numbers
# (64 means and one raw scale). Scales are `softplus(raw) + min_scale`.
#
# `vk.Normal(loc, scale)` is a diagonal Gaussian prior whose `loc` and `scale` are both
# trainable; wrapping the mean in `vk.fixed` keeps it at zero while the scale trains.

# %%
latent = 2
k_enc, k_dec = jax.random.split(jax.random.key(0))
model = vk.VAE(
    prior=vk.Normal(vk.fixed(jnp.zeros(latent)), jnp.ones(latent)),
    encoder=vk.Gaussian(vk.MLP(64, 2 * latent, hidden=(128,), activation="tanh", key=k_enc), variance="diag"),
    decoder=vk.Gaussian(vk.MLP(latent, 64 + 1, hidden=(128,), activation="tanh", key=k_dec), variance="scalar"),
)
print(model.prior)

# %% [markdown]
# ## What is trained
#
# `vk.trainable(model)` is the filter that `vk.fit` gives the optimizer: True for every float
# array that is not wrapped in `vk.fixed`. Counting arrays and scalars with it:

# %%
params, static = eqx.partition(model, vk.trainable(model))
arrays = jax.tree_util.tree_leaves(params)
everything = [a for a in jax.tree_util.tree_leaves(model) if eqx.is_inexact_array(a)]
print(f"trainable arrays: {len(arrays)} of {len(everything)} float arrays")
print(f"trainable scalars: {sum(a.size for a in arrays)}")
print(
    "prior: loc trainable?",
    vk.trainable(model).prior.loc.value,
    "| log_scale trainable?",
    vk.trainable(model).prior.log_scale,
)

# %% [markdown]
# Each MLP with one hidden layer has two weight matrices and two bias vectors (4 arrays each),
# the prior adds its log-scale, and the fixed prior mean is not counted.

# %% [markdown]
# ## Training
#
# `vk.fit` runs one compiled `lax.scan` per epoch. `init_output_bias` starts the decoder at
# the data's mean, which makes the first epochs much better behaved.

# %%
model = vk.init_output_bias(model, x_train)
model, history = vk.fit(model, x_train, key=1, epochs=EPOCHS, batch_size=100, x_val=x_test)
print(f"final train loss {history['train_loss'][-1]:.2f}, validation loss {history['val_loss'][-1]:.2f} nats")
print("prior mean (fixed):", np.asarray(vk.resolve(model.prior.loc)))
print("prior scale (trained):", np.asarray(jnp.exp(model.prior.log_scale)))

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(history["train_loss"], label="train")
ax.plot(history["val_loss"], label="validation")
ax.set_xlabel("epoch")
ax.set_ylabel("-ELBO (nats)")
ax.legend()
plt.show()

# %% [markdown]
# The prior mean is still exactly zero; its scale moved away from one.
#
# ## Sampling from the prior
#
# `vk.sample(model, key, n)` draws `z ~ p(z)` and returns the latent draws, the decoder's
# mean and a sample of `p(x|z)`.

# %%
s = vk.sample(model, jax.random.key(2), 8)
print("z", s.z.shape, "decoder mean", s.mean.shape, "decoder sample", s.x.shape)

fig, axes = plt.subplots(2, 8, figsize=(8, 2.2))
for i in range(8):
    axes[0, i].imshow(np.asarray(s.mean[i]).reshape(8, 8), cmap="gray", vmin=0, vmax=1)
    axes[1, i].imshow(np.clip(np.asarray(s.x[i]), 0, 1).reshape(8, 8), cmap="gray", vmin=0, vmax=1)
    axes[0, i].axis("off")
    axes[1, i].axis("off")
axes[0, 0].set_title("decoder means", loc="left", fontsize=9)
axes[1, 0].set_title("samples of p(x|z)", loc="left", fontsize=9)
plt.show()

# %% [markdown]
# The decoder's scale is one number per example (the scalar-variance option), so a sample of
# p(x|z) is the mean plus the same amount of noise on every pixel:

# %%
params = model.decoder.parameters(s.z)
print({k: v.shape for k, v in params.items()})
print("per-example decoder scale:", np.round(np.asarray(params["scale"][:, 0]), 3))

# %% [markdown]
# ## The ELBO with beta
#
# `vk.elbo(model, x, key, beta=...)` is `E_q[log p(x|z)] - beta * KL(q(z|x) || p(z))` per
# example. With a Gaussian encoder and a Gaussian prior the KL is closed-form (`kl="auto"`
# picks it); beta < 1 weighs the KL less, beta > 1 more, and beta = 1 is the bound on
# log p(x).

# %%
key = jax.random.key(3)
for beta in (0.5, 1.0, 2.0):
    e = vk.elbo(model, x_test, key, beta=beta, n_samples=10)
    print(f"beta={beta}: mean ELBO {float(e.mean()):8.2f} nats")
ll = vk.log_likelihood(model, x_test, jax.random.key(4), n_samples=1000)
print(f"importance-sampled log p(x) (1000 samples): {float(ll.mean()):8.2f} nats")

# %% [markdown]
# With the same key the three ELBOs differ only in how much of the KL is subtracted; the
# importance-sampled log-likelihood lies above the beta = 1 ELBO, as it must.
#
# **Full size**, measured (`VAEKIT_DOCS_QUICK=0 python docs/tutorials/t01_composable.py`,
# 300 epochs, 2-core CPU shared with other jobs, 85 s wall / 27 s CPU): validation -ELBO
# -12.05 nats; the trained prior scale (1.89, 2.02) with its mean still exactly (0, 0); on the
# 297 held-out images ELBO 14.68 / 12.30 / 7.54 nats for beta = 0.5 / 1 / 2 and an
# importance-sampled log p(x) of 14.71 nats (1,000 samples). (Positive: these are densities
# of real-valued pixels in [0, 1].) The quick mode's numbers above are lower because it trains
# 40 epochs instead of 300.
