"""Data-parallel training throughput vs device count (``vk.fit(..., devices=N)``).

Each device count runs in its own process, with
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` on CPU (or the real devices of a
GPU machine with ``--platform gpu``). The reference model (784-500-2 / 2-500-784
Bernoulli, Adam) trains on binarized MNIST in memory and streamed from an
``ArraySource``; the time of the second epoch is reported.

Forced CPU devices share the same cores, so on CPU this measures the overhead of the
sharded program (partitioning, all-reduce), not a speed-up; on several GPUs it measures
scaling.

    python bench/scaling.py --devices 1,2,4 --examples 12000
    python bench/scaling.py --processes 2 --devices 1 --examples 12000   # two processes on this host

``--processes N`` starts N processes on 127.0.0.1 (``vk.distributed.initialize``, gloo
collectives on CPU), each with ``--devices`` local devices, training with
``devices="all"``; process 0's timings are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import jax, numpy as np
sys.path.insert(0, sys.argv[1])
import vaekit as vk
from _data import mnist_binarized
n_dev, n, bs, mode, hidden = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
rank, nproc, port = int(sys.argv[7]), int(sys.argv[8]), sys.argv[9]
if nproc > 1:
    vk.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=rank)
x = mnist_binarized(n)
k1, k2 = jax.random.split(jax.random.key(0))
model = vk.VAE(prior=vk.StandardNormal(2),
               encoder=vk.Gaussian(vk.MLP(784, 4, hidden=(hidden,), key=k1), variance="diag"),
               decoder=vk.Bernoulli(vk.MLP(2, 784, hidden=(hidden,), key=k2)))
data = vk.ArraySource(x) if mode == "stream" else x
_, h = vk.fit(model, data, key=jax.random.key(1), epochs=2, batch_size=bs,
              optimizer=__import__("optax").adam(1e-3),
              devices="all" if nproc > 1 else None if n_dev == 0 else n_dev)
steps = n // bs
print(json.dumps(dict(devices=len(jax.devices()) if nproc > 1 else n_dev, processes=nproc, mode=mode, platform=jax.devices()[0].platform,
                      compile_and_epoch_s=h["time"][0], epoch_s=h["time"][1],
                      samples_per_s=steps * bs / h["time"][1])))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", default="1,2,4", help="device counts; 0 = devices=None (no mesh)")
    ap.add_argument("--examples", type=int, default=12000)
    ap.add_argument("--batch-size", type=int, default=200)
    ap.add_argument("--hidden", type=int, default=500)
    ap.add_argument("--modes", default="memory,stream")
    ap.add_argument("--platform", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument(
        "--processes", type=int, default=1, help="processes on this host (127.0.0.1), each with --devices devices"
    )
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from _data import machine

    print(
        f"# {machine()}, platform {args.platform}, {args.examples} examples, batch {args.batch_size}, "
        f"hidden {args.hidden}, {args.processes} process(es), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        flush=True,
    )
    print(
        "| processes | devices (all) | data | platform | XLA_FLAGS | epoch s | samples/s | first epoch (with compile) s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for n_dev in (int(d) for d in args.devices.split(",")):
        for mode in args.modes.split(","):
            env = dict(os.environ)
            if args.platform == "cpu":
                env["JAX_PLATFORMS"] = "cpu"
                env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={max(1, n_dev)}"
            port = str(_free_port())
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        here,
                        str(n_dev),
                        str(args.examples),
                        str(args.batch_size),
                        mode,
                        str(args.hidden),
                        str(rank),
                        str(args.processes),
                        port,
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for rank in range(args.processes)
            ]
            outs = [p.communicate() for p in procs]
            stdout = outs[0][0]
            if any(p.returncode != 0 for p in procs):
                err = next(e for p, (_, e) in zip(procs, outs) if p.returncode != 0)
                print(
                    f"| {args.processes} | {n_dev} | {mode} | failed: {err.strip().splitlines()[-1]} |||||", flush=True
                )
                continue
            res = json.loads(stdout.strip().splitlines()[-1])
            print(
                f"| {args.processes} | {n_dev} ({res['devices']}) | {mode} | {res['platform']} | "
                f"{env.get('XLA_FLAGS', '')} | {res['epoch_s']:.2f} | "
                f"{res['samples_per_s']:.0f} | {res['compile_and_epoch_s']:.2f} |",
                flush=True,
            )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
