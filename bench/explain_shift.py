"""Explanation check for ``VAEDetector.explain``: shift one feature, does it rank first?

For each dataset: train on half the inliers (split of ``bench/anomaly.py``, seed 0), take
up to 200 held-out inliers, shift feature ``j`` (cycling over the non-constant features)
by 6 training standard deviations, and count the rows whose top feature is ``j``.

    nice -n 15 python bench/explain_shift.py 38_thyroid.npz,6_cardio.npz \\
        ['{"n_models": 1, "max_steps": 600, "patience": 200, "n_samples": 16}']
"""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from anomaly import load, split


def main() -> int:
    import vaekit as vk

    params = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    if "hidden" in params:
        params["hidden"] = tuple(params["hidden"])
    folder = os.path.join(os.environ.get("VAEKIT_DATA_DIR", "/work/shared/data"), "odds")
    for name in sys.argv[1].split(","):
        x, y = load(os.path.join(folder, name))
        tr, te = split(y, 0)
        te = te[y[te] == 0][:200]
        t = time.process_time()
        det = vk.VAEDetector(random_state=0, **params).fit(x[tr])
        sd = x[tr].std(0)
        cols = np.flatnonzero(sd > 0)
        rows = x[te].copy()
        js = cols[np.arange(len(rows)) % len(cols)]
        rows[np.arange(len(rows)), js] += 6 * sd[js]
        hit = float(np.mean(det.explain(rows, top=1).top_features[:, 0] == js))
        print(
            f"{name} {x.shape} hit rate {hit:.3f} ({len(rows)} rows) cpu {time.process_time() - t:.1f} s",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
