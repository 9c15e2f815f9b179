# pyright: reportMissingImports=false
"""PyOD peers for ``bench/anomaly.py``: a worker run by the benchmark environment's python.

Reads one JSON request per line on stdin, ``{"model": "vae"|"autoencoder", "train": PATH,
"test": PATH, "seed": S, "out": PATH}`` (``.npy`` files), fits PyOD's detector with its
defaults (``verbose=0``, ``random_state=S``) on the training rows, writes the test rows'
``decision_function`` (higher = more anomalous) to ``out`` and answers one JSON line
``{"seconds": fit + score wall time}``. Not imported by vaekit (PyOD and torch are not
vaekit dependencies).

    /work/venv-bench/bin/python bench/_pyod_peers.py
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def make(model: str, seed: int):
    if model == "vae":
        from pyod.models.vae import VAE

        return VAE(random_state=seed, verbose=0)
    if model == "autoencoder":
        from pyod.models.auto_encoder import AutoEncoder

        return AutoEncoder(random_state=seed, verbose=0)
    raise ValueError(f"unknown PyOD model {model!r}")


def main() -> int:
    import torch  # noqa: F401 - imported once, before any timing

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        xtr, xte = np.load(req["train"]), np.load(req["test"])
        t0 = time.perf_counter()
        det = make(req["model"], int(req["seed"])).fit(xtr)
        s = np.asarray(det.decision_function(xte), np.float64)
        dt = time.perf_counter() - t0
        np.save(req["out"], s)
        print(json.dumps({"seconds": dt}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
