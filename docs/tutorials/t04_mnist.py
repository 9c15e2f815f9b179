# %% [markdown]
# # 4. Binarized MNIST with a 2-D latent
#
# The model of Kingma & Welling's paper at its smallest: 784 -> 500 tanh -> a 2-D diagonal
# Gaussian latent, and 2 -> 500 tanh -> 784 Bernoulli logits. With two latent dimensions the
# whole latent space can be drawn: the codes of the test digits coloured by class, and the
# decoder over a 50x50 lattice of z.
#
# Data: statically binarized MNIST (the fixed Larochelle binarization, `binarized-mnist`),
# read from `$VAEKIT_DATA_DIR/binarized-mnist`. Without it, this page falls back to the
# embedded 8x8 `digits` (binarized at 0.5) and says so below.
#
# **Quick mode** (the site build): the first 5,000 training images, 10 epochs, the test
# bound and log-likelihood on 300 random test images with 200 importance samples.
# **Full size** (`VAEKIT_DOCS_QUICK=0`): all 50,000 training images, 100 epochs, the test
# bound and log-likelihood (5,000 importance samples) on 1,000 random test images.

# %%
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Image, display

import vaekit as vk
from vaekit.viz import plots

QUICK = os.environ.get("VAEKIT_DOCS_QUICK", "1") != "0"
data_dir = Path(os.environ.get("VAEKIT_DATA_DIR", "~/.cache/vaekit")).expanduser()
HAVE_MNIST = (data_dir / "binarized-mnist" / "binarized_mnist_test.npz").exists()
if HAVE_MNIST:
    name, shape = "binarized-mnist", (28, 28)
    train = vk.datasets.load(name, "train", limit=5000 if QUICK else None)
    test = vk.datasets.load(name, "test")
else:
    name, shape = "digits", (8, 8)
    train, test = vk.datasets.load("digits", "train"), vk.datasets.load("digits", "test")
x_train = (np.asarray(train.x) > 0.5).astype(np.float32)
x_test, y_test = (np.asarray(test.x) > 0.5).astype(np.float32), np.asarray(test.y)
D = x_train.shape[1]
EPOCHS = 10 if QUICK else 100
N_TEST, IW = (300, 200) if QUICK else (1000, 5000)
print(
    f"data: {name} ({'from $VAEKIT_DATA_DIR' if HAVE_MNIST else 'embedded fallback: no MNIST found'}), "
    f"train {x_train.shape}, test {x_test.shape}; {'quick mode' if QUICK else 'full size'}: {EPOCHS} epochs"
)

# %% [markdown]
# ## The Python way

# %%
k1, k2 = jax.random.split(jax.random.key(0))
model = vk.VAE(
    prior=vk.StandardNormal(2),
    encoder=vk.Gaussian(vk.MLP(D, 2 * 2, hidden=(500,), activation="tanh", key=k1), variance="diag"),
    decoder=vk.Bernoulli(vk.MLP(2, D, hidden=(500,), activation="tanh", key=k2)),
)
model = vk.init_output_bias(model, x_train)
model, history = vk.fit(model, x_train, key=1, epochs=EPOCHS, batch_size=100)
print(
    f"train -ELBO: epoch 1 {history['train_loss'][0]:.1f}, epoch {EPOCHS} {history['train_loss'][-1]:.1f} nats; "
    f"{np.median(history['time'][1:]):.2f} s per epoch after the first"
)

# %% [markdown]
# ### The latent space, coloured by digit
# Posterior means of 2,000 random test images (the test split is sorted by class, so the
# rows are drawn at random, not taken from the top).

# %%
rows = np.random.default_rng(0).permutation(len(x_test))[:2000]
ax = vk.plot_latent(model, x_test[rows], labels=y_test[rows], s=3)
ax.set_title("posterior means of test images")
plt.show()

# %% [markdown]
# ### Prior samples
# Ten draws z ~ p(z); each row shows the decoder mean and then three binary samples of
# p(x|z).

# %%
work = Path(tempfile.mkdtemp())
display(Image(plots.prior_samples(model, jax.random.key(2), work / "samples.png", image_shape=shape, rows=10, cols=4)))

# %% [markdown]
# ### Reconstructions
# Each row: a test image, then (decoder mean, binary sample) for two draws of z ~ q(z|x).

# %%
display(Image(plots.reconstructions(model, x_test[rows[:8]], jax.random.key(3), work / "recon.png", image_shape=shape)))

# %% [markdown]
# ### The 50x50 lattice over [-3, 3]^2
# Decoder means for z on a regular grid; z2 grows upwards.

# %%
display(Image(plots.lattice(model, work / "lattice.png", image_shape=shape, size=50, span=3.0), width=700))

# %% [markdown]
# ### Test ELBO and log-likelihood
# The ELBO with 10 latent samples per image, and log p(x) estimated by importance sampling
# (`vk.log_likelihood`, the IWAE bound with `n_samples` draws; it approaches log p(x)
# from below as the samples grow).

# %%
xt = x_test[rows[:N_TEST]]
elbo = float(vk.elbo(model, xt, jax.random.key(4), n_samples=10).mean())
ll = float(vk.log_likelihood(model, xt, jax.random.key(5), n_samples=IW).mean())
print(f"{len(xt)} test images: ELBO {elbo:.2f} nats, log-likelihood ({IW} samples) {ll:.2f} nats")

# %% [markdown]
# ## The command-line way
# The same model and data with `vaekit train` (which picks the Bernoulli decoder from the
# binary data and says so), then `evaluate`, `sample --grid`, `lattice` and `report`. The run
# folder holds `config.json`, `metrics.jsonl`, checksummed checkpoints, `model.eqx` and
# `eval.json`.


# %%
def vaekit(*args):  # the `vaekit` command, run with this interpreter
    print("$ vaekit", " ".join(args))
    out = subprocess.run([sys.executable, "-m", "vaekit.cli", *args], cwd=work, capture_output=True, text=True)
    print((out.stdout + out.stderr).strip()[-1500:])
    out.check_returncode()


limit = ["--limit", str(len(x_train))] if QUICK else []
vaekit(
    "train",
    "--data",
    name,
    "--latent-dim",
    "2",
    "--hidden",
    "500",
    "--epochs",
    str(EPOCHS),
    "--batch-size",
    "100",
    *limit,
    "--out",
    "runs/mnist2d",
    "--quiet",
)
vaekit("evaluate", "runs/mnist2d", "--split", "test", "--iw-samples", "200", "--limit", "300", "--quiet")
vaekit("sample", "runs/mnist2d", "--grid", "10x4", "--output", "grid.png")
vaekit("lattice", "runs/mnist2d", "--range", "3", "--size", "50", "--output", "lattice_cli.png")
display(Image(work / "grid.png"))

# %% [markdown]
# (`vaekit evaluate --limit 300` scores the *first* 300 test rows, which for
# `binarized-mnist` are all zeros, so its numbers differ from the random subset above;
# without `--limit` it evaluates the whole split.)
#
# `model, preprocessor = vk.load("runs/mnist2d")` loads the trained model back into Python.
#
# **Full size** (`VAEKIT_DOCS_QUICK=0`, 50,000 images, 100 epochs):
# measured with the Python code above on the shared 2-core CPU (load average about 10):
# train -ELBO 175.9 nats after the first epoch and 139.9 after the 100th, 8.7 s per epoch;
# on 1,000 random test images ELBO -154.03 nats (10 samples) and log-likelihood -145.74 nats
# (5,000 importance samples). The command-line part was not repeated at full size.
