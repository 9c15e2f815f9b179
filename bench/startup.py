"""Start-up time of ``vaekit train``: a cold run (empty compilation cache) against a
second, warm run of the same configuration (JAX's persistent compilation cache, on by
default in the command line).

Measures the wall time from starting the process to the first finished epoch (the
first row of the run's ``metrics.jsonl``) and to the process's exit, for: a cold run with
a fresh cache folder, a warm run with the same folder, and a run with
``--no-compile-cache``, and each run's CPU time (all its threads; a shared machine
disturbs it less than the wall time). Each measurement pair uses a new temporary cache folder
(``VAEKIT_COMPILE_CACHE_DIR``) and run folder; ``--repeats`` pairs are measured.

    VAEKIT_DATA_DIR=/work/shared/data python bench/startup.py [--repeats 2] [-- extra train flags]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _data import machine  # noqa: E402

#: the reference model: 784 -> 500 tanh -> 2x2; 2 -> 500 tanh -> 784 Bernoulli, batch 200
DEFAULT = ["--data", "mnist", "--latent-dim", "2", "--hidden", "500", "--batch-size", "200", "--epochs", "1"]


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed_run(flags: list[str], cache: Path | None, out: Path) -> tuple[float, float, float]:
    """``(seconds to the first finished epoch, seconds to exit, CPU seconds of the whole
    process)`` of one ``vaekit train``."""
    cpu0 = children_cpu()
    env = dict(os.environ)
    if cache is not None:
        env["VAEKIT_COMPILE_CACHE_DIR"] = str(cache)
    cmd = [sys.executable, "-m", "vaekit.cli", "train", *flags, "--out", str(out), "--quiet"]
    if cache is None:
        cmd.append("--no-compile-cache")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    metrics = out / "metrics.jsonl"
    while proc.poll() is None:
        if first is None and metrics.exists() and metrics.stat().st_size > 0:
            first = time.perf_counter() - t0
        time.sleep(0.01)
    end = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"vaekit train failed ({proc.returncode}): {proc.stderr.read() if proc.stderr else ''}")
    return (first if first is not None else end), end, children_cpu() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2, help="cold/warm pairs (each with a fresh cache folder)")
    ap.add_argument("flags", nargs="*", help="vaekit train flags (after --); default: the reference model on MNIST")
    args = ap.parse_args()
    flags = args.flags or DEFAULT
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; os.getloadavg {os.getloadavg()}")
    print(f"# vaekit train {' '.join(flags)}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for r in range(args.repeats):
            cache = root / f"cache{r}"
            for name, c in (("cold (empty cache)", cache), ("warm (second run)", cache), ("--no-compile-cache", None)):
                out = root / f"run{r}-{len(rows)}"
                first, end, cpu = timed_run(flags, c, out)
                shutil.rmtree(out, ignore_errors=True)
                rows.append((r, name, first, end, cpu))
                print(
                    f"# pair {r}: {name}: first epoch after {first:.2f} s, exit after {end:.2f} s, {cpu:.2f} CPU-s",
                    flush=True,
                )
            size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
            print(f"# pair {r}: cache {size / 2**20:.1f} MiB in {sum(1 for _ in cache.rglob('*'))} files", flush=True)
    print("\n| pair | run | first finished epoch (s) | exit (s) | CPU time of the run (s) |\n|---|---|---|---|---|")
    for r, name, first, end, cpu in rows:
        print(f"| {r} | {name} | {first:.2f} | {end:.2f} | {cpu:.2f} |")
    for r in range(args.repeats):
        (cold, cold_cpu), (warm, warm_cpu) = (
            (row[2], row[4]) for row in rows if row[0] == r and row[1] != "--no-compile-cache"
        )
        print(
            f"pair {r}: the warm run reached its first finished epoch {cold / warm:.2f}x sooner than the cold one "
            f"and used {cold_cpu / warm_cpu:.2f}x less CPU time (the whole run: one epoch, then exit)"
        )
    print(f"\n# end: os.getloadavg {os.getloadavg()}")


if __name__ == "__main__":
    main()
