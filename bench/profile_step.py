"""Where the time of one training step of the reference model goes (CPU ablation).

Times 300 steps (one epoch of 60,000 images at batch 200) in one compiled ``lax.scan``
for a ladder of programs that add one part of the step at a time:

1. ``matmuls``: the step's 11 matmuls alone (4 forward, 4 weight-gradient, 3
   input-gradient), at the model's shapes, on random data;
2. ``fwd+bwd``: the hand-written loss and its gradient, plain SGD update;
3. ``+adam``: the same with ``optax.adam``;
4. ``shuffled``: batches gathered from a permutation (the hand-written JAX row of
   throughput.py, and what ``vk.fit`` does);
5. ``vaekit``: ``vk.fit``'s epoch with ``optax.adam``;
6. ``vaekit default``: ``vk.fit`` with ``vk.default_optimizer`` (clipping, skip non-finite).

The differences between rows are the cost of each part. With ``--trace DIR`` it also
writes a ``jax.profiler`` trace of one vaekit epoch (open it in Perfetto / TensorBoard)
and prints the XLA operations that took the most time in it (per step, summed over the
runtime's threads; match the names with an ``XLA_FLAGS=--xla_dump_to=DIR`` dump).

    python bench/profile_step.py [--hidden 500] [--batch 200] [--trace /tmp/trace] [--top 15]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from _data import machine  # noqa: E402
from throughput import flops_per_example, matmul_peak  # noqa: E402

import vaekit as vk  # noqa: E402


def best_of(f, *args, repeats: int = 3) -> float:
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def top_ops(trace_dir: str, steps: int, n: int) -> None:
    """Print the ``n`` XLA operations of a trace with the most time (ms per step)."""
    import collections
    import glob

    files = sorted(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True))
    if not files:
        print(f"# no .xplane.pb under {trace_dir}")
        return
    data = jax.profiler.ProfileData.from_file(files[-1])
    per_op: dict[str, float] = collections.defaultdict(float)
    for plane in data.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_XLA"):  # XLA's runtime threads
                continue
            for ev in line.events:
                if not ev.name.startswith(("ThunkExecutor", "SlinkyThreadPool")):
                    per_op[ev.name] += ev.duration_ns
    total = sum(per_op.values())
    print(f"\noperations of one vaekit epoch by time (all runtime threads: {total / 1e6 / steps:.2f} ms per step)\n")
    print("| operation | ms/step | share |")
    print("|---|---|---|")
    for name, ns in sorted(per_op.items(), key=lambda kv: -kv[1])[:n]:
        print(f"| {name} | {ns / 1e6 / steps:.3f} | {ns / total:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--batch", type=int, default=200)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--trace", default=None, help="write a jax.profiler trace of one vaekit epoch here")
    ap.add_argument("--top", type=int, default=15, help="with --trace: how many operations to list")
    args = ap.parse_args()
    B, H, D, L, S = args.batch, args.hidden, 784, 2, args.steps
    print(f"# jax {jax.__version__}, {jax.devices()[0]}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; {machine()}")
    ks = jax.random.split(jax.random.key(0), 8)
    x = (jax.random.uniform(ks[0], (S * B, D)) < 0.13).astype(jnp.float32)
    shapes = [(D, H), (H, 2 * L), (L, H), (H, D)]
    params = [(jax.random.normal(k, s) / np.sqrt(s[0]), jnp.zeros(s[1])) for k, s in zip(ks[1:], shapes)]
    rows = []

    @jax.jit
    def matmuls(x, p):
        def body(p, i):
            xb = jax.lax.dynamic_slice_in_dim(x, i * B, B)
            (w1, _), (w2, _), (w3, _), (w4, _) = p
            h1 = xb @ w1
            o = h1 @ w2
            h2 = o[:, :L] @ w3
            lg = h2 @ w4
            g4, dh2 = h2.T @ lg, lg @ w4.T
            g3, do = o[:, :L].T @ dh2, dh2 @ w3.T
            g2, dh1 = h1.T @ jnp.pad(do, ((0, 0), (0, L))), jnp.pad(do, ((0, 0), (0, L))) @ w2.T
            g1 = xb.T @ dh1
            return [(w - 1e-9 * g, b) for (w, b), g in zip(p, (g1, g2, g3, g4))], None

        return jax.lax.scan(body, p, jnp.arange(S))[0]

    def loss(p, xb, k):
        o = jnp.tanh(xb @ p[0][0] + p[0][1]) @ p[1][0] + p[1][1]
        mu, logvar = o[:, :L], o[:, L:]
        z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(k, mu.shape)
        logits = jnp.tanh(z @ p[2][0] + p[2][1]) @ p[3][0] + p[3][1]
        rec = jnp.sum(jax.nn.softplus(logits) - xb * logits, 1)
        return jnp.mean(rec + 0.5 * jnp.sum(mu**2 + jnp.exp(logvar) - 1 - logvar, 1))

    def hand_epoch(opt, shuffle=False):
        @jax.jit
        def epoch(x, p):
            o = opt.init(p)
            perm = jax.random.permutation(jax.random.key(1), x.shape[0])

            def body(c, i):
                p, o = c
                if shuffle:
                    xb = jnp.take(x, jax.lax.dynamic_slice_in_dim(perm, i * B, B), axis=0)
                else:
                    xb = jax.lax.dynamic_slice_in_dim(x, i * B, B)
                v, g = jax.value_and_grad(loss)(p, xb, jax.random.fold_in(jax.random.key(0), i))
                u, o = opt.update(g, o, p)
                return (optax.apply_updates(p, u), o), v

            return jax.lax.scan(body, (p, o), jnp.arange(S))

        return epoch

    rows.append(("matmuls only", best_of(matmuls, x, params)))
    rows.append(("fwd+bwd, SGD", best_of(hand_epoch(optax.sgd(1e-3)), x, params)))
    rows.append(("fwd+bwd, Adam", best_of(hand_epoch(optax.adam(1e-3)), x, params)))
    rows.append(("fwd+bwd, Adam, shuffled batches", best_of(hand_epoch(optax.adam(1e-3), True), x, params)))

    k1, k2 = jax.random.split(jax.random.key(0))
    model = vk.VAE(
        prior=vk.StandardNormal(L),
        encoder=vk.Gaussian(vk.MLP(D, 2 * L, hidden=(H,), key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(L, D, hidden=(H,), key=k2)),
    )
    xn = np.asarray(x)
    for name, opt in (
        ("vaekit fit, Adam", optax.adam(1e-3)),
        ("vaekit fit, default_optimizer", vk.default_optimizer(1e-3)),
    ):
        _, h = vk.fit(model, xn, key=jax.random.key(1), epochs=4, batch_size=B, optimizer=opt)
        rows.append((name, min(h["time"][1:])))
    if args.trace:
        vk.fit(model, xn, key=jax.random.key(1), epochs=1, batch_size=B, optimizer=optax.adam(1e-3))
        with jax.profiler.trace(args.trace):
            vk.fit(model, xn, key=jax.random.key(1), epochs=1, batch_size=B, optimizer=optax.adam(1e-3))
        print(f"# trace written to {args.trace}")
        top_ops(args.trace, S, args.top)

    peak = max(matmul_peak() for _ in range(3))
    flops = flops_per_example(H) * B * S
    print(
        f"\nbatch {B}, hidden {H}, {S} steps; matmul FLOPs per step {flops / S / 1e6:.0f} M; "
        f"2048^3 matmul peak {peak:.0f} GFLOP/s\n"
    )
    print("| program | ms/step | GFLOP/s (model matmuls) | fraction of peak | added by this part (ms/step) |")
    print("|---|---|---|---|---|")
    prev = None
    for name, t in rows:
        ms = 1e3 * t / S
        extra = "" if prev is None or name.startswith("vaekit fit, default") else f"{ms - prev:+.2f}"
        if name.startswith("vaekit fit, default"):
            extra = f"{ms - 1e3 * rows[4][1] / S:+.2f} (vs vaekit fit, Adam)"
        print(f"| {name} | {ms:.2f} | {flops / t / 1e9:.0f} | {flops / t / 1e9 / peak:.0%} | {extra} |")
        if not name.startswith("vaekit fit, default"):
            prev = ms


if __name__ == "__main__":
    main()
