"""Test NLL on statically binarized MNIST, estimated with importance sampling.

Models (MLP, Gaussian latent 50, Bernoulli decoder): a VAE trained on the ELBO, an IWAE
(k = 50 training samples), when vaekit has them a VampPrior VAE and the two-stochastic-layer
hierarchical IWAE of Burda et al. (784-100-50, ``hierarchical``: the ``hierarchical_vae``
preset trained on the k = 50 bound; ``--hier-ladder`` for top-down inference). Each is trained for
``--epochs`` epochs or until its share of ``--budget-minutes`` runs out (whichever comes
first); the model with the best loss on ``--val-examples`` validation images (scored
after every epoch) is kept, and ``-log p(x)`` is estimated on the test set with
``--samples`` importance samples (``vk.log_likelihood``). Decoders start at the data
marginal (``vk.init_output_bias``). Data: ``$VAEKIT_DATA_DIR/binarized-mnist`` (Larochelle &
Murray 2011, 50000/10000/10000).

Literature on the same data: pythae VAE 89.78 (200 importance samples), IWAE k=50
87.10 (Burda et al. 2015), VampPrior one layer 85.57 (Tomczak & Welling 2018). Burda et
al.'s two-layer IWAE (k = 50) reaches 82.90 on *dynamically* binarized MNIST (not this
static set, on which every model overfits sooner).

    python bench/nll.py --epochs 1000 --budget-minutes 30
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import vaekit as vk

LITERATURE = {"vae": 89.78, "iwae": 87.10, "vampprior": 85.57, "hierarchical": "82.90 (dynamic binarization)"}


def load(split: str) -> np.ndarray:
    """``split`` in train/valid/test: ``[n, 784]`` float32 in {0, 1}."""
    root = os.environ.get("VAEKIT_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    path = os.path.join(root, "binarized-mnist", f"binarized_mnist_{split}.npz")
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: set VAEKIT_DATA_DIR to the folder holding binarized-mnist/.")
    with np.load(path, allow_pickle=False) as d:
        x = np.unpackbits(d["bits"], axis=1, count=784)
        assert x.shape == tuple(d["shape"])
    return x.astype(np.float32)


def build(kind: str, hidden: tuple[int, ...], latent: int, key, x_train, n_pseudo: int = 500, ladder: bool = False):
    if kind == "hierarchical":  # Burda et al.'s 784-100-50 with 2x200 and 2x100 tanh layers
        model = vk.presets.build(
            "hierarchical_vae", 784, key=key, latent_dim=50, layers=(100,), hidden=(200, 100), ladder=ladder
        )
        p = np.clip(x_train.mean(0), 1e-3, 1 - 1e-3)  # the decoder reads z_1 through FirstLayer
        return eqx.tree_at(
            lambda m: m.decoder.net.net.layers[-1].bias, model, jnp.asarray(np.log(p / (1 - p)), jnp.float32)
        )
    k1, k2, k3 = jax.random.split(key, 3)
    enc = vk.Gaussian(vk.MLP(784, 2 * latent, hidden, key=k1), variance="diag")
    dec = vk.Bernoulli(vk.MLP(latent, 784, hidden[::-1], key=k2))
    if kind == "vampprior":
        # pseudo-inputs initialised at training examples (Tomczak & Welling 2018)
        model = vk.VampVAE(vk.VampPrior.from_data(x_train, n_pseudo, key=k3), enc, dec)
    else:
        model = vk.VAE(prior=vk.StandardNormal(latent), encoder=enc, decoder=dec)
    # decoder starts at the data marginal (Burda et al.'s IWAE code); without it the
    # VampPrior VAE collapses to the mean-image loss (about 206 nats)
    return vk.init_output_bias(model, x_train)


class KeepBest:
    """``fit`` callback: stop after the time budget; remember the model with the best
    validation loss (static binarization overfits, so the last epoch is not the best)."""

    def __init__(self, budget_s: float):
        self.t0, self.budget_s = time.perf_counter(), budget_s
        self.best, self.best_loss, self.best_epoch = None, float("inf"), 0

    def __call__(self, state):
        v = state.history["val_loss"][-1]
        if v < self.best_loss:
            self.best, self.best_loss, self.best_epoch = state.model, v, state.epoch
        return time.perf_counter() - self.t0 > self.budget_s


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
    ap.add_argument(
        "--test-examples", type=int, default=10000, help="a fixed random subset of N test images (10000 = all)"
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pseudo-inputs", type=int, default=500, help="VampPrior components")
    ap.add_argument(
        "--train-examples",
        type=int,
        default=50000,
        help="a fixed random subset of N training images (50000 = all; for quick checks)",
    )
    ap.add_argument("--hier-ladder", action="store_true", help="hierarchical model: ladder (top-down) inference")
    ap.add_argument(
        "--val-examples",
        type=int,
        default=2000,
        help="validation images (random subset of the 10,000) scored after each epoch to keep the best model",
    )
    args = ap.parse_args()

    print(
        f"# vaekit {vk.__version__}, jax {jax.__version__}, device {jax.devices()[0]}, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}",
        flush=True,
    )
    x_train, x_test = load("train"), load("test")
    if args.train_examples < len(x_train):
        x_train = x_train[np.sort(np.random.default_rng(2).choice(len(x_train), args.train_examples, replace=False))]
    x_val = load("valid")
    x_val = x_val[
        np.sort(np.random.default_rng(1).choice(len(x_val), min(args.val_examples, len(x_val)), replace=False))
    ]
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
    if "hierarchical" in models and "hierarchical_vae" not in vk.presets.PRESETS:
        print("# hierarchical: skipped (no hierarchical_vae preset in this vaekit)", flush=True)
        models.remove("hierarchical")
    per_model = 60 * args.budget_minutes / max(1, len(models))
    rows = []
    for i, kind in enumerate(models):
        key = jax.random.fold_in(jax.random.key(args.seed), i)
        model = build(kind, hidden, args.latent, key, x_train, args.pseudo_inputs, args.hier_ladder)
        t0 = time.perf_counter()
        keep = KeepBest(per_model)
        kw = dict(objective="iwae", n_samples=50) if kind in ("iwae", "hierarchical") else {}
        last, hist = vk.fit(
            model,
            x_train,
            key=jax.random.fold_in(key, 1),
            epochs=args.epochs,
            batch_size=args.batch_size,
            optimizer=vk.default_optimizer(args.lr),
            callback=keep,
            x_val=x_val,
            **kw,
        )
        model = keep.best if keep.best is not None else last
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        ll = vk.log_likelihood(model, x_test, jax.random.fold_in(key, 2), n_samples=args.samples)
        nll = -float(np.mean(np.asarray(ll)))
        rows.append(
            (
                kind,
                len(hist["train_loss"]),
                keep.best_epoch,
                train_s,
                float(np.median(hist["time"][1:] or hist["time"])),
                hist["train_loss"][-1],
                keep.best_loss,
                nll,
                time.perf_counter() - t1,
            )
        )
        print(
            f"{kind}: {rows[-1][1]} epochs in {train_s:.0f} s, train loss {rows[-1][5]:.2f}, best validation "
            f"loss {keep.best_loss:.2f} at epoch {keep.best_epoch}; test NLL {nll:.2f} nats ({args.samples} "
            f"samples, {len(x_test)} test images, {rows[-1][-1]:.0f} s)",
            flush=True,
        )

    print(
        "\n| model | epochs | best epoch (validation) | train s | s/epoch | final train loss | best val loss | test NLL (nats) | eval s | literature |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, ep, be, ts, se, tl, vl, nll, es in rows:
        print(
            f"| {kind} | {ep} | {be} | {ts:.0f} | {se:.2f} | {tl:.2f} | {vl:.2f} | {nll:.2f} | {es:.0f} | {LITERATURE[kind]} |"
        )
    print("\nTarget: <= 85.5 nats with an MLP model.")


if __name__ == "__main__":
    main()
