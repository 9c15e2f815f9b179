"""Anomaly-detection benchmark: VAEDetector() against classical detectors.

Semi-supervised protocol: for each dataset and seed, train on a random 50% of the
inliers; test on the remaining inliers plus all anomalies; scaling (where a method
needs it) is fitted on the training part. ROC-AUC and average precision, mean over
the seeds, one markdown table per metric, and wall times.

    nice -n 10 python bench/anomaly.py [--data DIR] [--seeds 5] [--only vae,knn]
        [--vae-params '{"n_models": 3}'] [--pyod-python /work/venv-bench/bin/python]

``--pyod-python`` adds PyOD's ``VAE`` and ``AutoEncoder`` (defaults, ``random_state=seed``)
as the peers ``pyod_vae`` and ``pyod_ae``: they run in that interpreter (an environment with
PyOD and CPU PyTorch; not a vaekit dependency) through ``bench/_pyod_peers.py``, on the same
splits; their time is the worker's fit + score wall time (without interpreter start-up).

``DIR`` defaults to ``$VAEKIT_DATA_DIR/odds``; every ``.npz`` (keys ``X``, ``y``) and
``.mat`` (scipy ``loadmat``) file in it is one dataset (``y == 1``: anomaly).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.neighbors import LocalOutlierFactor, NearestNeighbors
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM


def load(path: str) -> tuple[np.ndarray, np.ndarray]:
    if path.endswith(".npz"):
        d = np.load(path, allow_pickle=False)
        x, y = d["X"], d["y"]
    else:
        from scipy.io import loadmat

        m = loadmat(path)
        x, y = m["X"], m["y"]
    return np.asarray(x, np.float64), np.asarray(y).ravel().astype(int)


def split(y: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    inl = np.flatnonzero(y == 0)
    rng.shuffle(inl)
    half = len(inl) // 2
    train = inl[:half]
    test = np.concatenate([inl[half:], np.flatnonzero(y == 1)])
    return train, test


# Each baseline: (train, test, seed) -> anomaly scores of test (higher = more anomalous).
def _std(xtr, xte):
    s = StandardScaler().fit(xtr)
    return s.transform(xtr), s.transform(xte)


def iforest(xtr, xte, seed):
    return -IsolationForest(random_state=seed).fit(xtr).score_samples(xte)


def lof(xtr, xte, seed):
    a, b = _std(xtr, xte)
    return -LocalOutlierFactor(novelty=True).fit(a).score_samples(b)


def knn(xtr, xte, seed):
    a, b = _std(xtr, xte)
    d, _ = NearestNeighbors(n_neighbors=5).fit(a).kneighbors(b)
    return d.mean(1)


def pca(xtr, xte, seed):
    from sklearn.decomposition import PCA

    a, b = _std(xtr, xte)
    p = PCA(n_components=0.9, random_state=seed).fit(a)  # keep 90% of the variance
    rec = p.inverse_transform(p.transform(b))
    return ((b - rec) ** 2).sum(1)


def ocsvm(xtr, xte, seed):
    a, b = _std(xtr, xte)
    return -OneClassSVM(gamma="scale", nu=0.1).fit(a).score_samples(b)


def vae_factory(params: dict):
    def vae(xtr, xte, seed):
        from vaekit import VAEDetector

        return VAEDetector(random_state=seed, **params).fit(xtr).anomaly_score(xte)

    return vae


class PyODPeers:
    """One worker process of ``bench/_pyod_peers.py``; ``peer(model)`` is a baseline."""

    def __init__(self, python: str):
        import subprocess
        import tempfile

        here = os.path.dirname(os.path.abspath(__file__))
        self.tmp = tempfile.mkdtemp(prefix="pyod_peers_")
        self.proc = subprocess.Popen(
            [python, os.path.join(here, "_pyod_peers.py")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self._answer()

    def _answer(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("the PyOD worker stopped (see its error above)")
        return json.loads(line)

    def peer(self, model: str):
        def run(xtr, xte, seed):
            tr, te, out = (os.path.join(self.tmp, n) for n in ("train.npy", "test.npy", "out.npy"))
            np.save(tr, xtr)
            np.save(te, xte)
            assert self.proc.stdin is not None
            self.proc.stdin.write(
                json.dumps({"model": model, "train": tr, "test": te, "seed": seed, "out": out}) + "\n"
            )
            self.proc.stdin.flush()
            run.seconds = self._answer()["seconds"]  # type: ignore[attr-defined]
            return np.load(out)

        return run


BASELINES = {"iforest": iforest, "lof": lof, "knn": knn, "pca": pca, "ocsvm": ocsvm}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default = os.path.join(os.environ.get("VAEKIT_DATA_DIR", ""), "odds") if os.environ.get("VAEKIT_DATA_DIR") else None
    ap.add_argument("--data", default=default, help="folder of .npz/.mat files (default $VAEKIT_DATA_DIR/odds)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--only", default=None, help="comma-separated methods (vae, " + ", ".join(BASELINES) + ")")
    ap.add_argument("--vae-params", default="{}", help="JSON of VAEDetector parameters (default: its defaults)")
    ap.add_argument("--datasets", default=None, help="comma-separated substrings of file names to keep")
    ap.add_argument("--pyod-python", default=None, help="python with PyOD + torch: adds pyod_vae, pyod_ae")
    ap.add_argument("--small-first", action="store_true", help="run the datasets smallest file first")
    ap.add_argument("--json", default=None, help="also write the raw results here")
    ap.add_argument(
        "--merge", nargs="+", default=None, metavar="JSON", help="only print the tables of earlier --json runs"
    )
    args = ap.parse_args(argv)
    if args.merge:
        return merge(args.merge)
    if not args.data or not os.path.isdir(args.data):
        print("No data folder: pass --data DIR or set VAEKIT_DATA_DIR.", file=sys.stderr)
        return 2
    files = sorted(glob.glob(os.path.join(args.data, "*.npz")) + glob.glob(os.path.join(args.data, "*.mat")))
    if args.datasets:
        keep = args.datasets.split(",")
        files = [f for f in files if any(k in os.path.basename(f) for k in keep)]
    if args.small_first:
        files.sort(key=os.path.getsize)
    methods = {"vae": vae_factory(json.loads(args.vae_params)), **BASELINES}
    if args.pyod_python and (not args.only or "pyod" in args.only):
        peers = PyODPeers(args.pyod_python)
        methods.update(pyod_vae=peers.peer("vae"), pyod_ae=peers.peer("autoencoder"))
    if args.only:
        methods = {k: methods[k] for k in args.only.split(",")}
    names = list(methods)
    res: dict[str, dict[str, dict[str, float]]] = {}
    times = {m: 0.0 for m in names}
    ds_times: dict[str, dict[str, float]] = {}
    t_all = time.perf_counter()
    for f in files:
        ds = os.path.splitext(os.path.basename(f))[0]
        x, y = load(f)
        res[ds] = {}
        ds_times[ds] = {m: 0.0 for m in names}
        for m in names:
            aucs, aps = [], []
            for seed in range(args.seeds):
                tr, te = split(y, seed)
                t0 = time.perf_counter()
                s = np.asarray(methods[m](x[tr], x[te], seed), np.float64)
                dt = getattr(methods[m], "seconds", time.perf_counter() - t0)
                times[m] += dt
                ds_times[ds][m] += dt
                if not np.isfinite(s).all():
                    print(f"warning: {m} on {ds} seed {seed}: non-finite scores", file=sys.stderr)
                    s = np.nan_to_num(s, nan=np.inf)
                aucs.append(roc_auc_score(y[te], s))
                aps.append(average_precision_score(y[te], s))
            res[ds][m] = {"auc": float(np.mean(aucs)), "ap": float(np.mean(aps)), "auc_std": float(np.std(aucs))}
            print(
                f"{ds:>20} {m:>8}  auc {np.mean(aucs):.4f}  ap {np.mean(aps):.4f}  s/fit {ds_times[ds][m] / args.seeds:.2f}",
                file=sys.stderr,
                flush=True,
            )
        if args.json:  # after every dataset, so that an interrupted run keeps what it measured
            with open(args.json, "w") as fh:
                json.dump(
                    {
                        "results": res,
                        "times": times,
                        "ds_times": ds_times,
                        "wall": time.perf_counter() - t_all,
                        "seeds": args.seeds,
                    },
                    fh,
                    indent=1,
                )
    wall = time.perf_counter() - t_all
    print_tables(res, names, times, wall, args.seeds, ds_times=ds_times)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"results": res, "times": times, "ds_times": ds_times, "wall": wall, "seeds": args.seeds}, fh, indent=1
            )
    return 0


def print_tables(res, names, times, wall, seeds, machine: bool = True, ds_times=None) -> None:
    for metric, title in (("auc", "ROC-AUC"), ("ap", "Average precision")):
        print(f"\n### {title} (mean over {seeds} seeds)\n")
        print("| dataset | " + " | ".join(names) + " |")
        print("|---|" + "---:|" * len(names))
        for ds, r in res.items():
            best = max(r[m][metric] for m in names)
            cells = [f"**{r[m][metric]:.3f}**" if r[m][metric] == best else f"{r[m][metric]:.3f}" for m in names]
            print(f"| {ds} | " + " | ".join(cells) + " |")
        means = {m: float(np.mean([r[m][metric] for r in res.values()])) for m in names}
        top = max(means.values())
        print(
            "| **mean** | "
            + " | ".join(f"**{means[m]:.4f}**" if means[m] == top else f"{means[m]:.4f}" for m in names)
            + " |"
        )
    print("\n### Wall time (s, all datasets and seeds, fit + score)\n")
    print("| " + " | ".join(names) + " | total |")
    print("|" + "---:|" * (len(names) + 1))
    print("| " + " | ".join(f"{times[m]:.1f}" for m in names) + f" | {wall:.1f} |")
    if ds_times and all(set(names) <= set(t) for t in ds_times.values()):
        print(f"\n### Fit + score time per fit (s, mean over {seeds} seeds)\n")
        ratio = "vae" in names and "pyod_ae" in names
        print("| dataset | " + " | ".join(names) + (" | vae / pyod_ae |" if ratio else " |"))
        print("|---|" + "---:|" * (len(names) + ratio))
        for ds, t in ds_times.items():
            cells = [f"{t[m] / seeds:.2f}" for m in names]
            if ratio:
                cells.append(f"{t['vae'] / t['pyod_ae']:.2f}")
            print(f"| {ds} | " + " | ".join(cells) + " |")
    if machine:
        print(f"\nmachine: {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()}")


def merge(paths: list[str]) -> int:
    """Print the tables of several ``--json`` outputs side by side (same datasets and seeds)."""
    res, times, wall, seeds, ds_times = {}, {}, 0.0, None, {}
    for p in paths:
        with open(p) as fh:
            d = json.load(fh)
        for ds, r in d["results"].items():
            res.setdefault(ds, {}).update(r)
        times.update(d["times"])
        for ds, t in d.get("ds_times", {}).items():
            ds_times.setdefault(ds, {}).update(t)
        wall += d["wall"]
        if seeds is not None and d.get("seeds") != seeds:
            raise SystemExit(f"{p} used {d.get('seeds')} seeds, the others {seeds}.")
        seeds = d.get("seeds")
    names = list(times)
    print_tables(res, names, times, wall, seeds, machine=False, ds_times=ds_times)
    return 0


if __name__ == "__main__":
    sys.exit(main())
