# %% [markdown]
# # 8. Coming from pythae or PyOD
#
# The same model (from pythae) or detector (from PyOD) in both libraries, side by side. The
# peers' code is shown as text and **not executed** here: PyTorch, pythae and PyOD are not
# vaekit dependencies. The vaekit side runs. The numbers comparing the two come from
# `BENCHMARKS.md` (the [Benchmarks](../benchmarks.md) page), where both ran on the same
# machine and data with the commands given there.
#
# **Quick mode**: 5,000 MNIST images (or the embedded digits without `$VAEKIT_DATA_DIR`),
# 3 epochs; ODDS `wine` for the detector with a one-model ensemble. **Full size**
# (`VAEKIT_DOCS_QUICK=0`): 60,000 images, 10 epochs; the default 3-model detector.

# %% [markdown]
# ## A VAE: pythae vs vaekit
#
# The reference model of the throughput benchmark: 784 -> 500 tanh -> 2-D Gaussian,
# 2 -> 500 tanh -> 784 Bernoulli logits, batch 200, Adam 1e-3.
#
# **pythae** (not run here; condensed from `bench/_torch_peers.py`, which the throughput
# benchmark runs):
#
# ```python
# import torch
# from pythae.models import VAE, VAEConfig
# from pythae.models.base.base_utils import ModelOutput
# from pythae.models.nn import BaseDecoder, BaseEncoder
# from pythae.pipelines import TrainingPipeline
# from pythae.trainers import BaseTrainerConfig
#
# class Encoder(BaseEncoder):
#     def __init__(self):
#         BaseEncoder.__init__(self)
#         self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 500), torch.nn.Tanh())
#         self.mu, self.logvar = torch.nn.Linear(500, 2), torch.nn.Linear(500, 2)
#
#     def forward(self, x):
#         h = self.body(x)
#         return ModelOutput(embedding=self.mu(h), log_covariance=self.logvar(h))
#
# class Decoder(BaseDecoder):
#     def __init__(self):
#         BaseDecoder.__init__(self)
#         self.net = torch.nn.Sequential(torch.nn.Linear(2, 500), torch.nn.Tanh(), torch.nn.Linear(500, 784))
#
#     def forward(self, z):
#         return ModelOutput(reconstruction=torch.sigmoid(self.net(z)).reshape(-1, 1, 28, 28))
#
# model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=2, reconstruction_loss="bce"),
#             encoder=Encoder(), decoder=Decoder())
# config = BaseTrainerConfig(output_dir="runs", num_epochs=10, learning_rate=1e-3,
#                            per_device_train_batch_size=200, optimizer_cls="Adam")
# TrainingPipeline(training_config=config, model=model)(train_data=x_train.reshape(-1, 1, 28, 28))
# ```
#
# **vaekit** (run below):

# %%
import os
import time
from pathlib import Path

import jax
import numpy as np
from sklearn.metrics import roc_auc_score

import vaekit as vk

QUICK = os.environ.get("VAEKIT_DOCS_QUICK", "1") != "0"
data_dir = Path(os.environ.get("VAEKIT_DATA_DIR", "~/.cache/vaekit")).expanduser()
if (data_dir / "mnist" / "train-images-idx3-ubyte.gz").exists():
    ds = vk.datasets.load("mnist", "train", limit=5000 if QUICK else None)
    x_train, what = (np.asarray(ds.x) > 0.5).astype(np.float32), "MNIST from $VAEKIT_DATA_DIR"
else:
    ds = vk.datasets.load("digits", "train")
    x_train, what = (np.asarray(ds.x) > 0.5).astype(np.float32), "embedded digits (no MNIST found)"
D = x_train.shape[1]
print(f"data: {what}, {x_train.shape}")

k1, k2 = jax.random.split(jax.random.key(0))
model = vk.VAE(
    prior=vk.StandardNormal(2),
    encoder=vk.Gaussian(vk.MLP(D, 4, hidden=(500,), activation="tanh", key=k1), variance="diag"),
    decoder=vk.Bernoulli(vk.MLP(2, D, hidden=(500,), activation="tanh", key=k2)),
)
t = time.perf_counter()
model, history = vk.fit(
    model, x_train, key=1, epochs=3 if QUICK else 10, batch_size=200, optimizer=vk.default_optimizer(1e-3)
)
print(
    f"{len(history['train_loss'])} epochs in {time.perf_counter() - t:.1f} s (the first compiles); "
    f"per epoch after the first: {np.median(history['time'][1:]):.2f} s; final -ELBO {history['train_loss'][-1]:.1f} nats"
)

# %% [markdown]
# How the two map onto each other:
#
# | pythae | vaekit |
# |---|---|
# | `BaseEncoder` returning `embedding`, `log_covariance` | any network + `vk.Gaussian(net, variance="diag")` (the network outputs mean and raw scale) |
# | `BaseDecoder` returning `reconstruction` + `reconstruction_loss="bce"` | `vk.Bernoulli(net)`: the network outputs logits; the log-likelihood is exact |
# | `VAEConfig(latent_dim=2)`, prior fixed to N(0, I) | `prior=vk.StandardNormal(2)`, or any prior (trainable, mixture, VampPrior, ...) |
# | `TrainingPipeline(...)(train_data=x)` | `vk.fit(model, x, key=..., epochs=..., batch_size=...)`: one compiled scan per epoch |
# | `model.predict`/`model.encoder(x)` | `vk.encode(model, x)`, `vk.reconstruct`, `vk.sample` |
# | `GaussianMixtureSampler` | `vk.fit_latent_sampler(model, x, kind="gmm")` |
# | `model.get_nll(x, n_samples=...)` | `vk.log_likelihood(model, x, key, n_samples=...)` |
#
# **Measured** (`BENCHMARKS.md`, "Training throughput", run 4: idle 2-core AMD EPYC, all 60,000
# MNIST images, batch 200, width 500): vaekit 2.12 s per epoch (28,345 samples/s), pythae with 2
# threads 4.87 s (12,325 samples/s): vaekit 2.30x faster; a plain PyTorch loop 2.87 s (1.36x).
#
# ## An anomaly detector: PyOD vs vaekit
#
# **PyOD** (not run here; `bench/_pyod_peers.py` runs it in the benchmark environment):
#
# ```python
# from pyod.models.vae import VAE
#
# det = VAE(random_state=0, verbose=0).fit(x_train)
# scores = det.decision_function(x_test)   # higher = more anomalous
# labels = det.predict(x_test)             # 1 = outlier
# det.threshold_, det.decision_scores_, det.labels_
# ```
#
# **vaekit** (run below) keeps PyOD's names and conventions and adds scikit-learn's:

# %%
odds = data_dir / "odds" / "45_wine.npz"
if odds.exists():
    d = np.load(odds)
    X, y, what = d["X"].astype(np.float32), d["y"].astype(int), "ODDS wine"
else:
    from sklearn.datasets import load_breast_cancer

    bc = load_breast_cancer()
    X, y, what = bc.data.astype(np.float32), 1 - bc.target, "sklearn breast cancer (ODDS not found)"
r = np.random.default_rng(0)
inl = r.permutation(np.flatnonzero(y == 0))
tr, te = inl[: len(inl) // 2], np.r_[inl[len(inl) // 2 :], np.flatnonzero(y == 1)]

det = vk.VAEDetector(random_state=0, **(dict(n_models=1, max_steps=600, patience=200) if QUICK else {})).fit(X[tr])

print(f"{what}: ROC-AUC {roc_auc_score(y[te], det.anomaly_score(X[te])):.3f}")
print(
    "PyOD names:",
    f"threshold_={det.threshold_:.2f}",
    f"decision_scores_{det.decision_scores_.shape}",
    f"labels_ sum={det.labels_.sum()}",
)
print("predict_proba (PyOD's 'linear'):", np.round(det.predict_proba(X[te][:3]), 3).tolist())
print("predict (scikit-learn, -1 = outlier):", det.predict(X[te][-5:]))

# %% [markdown]
# | PyOD | vaekit |
# |---|---|
# | `VAE().fit(X)` | `vk.VAEDetector().fit(X)` (robust scaling, a VAE sized to the features, early stopping, an ensemble of 3) |
# | `decision_function(X)` (higher = anomalous) | `anomaly_score(X)`; `decision_function(X)` follows scikit-learn (negative = outlier) |
# | `predict(X)` -> 1 outlier / 0 inlier | `predict(X)` -> -1 outlier / +1 inlier (scikit-learn); `labels_` as PyOD's |
# | `contamination=0.1` | `contamination="auto"` (1% of training rows) or a fraction; or `false_alarm_rate=` on clean data |
# | `predict_proba`, `predict_confidence` | the same names and methods |
# | `joblib.dump(det)` (pickle) | `det.save("dir/")` (JSON + equinox arrays, checksummed; no pickle) |
#
# **Measured** (`BENCHMARKS.md`, "Anomaly detection II", 12 ODDS sets, 2 seeds, heavily loaded
# machine): mean ROC-AUC 0.958 for `VAEDetector` against 0.927 for PyOD's `VAE` and 0.940
# for PyOD's `AutoEncoder` (kNN 0.957); mean average precision 0.880 against 0.788 and 0.824.
# Fit + score time: slower than PyOD's AutoEncoder on the 7 small sets (3-6x, compilation
# dominates), faster on the 5 larger ones (thyroid, cardio, vowels, satimage-2, shuttle).
#
# **Full size** of this page, measured (`VAEKIT_DOCS_QUICK=0`, on the 2-core CPU shared with
# other jobs, load average about 10, so the times are several times an idle machine's):
# 60,000 MNIST images, 10 epochs in 107.9 s, 9.47 s per epoch after the first, final -ELBO
# 152.1 nats; the default 3-model `VAEDetector` on ODDS wine (seed 0): ROC-AUC 0.955.
