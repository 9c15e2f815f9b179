# %% [markdown]
# # 2. Bring your own networks and optimizer
#
# vaekit's conditionals take **any** network that maps one example to an array. Networks
# written with Flax (Linen or NNX), Haiku, equinox or as a plain `(init, apply)` pair are
# wrapped by `vk.nets.from_*` adapters; their parameters then live inside the vaekit model
# and train with it. The optimizer is any optax transformation.
#
# This tutorial trains the same small VAE (binarized 8x8 `digits`, 64 -> 64 tanh -> 2x4
# Gaussian latent, Bernoulli decoder) with the encoder written in each library, then varies
# the optimizer, the number of latent samples per step and the KL estimator, and finally
# trains a VAE with **Bernoulli latents** by REINFORCE.
#
# **Quick mode**: 20 epochs per run. **Full size**: 200 epochs (`VAEKIT_DOCS_QUICK=0`).

# %%
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from sklearn.datasets import load_digits

import vaekit as vk

QUICK = os.environ.get("VAEKIT_DOCS_QUICK", "1") != "0"
EPOCHS = 20 if QUICK else 200
x = (load_digits().data / 16 > 0.5).astype(np.float32)
x_train, x_val = x[:1500], x[1500:]
D, H, L = 64, 64, 4  # data, hidden, latent sizes
print("quick mode" if QUICK else "full size", "- epochs per run:", EPOCHS)


def decoder(key):
    return vk.Bernoulli(vk.MLP(L, D, hidden=(H,), activation="tanh", key=key))


def train(encoder_net, name, optimizer=vk.default_optimizer(1e-2), **fit_kwargs):
    model = vk.VAE(vk.StandardNormal(L), vk.Gaussian(encoder_net, variance="diag"), decoder(jax.random.key(7)))
    model = vk.init_output_bias(model, x_train)
    model, hist = vk.fit(
        model, x_train, key=0, epochs=EPOCHS, batch_size=50, x_val=x_val, optimizer=optimizer, **fit_kwargs
    )
    print(f"{name:<28} validation -ELBO {hist['val_loss'][-1]:7.2f} nats")
    return model, hist


# %% [markdown]
# ## The encoder in five libraries
#
# Every adapter needs one example input (to initialise and to find the output size). The
# networks below all compute `tanh(x W1 + b1) W2 + b2` with `2 * L` outputs.

# %%
key = jax.random.key(1)
example = jnp.zeros(D)

# vaekit's own MLP (for reference)
nets = {"vk.MLP": vk.MLP(D, 2 * L, hidden=(H,), activation="tanh", key=key)}

# Flax Linen
import flax.linen as nn


class LinenMLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2 * L)(jnp.tanh(nn.Dense(H)(x)))


nets["Flax Linen"] = vk.nets.from_linen(LinenMLP(), example_input=example, key=key)

# Flax NNX
from flax import nnx


class NNXMLP(nnx.Module):
    def __init__(self, rngs):
        self.l1 = nnx.Linear(D, H, rngs=rngs)
        self.l2 = nnx.Linear(H, 2 * L, rngs=rngs)

    def __call__(self, x):
        return self.l2(jnp.tanh(self.l1(x)))


nets["Flax NNX"] = vk.nets.from_nnx(NNXMLP(nnx.Rngs(0)), example_input=example)

# Haiku
import haiku as hk

hk_net = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([H, 2 * L], activation=jnp.tanh)(x)))
nets["Haiku"] = vk.nets.from_haiku(hk_net, example_input=example, key=key)

# equinox
nets["equinox"] = vk.nets.from_equinox(eqx.nn.MLP(D, 2 * L, H, 1, activation=jnp.tanh, key=key))


# a plain (init, apply) pair of functions
def init(key, x):
    k1, k2 = jax.random.split(key)
    return {
        "w1": jax.random.normal(k1, (x.shape[-1], H)) / np.sqrt(x.shape[-1]),
        "b1": jnp.zeros(H),
        "w2": jax.random.normal(k2, (H, 2 * L)) / np.sqrt(H),
        "b2": jnp.zeros(2 * L),
    }


def apply(p, x):
    return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]


nets["init/apply"] = vk.nets.from_init_apply(init, apply, example_input=example, key=key)

models = {name: train(net, name)[0] for name, net in nets.items()}

# %% [markdown]
# The five wrapped networks train like `vk.MLP` (their initialisations differ, so the numbers
# differ a little). The wrapped parameters are ordinary leaves of the model:
# `vk.save`/`vk.load`, checkpoints and `vk.trainable` treat them like any other array.
#
# ## Any optax optimizer
#
# The default of `vk.fit` is `vk.default_optimizer()`: global-norm clipping, Adam 1e-3 and
# skipping non-finite updates; the runs above used `vk.default_optimizer(1e-2)` (the same
# recipe with a larger step for this small problem). Any `optax.GradientTransformation`
# works, schedules included.

# %%
steps = EPOCHS * (len(x_train) // 50)
optimizers = {
    "AdamW, cosine decay": optax.adamw(optax.cosine_decay_schedule(1e-2, steps), weight_decay=1e-4),
    "SGD + momentum, clipped": optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.05, momentum=0.9)),
}
for name, opt in optimizers.items():
    train(nets["vk.MLP"], name, optimizer=opt)

# %% [markdown]
# ## Several latent samples per step; analytic vs Monte Carlo KL
#
# `n_samples=k` averages the ELBO over `k` draws of `z` per example (lower-variance
# gradients at `k` times the decoder cost). `kl="analytic"` uses the closed-form
# KL(q || p) of two Gaussians; `kl="mc"` estimates it from the same draws as
# `log q(z|x) - log p(z)`. Both are unbiased for the ELBO. Which has less variance depends
# on the model: the closed form removes the KL's own noise, but the Monte Carlo KL uses the
# same draws as the reconstruction term and its noise can partly cancel that term's. The last
# lines measure it on the trained model (the spread of the batch-mean ELBO over 50 keys).

# %%
# "vk.MLP" above is the run with 1 sample and the analytic KL (kl="auto" picks it)
model = models["vk.MLP"]
train(nets["vk.MLP"], "5 samples, analytic KL", n_samples=5, kl="analytic")
train(nets["vk.MLP"], "1 sample, Monte Carlo KL", n_samples=1, kl="mc")

# the spread of the two estimators on the same model and data:
keys = jax.random.split(jax.random.key(3), 50)
for kl in ("analytic", "mc"):
    vals = jnp.stack([vk.elbo(model, x_val, k, kl=kl).mean() for k in keys])
    print(f"kl={kl!r:<11} mean ELBO {float(vals.mean()):7.2f}, std over 50 keys {float(vals.std()):.3f}")

# %% [markdown]
# ## Non-Gaussian latents and REINFORCE
#
# A Bernoulli latent cannot be reparameterized. `estimator="auto"` notices (numpyro's
# `has_rsample` is False) and uses the score-function (REINFORCE) gradient with a
# leave-one-out baseline: with `n_samples > 1` each sample's baseline is the mean of the
# other samples' ELBOs, which keeps the estimator unbiased and cuts its variance. The value
# returned is still the ELBO.

# %%
K = 16
k1, k2 = jax.random.split(jax.random.key(4))
binary = vk.VAE(
    prior=vk.BernoulliPrior(K),
    encoder=vk.Bernoulli(vk.MLP(D, K, hidden=(H,), activation="tanh", key=k1)),
    decoder=vk.Bernoulli(vk.MLP(K, D, hidden=(H,), activation="tanh", key=k2)),
)
binary = vk.init_output_bias(binary, x_train)
before = float(vk.elbo(binary, x_val, jax.random.key(5), n_samples=4).mean())
binary, hist = vk.fit(
    binary, x_train, key=0, epochs=EPOCHS, batch_size=50, x_val=x_val, n_samples=4, optimizer=vk.default_optimizer(1e-2)
)
after = float(vk.elbo(binary, x_val, jax.random.key(5), n_samples=4).mean())
print(f"16 Bernoulli latents, REINFORCE (4 samples, leave-one-out baseline): ELBO {before:.2f} -> {after:.2f} nats")
z = binary.encoder.sample(jax.random.key(6), x_val[:3])
print("sampled binary codes of three digits:\n", np.asarray(z, int))

# %% [markdown]
# For lower-variance discrete training see the model zoo ([tutorial 6](t06_zoo.py)): a
# learned baseline (`vk.BaselineVAE`), VIMCO (`objective="iwae", estimator="reinforce"`) and
# the Concrete / Gumbel-softmax relaxation.
#
# **Full size** (`VAEKIT_DOCS_QUICK=0`, 200 epochs per run):
# measured on the shared 2-core CPU (379 s wall, 131 s CPU). Validation -ELBO: vk.MLP 19.38,
# Linen 19.39, NNX 19.52, Haiku 19.40, equinox 19.38, init/apply 19.46 nats; AdamW with cosine
# decay 18.67, clipped SGD with momentum 19.02; 5 samples 19.64, Monte Carlo KL 19.35; the
# batch-mean ELBO's spread over 50 keys 0.139 (analytic KL) and 0.125 (Monte Carlo KL) nats;
# Bernoulli latents by REINFORCE -24.24 -> -20.78 nats. With a constant step of 1e-2, 200
# epochs overfit these 1,500 images (the quick mode's 20 epochs end at about the same
# validation loss); the decaying AdamW schedule does best.
