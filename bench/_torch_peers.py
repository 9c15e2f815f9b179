# pyright: reportMissingImports=false
"""The reference model in PyTorch: a plain training loop, and pythae's TrainingPipeline.

Run by ``bench/throughput.py`` in an environment with ``torch`` (the ``bench`` extra);
prints one JSON line per configuration. Not imported by vaekit.

    python bench/_torch_peers.py {torch|pythae} N BATCH HIDDEN
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _data import mnist_binarized  # noqa: E402


class Encoder(nn.Module):
    def __init__(self, hidden: int, latent: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(784, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent))
        self.latent = latent

    def forward(self, x):
        h = self.net(x.reshape(x.shape[0], -1))
        return h[:, : self.latent], h[:, self.latent :]  # mean, log-variance


class Decoder(nn.Module):
    def __init__(self, hidden: int, latent: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent, hidden), nn.Tanh(), nn.Linear(hidden, 784))

    def forward(self, z):
        return self.net(z)  # Bernoulli logits


def plain_loop(x: np.ndarray, batch: int, hidden: int) -> dict:
    torch.manual_seed(0)
    enc, dec = Encoder(hidden), Decoder(hidden)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=1e-3)
    data = torch.from_numpy(x)
    bce = nn.BCEWithLogitsLoss(reduction="none")

    def epoch(n_steps):
        perm = torch.randperm(len(data))
        total = 0.0
        for i in range(n_steps):
            xb = data[perm[i * batch : (i + 1) * batch]]
            mu, logvar = enc(xb)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            rec = bce(dec(z), xb).sum(1)
            kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)
            loss = (rec + kl).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        return total / n_steps

    steps = len(x) // batch
    epoch(min(steps, 20))  # warm-up
    t0 = time.perf_counter()
    loss = epoch(steps)
    return dict(seconds=time.perf_counter() - t0, steps=steps, loss=loss)


def pythae_pipeline(x: np.ndarray, batch: int, hidden: int) -> dict:
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig

    class PEnc(BaseEncoder):
        def __init__(self):
            BaseEncoder.__init__(self)
            self.enc = Encoder(hidden)

        def forward(self, x):
            mu, logvar = self.enc(x)
            return ModelOutput(embedding=mu, log_covariance=logvar)

    class PDec(BaseDecoder):
        def __init__(self):
            BaseDecoder.__init__(self)
            self.dec = Decoder(hidden)

        def forward(self, z):
            return ModelOutput(reconstruction=torch.sigmoid(self.dec(z)).reshape(-1, 1, 28, 28))

    torch.manual_seed(0)
    cfg = VAEConfig(input_dim=(1, 28, 28), latent_dim=2, reconstruction_loss="bce")
    model = VAE(cfg, encoder=PEnc(), decoder=PDec())
    with tempfile.TemporaryDirectory() as out:
        tcfg = BaseTrainerConfig(
            output_dir=out,
            num_epochs=1,
            learning_rate=1e-3,
            per_device_train_batch_size=batch,
            optimizer_cls="Adam",
            no_cuda=True,
            steps_saving=None,
            keep_best_on_train=False,
        )
        pipe = TrainingPipeline(training_config=tcfg, model=model)
        data = x.reshape(-1, 1, 28, 28)
        t0 = time.perf_counter()
        pipe(train_data=data)
        secs = time.perf_counter() - t0
    return dict(seconds=secs, steps=-(-len(x) // batch), loss=float("nan"))


if __name__ == "__main__":
    which, n, batch, hidden = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(int(os.environ.get("VAEKIT_BENCH_TORCH_THREADS", os.cpu_count() or 1)))
    x = mnist_binarized(n)
    res = (plain_loop if which == "torch" else pythae_pipeline)(x, batch, hidden)
    res.update(which=which, batch=batch, hidden=hidden, n=n, torch=torch.__version__, threads=torch.get_num_threads())
    print(json.dumps(res))
