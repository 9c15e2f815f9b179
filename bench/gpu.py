"""The GPU benchmark of the reference model, in one run that fits in 5 minutes on one GPU.

Reference model: 784 -> 500 tanh -> 2x2 Gaussian; 2 -> 500 tanh -> 784 Bernoulli, Adam
1e-3, MNIST binarized at 0.5 (``$VAEKIT_DATA_DIR/mnist``; without it, random binary
images of the same shape, which the output says). Measured:

* the float32 (and bfloat16) matmul peak of the device (a large matmul in JAX);
* ``vk.fit`` epoch time at batch 200 and 1024, float32 and ``compute_dtype=bfloat16``:
  the first epoch (compilation + one epoch) and the best later epoch, their
  difference as the compile time, samples/s and the fraction of the float32 peak;
* ``vk.log_likelihood`` throughput ((example, sample) pairs per second) and its fraction
  of the peak.

Prints a Markdown table to paste into BENCHMARKS.md. ``VAEKIT_GPU_BENCH_QUICK=1`` runs a
tiny version of everything (a few hundred rows, small matmuls) to check on a CPU that the
script works; its numbers mean nothing.

    bash bench/gpu.sh            # or: python bench/gpu.py
"""

from __future__ import annotations

import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _data import data_dir, machine, mnist_binarized  # noqa: E402
from throughput import eval_flops_per_pair, flops_per_example, reference_model  # noqa: E402

import vaekit as vk  # noqa: E402

QUICK = os.environ.get("VAEKIT_GPU_BENCH_QUICK", "") not in ("", "0")


def peak(dtype, n: int, repeats: int = 10) -> float:
    """Best GFLOP/s of an ``n x n @ n x n`` matmul in ``dtype``."""
    a = jax.random.normal(jax.random.key(0), (n, n), dtype)
    b = jax.random.normal(jax.random.key(1), (n, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def data(n: int) -> tuple[np.ndarray, str]:
    if os.path.exists(os.path.join(data_dir(), "mnist", "train-images-idx3-ubyte.gz")):
        return mnist_binarized(n), "MNIST binarized at 0.5"
    x = (np.random.default_rng(0).random((n, 784)) < 0.13).astype(np.float32)
    return x, "random binary images (MNIST not found in $VAEKIT_DATA_DIR)"


def main() -> None:
    t_start = time.perf_counter()
    dev = jax.devices()[0]
    rows, epochs, ll_examples, ll_samples, n_peak = (60000, 3, 2000, 1000, 8192)
    if QUICK:
        rows, epochs, ll_examples, ll_samples, n_peak = (2048, 2, 16, 64, 256)
    x, what = data(rows)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; os.getloadavg {os.getloadavg()}")
    print(f"# jax {jax.__version__}, device {dev} ({dev.device_kind}), vaekit {vk.__version__}; data: {what}")
    if QUICK:
        print("# QUICK MODE (VAEKIT_GPU_BENCH_QUICK=1): a check that the script runs; the numbers mean nothing")
    p32 = peak(jnp.float32, n_peak)
    p16 = peak(jnp.bfloat16, n_peak)
    print(f"# matmul peak ({n_peak}^3): float32 {p32:.0f} GFLOP/s, bfloat16 {p16:.0f} GFLOP/s", flush=True)
    rows_out = []
    for batch in (200, 1024):
        for name, dtype in (("float32", None), ("bfloat16", jnp.bfloat16)):
            model = reference_model()
            _, h = vk.fit(model, x, key=jax.random.key(1), epochs=epochs, batch_size=batch, compute_dtype=dtype)
            first, best = h["time"][0], min(h["time"][1:])
            sps = (len(x) // batch) * batch / best
            rows_out.append(
                (f"vk.fit batch {batch}", name, first, best, first - best, sps, sps * flops_per_example(500))
            )
            print(f"# done: batch {batch} {name}: first epoch {first:.2f} s, later {best:.3f} s", flush=True)
    model = reference_model()
    xl = jnp.asarray(x[:ll_examples])
    key = jax.random.key(2)
    t0 = time.perf_counter()
    jax.block_until_ready(vk.log_likelihood(model, xl, key, n_samples=ll_samples))
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    jax.block_until_ready(vk.log_likelihood(model, xl, key, n_samples=ll_samples))
    best = time.perf_counter() - t0
    pps = ll_examples * ll_samples / best
    rows_out.append(
        (
            f"vk.log_likelihood {ll_examples} x {ll_samples}",
            "float32",
            first,
            best,
            first - best,
            pps,
            pps * eval_flops_per_pair(500),
        )
    )
    print(
        f"\n{dev.device_kind}, jax {jax.__version__}; data: {what}; matmul peak float32 {p32:.0f} / bfloat16 {p16:.0f} GFLOP/s"
    )
    print(
        "\n| what | dtype | first call (s) | later (s) | compile ~ (s) | samples or pairs/s | GFLOP/s | fraction of float32 peak |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for what_, dt, first, best, comp, rate, flops in rows_out:
        print(
            f"| {what_} | {dt} | {first:.2f} | {best:.3f} | {comp:.2f} | {rate:,.0f} | {flops / 1e9:.0f} | {flops / 1e9 / p32:.0%} |"
        )
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
