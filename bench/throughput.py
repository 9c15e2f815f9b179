"""Training throughput of the reference VAE: vaekit vs a plain PyTorch loop vs pythae.

Reference model (the 2-D-latent model of the original assignment): encoder 784 -> 500
tanh -> 2x2 (diagonal Gaussian), decoder 2 -> 500 tanh -> 784 Bernoulli logits, batch
200, Adam 1e-3, one epoch over 60,000 MNIST training images binarized at 0.5
(``$VAEKIT_DATA_DIR/mnist``). Also sweeps batch size (64, 200, 1024) and hidden width
(200, 500, 1000).

In the same run: the machine's float32 matmul peak (a large matmul in JAX), the
model's matmul FLOPs per epoch (forward + backward, counted analytically), achieved
GFLOP/s and the fraction of the peak. vaekit is timed on its second epoch (the first
compiles; the faster of epochs 2 and 3). PyTorch runs in ``--torch-python`` (an environment with the ``bench`` extra:
``pip install torch==2.13.0``, and ``pythae`` if it installs), timed on one epoch after
20 warm-up steps, with ``os.cpu_count()`` threads or ``$VAEKIT_BENCH_TORCH_THREADS``; pythae through its ``TrainingPipeline`` (one epoch, as a user runs it).

Evaluation (``--eval-examples``, ``--eval-samples``): ``vk.log_likelihood``,
``vk.iwae_bound`` and the anomaly ``log_likelihood`` score of the reference model, as
(example, sample) pairs per second and a fraction of the peak (one decoder pass per pair).
Every fraction of peak is also given in CPU time (both sides of the ratio), which a
shared machine disturbs much less than the wall time.

    python bench/throughput.py --torch-python /work/venv-bench/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _data import machine, mnist_binarized  # noqa: E402

import vaekit as vk  # noqa: E402


def matmul_peak(n: int = 2048, repeats: int = 10) -> float:
    """Best float32 GFLOP/s of an ``n x n @ n x n`` matmul in JAX (wall time); also
    records the CPU-time rate in ``CPU_PEAKS`` (see :func:`cpu_rate`)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    best = best_cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    CPU_PEAKS.append(cpu_rate(2 * n**3, best_cpu))
    return 2 * n**3 / best / 1e9


#: matmul peaks measured in CPU time (GFLOP/s if every core were this process's)
CPU_PEAKS: list[float] = []


def cpu_rate(flops: float, cpu_seconds: float) -> float:
    """GFLOP/s from the process's CPU time, scaled to all its cores: ``flops / (cpu_seconds
    / cores)``. On a machine shared with other jobs the wall time grows with the load,
    the CPU time much less, so fractions of peak computed from CPU time on both sides
    are comparable between runs under different loads (they assume the work spreads
    over all cores; on an idle machine the wall-time fraction is the real one)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return flops / (cpu_seconds / cores) / 1e9


def flops_per_example(hidden: int, d: int = 784, latent: int = 2) -> int:
    """Matmul FLOPs of one training example, forward + backward.

    Forward ``2 * in * out`` per dense layer; backward the same for the weight gradient
    and again for the input gradient, except for the first layer (no gradient w.r.t. the
    data). Elementwise work (tanh, sampling, the loss, Adam) is not counted.
    """
    layers = [(d, hidden), (hidden, 2 * latent), (latent, hidden), (hidden, d)]
    fwd = sum(2 * i * o for i, o in layers)
    bwd = sum(2 * 2 * i * o for i, o in layers) - 2 * d * hidden
    return fwd + bwd


def eval_flops_per_pair(hidden: int, d: int = 784, latent: int = 2) -> int:
    """Matmul FLOPs of one (example, importance sample) pair of an evaluation: one
    decoder forward pass. The encoder runs once per example, which is not counted
    (with 1000 samples per example it is well under 1% of the work)."""
    return 2 * latent * hidden + 2 * hidden * d


def reference_model(hidden: int = 500) -> vk.VAE:
    k1, k2 = jax.random.split(jax.random.key(0))
    return vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(784, 4, hidden=(hidden,), key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, 784, hidden=(hidden,), key=k2)),
    )


def vaekit_eval(x: np.ndarray, n_samples: int, hidden: int = 500) -> list[tuple[str, int, float, float]]:
    """``(name, pairs, seconds, CPU seconds)`` of ``vk.log_likelihood``, ``vk.iwae_bound`` and the
    anomaly ``log_likelihood`` score on ``x`` with ``n_samples`` samples per example
    (best of two runs after a compiling one)."""
    model = reference_model(hidden)
    xj = jnp.asarray(x)
    key = jax.random.key(2)
    ib = min(len(x), max(1, 2**17 // n_samples))  # iwae_bound holds all pairs of its batch at once
    iwae = eqx.filter_jit(lambda m, xb, k: vk.iwae_bound(m, xb, k, k=n_samples))
    cases = [
        ("vk.log_likelihood", len(x), lambda: vk.log_likelihood(model, xj, key, n_samples=n_samples)),
        ("vk.iwae_bound", ib, lambda: iwae(model, xj[:ib], key)),
        (
            "vk.anomaly.log_likelihood",
            len(x),
            lambda: vk.anomaly.log_likelihood(model, xj, key, n_samples=n_samples),
        ),
    ]
    out = []
    for name, n, f in cases:
        jax.block_until_ready(f())
        best = best_cpu = float("inf")
        for _ in range(2):
            t0, c0 = time.perf_counter(), time.process_time()
            jax.block_until_ready(f())
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        out.append((name, n * n_samples, best, best_cpu))
        print(f"# done: {name}: {n} x {n_samples} in {best:.2f} s", flush=True)
    return out


def vaekit_epoch(x: np.ndarray, batch: int, hidden: int) -> dict:
    model = reference_model(hidden)
    cpu = [time.process_time()]
    _, h = vk.fit(
        model,
        x,
        key=jax.random.key(1),
        epochs=3,
        batch_size=batch,
        optimizer=optax.adam(1e-3),
        callback=lambda st: cpu.append(time.process_time()),
    )
    cpu_s = min(b - a for a, b in zip(cpu[1:-1], cpu[2:]))  # epochs 2 and 3
    return dict(seconds=min(h["time"][1:]), cpu_seconds=cpu_s, steps=len(x) // batch, loss=h["train_loss"][-1])


def plain_jax_epoch(x: np.ndarray, batch: int, hidden: int) -> dict:
    """The same model and epoch as hand-written JAX (no vaekit): the cost of vaekit's abstractions."""
    ks = jax.random.split(jax.random.key(0), 4)
    shapes = [(784, hidden), (hidden, 4), (2, hidden), (hidden, 784)]
    params = [(jax.random.normal(k, s) / np.sqrt(s[0]), jnp.zeros(s[1])) for k, s in zip(ks, shapes)]
    opt = optax.adam(1e-3)
    xd = jnp.asarray(x)

    def loss(p, xb, k):
        o = jnp.tanh(xb @ p[0][0] + p[0][1]) @ p[1][0] + p[1][1]
        mu, logvar = o[:, :2], o[:, 2:]
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k, mu.shape)
        logits = jnp.tanh(z @ p[2][0] + p[2][1]) @ p[3][0] + p[3][1]
        rec = jnp.sum(jax.nn.softplus(logits) - xb * logits, 1)
        return jnp.mean(rec + 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - 1 - logvar, 1))

    @jax.jit
    def epoch(p, o, key):
        perm = jax.random.permutation(key, xd.shape[0])

        def body(c, i):
            p, o = c
            xb = jnp.take(xd, jax.lax.dynamic_slice_in_dim(perm, i * batch, batch), axis=0)
            v, g = jax.value_and_grad(loss)(p, xb, jax.random.fold_in(key, i))
            u, o = opt.update(g, o, p)
            return (optax.apply_updates(p, u), o), v

        (p, o), losses = jax.lax.scan(body, (p, o), jnp.arange(xd.shape[0] // batch))
        return p, o, losses

    o = opt.init(params)
    times = []
    for e in range(3):
        t0 = time.perf_counter()
        params, o, losses = epoch(params, o, jax.random.key(e))
        losses.block_until_ready()
        times.append(time.perf_counter() - t0)
    return dict(seconds=min(times[1:]), steps=len(x) // batch, loss=float(losses.mean()))


def peer_epoch(python: str, which: str, n: int, batch: int, hidden: int) -> dict | str:
    r = subprocess.run(
        [python, os.path.join(HERE, "_torch_peers.py"), which, str(n), str(batch), str(hidden)],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=""),
    )
    if r.returncode != 0:
        return (r.stderr.strip().splitlines() or ["failed"])[-1][:120]
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=60000)
    ap.add_argument(
        "--sweep-examples",
        type=int,
        default=None,
        help="images for the configurations after the first (default: --examples)",
    )
    ap.add_argument("--torch-python", default=None, help="python with torch (and pythae); default: skip peers")
    ap.add_argument("--no-pythae", action="store_true")
    ap.add_argument("--plain-jax", action="store_true", help="also time the same epoch hand-written in JAX")
    ap.add_argument(
        "--configs",
        default="200x500,64x500,1024x500,200x200,200x1000",
        help="BATCHxHIDDEN list; the first is the reference",
    )
    ap.add_argument("--eval-examples", type=int, default=500, help="examples of the evaluation benchmark (0: skip it)")
    ap.add_argument("--eval-samples", type=int, default=1000, help="importance samples per example")
    ap.add_argument("--no-train", action="store_true", help="only the evaluation benchmark")
    args = ap.parse_args()

    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {machine()}; os.getloadavg {os.getloadavg()}")
    print(
        f"# jax {jax.__version__}, device {jax.devices()[0]} ({jax.devices()[0].device_kind}), "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, vaekit {vk.__version__}",
        flush=True,
    )
    peaks = [matmul_peak()]
    print(f"# float32 matmul peak (2048^3 in JAX, best of 10): {peaks[0]:.1f} GFLOP/s", flush=True)
    table = []
    evals = []
    if args.eval_examples:
        evals = vaekit_eval(mnist_binarized(args.eval_examples), args.eval_samples)
        peaks.append(matmul_peak())
    for i, cfg in enumerate([] if args.no_train else args.configs.split(",")):
        batch, hidden = (int(v) for v in cfg.split("x"))
        n = args.examples if i == 0 or not args.sweep_examples else args.sweep_examples
        x = mnist_binarized(n)
        fpe = flops_per_example(hidden)
        peaks.append(matmul_peak())  # re-measured next to each configuration: the machine may be shared
        runs = [("vaekit", vaekit_epoch(x, batch, hidden))]
        if args.plain_jax:
            runs.append(("hand-written JAX", plain_jax_epoch(x, batch, hidden)))
        if args.torch_python:
            runs.append(("pytorch loop", peer_epoch(args.torch_python, "torch", n, batch, hidden)))
            if not args.no_pythae:
                runs.append(("pythae", peer_epoch(args.torch_python, "pythae", n, batch, hidden)))
        base = runs[0][1]["steps"] * batch / runs[0][1]["seconds"]
        for name, r in runs:
            table.append((batch, hidden, n, name, r, fpe, base))
            took = r if isinstance(r, str) else f"{r['seconds']:.2f} s"
            print(f"# done: {batch}x{hidden} {name}: {took}", flush=True)
    peaks.append(matmul_peak())
    peak = max(peaks)  # the machine's limit: the best measurement of the run
    cpu_peak = max(CPU_PEAKS)

    def cpu_frac(flops: float, cpu_s: float | None) -> str:
        return "" if not cpu_s else f"{cpu_rate(flops, cpu_s) / cpu_peak:.0%}"

    print(
        "\n| batch | hidden | images | framework | s/epoch | samples/s | ratio vs vaekit | GFLOP/s | fraction of peak "
        "| fraction of peak, CPU time |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for batch, hidden, n, name, r, fpe, base in table:
        if isinstance(r, str):
            print(f"| {batch} | {hidden} | {n} | {name} | failed: {r} | | | | | |")
            continue
        sps = r["steps"] * batch / r["seconds"]
        gf = sps * fpe / 1e9
        print(
            f"| {batch} | {hidden} | {n} | {name} | {r['seconds']:.2f} | {sps:,.0f} | {base / sps:.2f}x | "
            f"{gf:.1f} | {gf / peak:.0%} | {cpu_frac(r['steps'] * batch * fpe, r.get('cpu_seconds'))} |"
        )
    if evals:
        fpp = eval_flops_per_pair(500)
        print(
            "\n| evaluation (reference model) | pairs | s | pairs/s | GFLOP/s | fraction of peak | fraction of peak, CPU time |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, pairs, sec, cpu_s in evals:
            gf = pairs / sec * fpp / 1e9
            print(
                f"| {name} | {pairs:,} | {sec:.2f} | {pairs / sec:,.0f} | {gf:.1f} | {gf / peak:.0%} | "
                f"{cpu_frac(pairs * fpp, cpu_s)} |"
            )
    print(
        f"\nmatmul peak over the run: {max(peaks):.1f} GFLOP/s (measurements: "
        f"{', '.join(f'{p:.0f}' for p in peaks)}); fraction of peak uses the highest. In CPU time: "
        f"{cpu_peak:.1f} GFLOP/s for all cores (measurements: {', '.join(f'{p:.0f}' for p in CPU_PEAKS)})."
    )
    print(
        "FLOPs per example (matmuls, fwd+bwd): "
        + ", ".join(f"hidden {h}: {flops_per_example(h) / 1e6:.2f} M" for h in (200, 500, 1000))
    )
    print("ratio vs vaekit = how many times faster vaekit is (vaekit samples/s / framework samples/s).")


if __name__ == "__main__":
    main()
