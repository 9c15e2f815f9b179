"""Mixed precision on this machine: seconds per epoch and final losses, float32 vs bfloat16.

    python bench/precision.py --rows 10000 --epochs 3 --hidden 500

Uses MNIST (binarized at 0.5) from $VAEKIT_DATA_DIR; the first epoch (compilation) is
reported separately from the mean of the others.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

import vaekit as vk


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=100)
    a = ap.parse_args()
    ds = vk.datasets.load("mnist", limit=a.rows)
    x = (np.asarray(ds.x).reshape(len(ds.x), -1) > 0.5).astype(np.float32)
    model = vk.presets.build("vae", x.shape[1], key=jax.random.key(0), latent_dim=20, hidden=(a.hidden, a.hidden))
    out = {"device": str(jax.devices()[0]), "rows": len(x), "hidden": a.hidden, "batch_size": a.batch_size}
    for name, dtype in (("float32", None), ("bfloat16", jnp.bfloat16)):
        t0 = time.perf_counter()
        _, h = vk.fit(model, x, key=1, epochs=a.epochs, batch_size=a.batch_size, compute_dtype=dtype)
        out[name] = {
            "first_epoch_s": round(h["time"][0], 2),
            "later_epoch_s": round(float(np.mean(h["time"][1:])), 2),
            "final_train_loss": round(h["train_loss"][-1], 3),
            "wall_s": round(time.perf_counter() - t0, 1),
        }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
