"""Test NLL on statically binarized MNIST, estimated with importance sampling.

Models (MLP, Gaussian latent 50, Bernoulli decoder): a VAE trained on the ELBO, an IWAE
(k = 50 training samples) and, when vaekit has it, a VampPrior VAE. Each is trained for
``--epochs`` epochs or until its share of ``--budget-minutes`` runs out (whichever comes
first), then ``-log p(x)`` is estimated on the test set with ``--samples`` importance
samples (``vk.log_likelihood``). Data: ``$VAEKIT_DATA_DIR/binarized-mnist`` (Larochelle &
Murray 2011, 50000/10000/10000).

Literature on the same data: pythae VAE 89.78 (200 importance samples), IWAE k=50
87.10 (Burda et al. 2015), VampPrior one layer 85.57 (Tomczak & Welling 2018).

    python bench/nll.py --epochs 1000 --budget-minutes 30
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax
import numpy as np

import vaekit as vk

LITERATURE = {"vae": 89.78, "iwae": 87.10, "vampprior": 85.57}


def load(split: str) -> np.ndarray:
    root = os.environ.get("VAEKIT_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    path = os.path.join(root, "binarized-mnist", f"binarized_mnist_{split}.npz")
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: set VAEKIT_DATA_DIR to the folder holding binarized-mnist/.")
    with np.load(path, allow_pickle=False) as d:
        x = np.unpackbits(d["bits"], axis=1, count=784)
        assert x.shape == tuple(d["shape"])
    return x.astype(np.float32)


def build(kind: str, hidden: tuple[int, ...], latent: int, key, x_train) -> vk.VAE:
    k1, k2, k3 = jax.random.split(key, 3)
    enc = vk.Gaussian(vk.MLP(784, 2 * latent, hidden, key=k1), variance="diag")
    dec = vk.Bernoulli(vk.MLP(latent, 784, hidden[::-1], key=k2))
    if kind == "vampprior":
        # pseudo-inputs initialised at training examples (Tomczak & Welling 2018)
        idx = np.asarray(jax.random.choice(k3, len(x_train), (500,), replace=False))
        return vk.VampVAE(vk.VampPrior(x_train[idx]), enc, dec)
    return vk.VAE(prior=vk.StandardNormal(latent), encoder=enc, decoder=dec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--budget-minutes", type=float, default=30.0, help="training time for all models together")
    ap.add_argument("--models", default="vae,iwae,vampprior")
    ap.add_argument("--hidden", default="200,200")
    ap.add_argument("--latent", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--samples", type=int, default=5000, help="importance samples for the test NLL")
    ap.add_argument("--test-examples", type=int, default=10000, help="a fixed random subset of N test images (10000 = all)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    print(f"# vaekit {vk.__version__}, jax {jax.__version__}, device {jax.devices()[0]}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
    x_train, x_test = load("train"), load("test")
    if args.test_examples < len(x_test):
        # The test file is ordered (mean ink per block of 1,000 images ranges from 60 to
        # 133 pixels), so a prefix is biased: use a fixed random subset instead.
        pick = np.sort(np.random.default_rng(0).choice(len(x_test), args.test_examples, replace=False))
        x_test = x_test[pick]
    hidden = tuple(int(h) for h in args.hidden.split(","))
    models = [m for m in args.models.split(",") if m]
    if "vampprior" in models and not hasattr(vk, "VampPrior"):
        print("# vampprior: skipped (vk.VampPrior is not in this vaekit)", flush=True)
        models.remove("vampprior")
    per_model = 60 * args.budget_minutes / max(1, len(models))
    rows = []
    for i, kind in enumerate(models):
        key = jax.random.fold_in(jax.random.key(args.seed), i)
        model = build(kind, hidden, args.latent, key, x_train)
        t0 = time.perf_counter()

        def stop(state, t0=t0):
            return time.perf_counter() - t0 > per_model

        kw = dict(objective="iwae", n_samples=50) if kind == "iwae" else {}
        model, hist = vk.fit(
            model, x_train, key=jax.random.fold_in(key, 1), epochs=args.epochs, batch_size=args.batch_size,
            optimizer=vk.default_optimizer(args.lr), callback=stop, **kw,
        )
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        ll = vk.log_likelihood(model, x_test, jax.random.fold_in(key, 2), n_samples=args.samples)
        nll = -float(np.mean(np.asarray(ll)))
        rows.append((kind, len(hist["train_loss"]), train_s, float(np.median(hist["time"][1:] or hist["time"])),
                     hist["train_loss"][-1], nll, time.perf_counter() - t1))
        print(f"{kind}: {rows[-1][1]} epochs in {train_s:.0f} s, train loss {rows[-1][4]:.2f}, "
              f"test NLL {nll:.2f} nats ({args.samples} samples, {len(x_test)} test images)", flush=True)

    print("\n| model | epochs | train s | s/epoch | final train loss | test NLL (nats) | literature |")
    print("|---|---|---|---|---|---|---|")
    for kind, ep, ts, se, tl, nll, _ in rows:
        print(f"| {kind} | {ep} | {ts:.0f} | {se:.1f} | {tl:.2f} | {nll:.2f} | {LITERATURE[kind]} |")
    print("\nTarget: <= 85.5 nats with an MLP model.")


if __name__ == "__main__":
    main()
