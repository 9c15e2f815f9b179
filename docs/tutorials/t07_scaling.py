# %% [markdown]
# # 7. Scaling out: several devices, data larger than memory, several hosts
#
# The same `vk.fit` call scales three ways:
#
# 1. **several devices** on one host: `devices="all"` splits every batch over the devices
#    (data parallelism; parameters replicated, gradients all-reduced by XLA);
# 2. **data larger than memory**: pass a `vk.Source` (e.g. a memory-mapped `.npy`) and
#    batches are read in chunks by a background thread;
# 3. **several hosts**: every process calls `vk.distributed.initialize(...)` first, then
#    the same `vk.fit(..., devices="all")`.
#
# This page runs all three on **CPU devices**: XLA can split one CPU into several "devices"
# (`--xla_force_host_platform_device_count`) and two processes on one machine talk through
# gloo like two hosts. That shows that the code works and gives the same results; it does not
# make anything faster (the forced devices share the same cores; see the scaling tables on
# the [Benchmarks](../benchmarks.md) page). On GPUs the code is the same.
#
# **Quick mode**: 2,000 binarized digits-sized rows (64 features), 3 epochs.
# **Full size** (`VAEKIT_DOCS_QUICK=0`): 60,000 rows, 10 epochs.

# %%
import os

# must be set before JAX starts: 4 CPU devices
os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"

import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
from sklearn.datasets import load_digits

import vaekit as vk

QUICK = os.environ.get("VAEKIT_DOCS_QUICK", "1") != "0"
N, EPOCHS = (2000, 3) if QUICK else (60000, 10)
print("devices:", jax.devices())

digits = (load_digits().data / 16 > 0.5).astype(np.float32)
x = digits[np.random.default_rng(0).integers(0, len(digits), N)]  # N rows, resampled


def new_model():
    k1, k2 = jax.random.split(jax.random.key(0))
    return vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(64, 4, hidden=(128,), activation="tanh", key=k1)),
        decoder=vk.Bernoulli(vk.MLP(2, 64, hidden=(128,), activation="tanh", key=k2)),
    )


def max_diff(a, b):
    return max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    )


# %% [markdown]
# ## Several devices
# `batch_size` must be divisible by the number of devices. With the same key, the result
# equals single-device training up to float rounding (the gradient is summed in another
# order), and the returned model is an ordinary single-device model.

# %%
t = time.perf_counter()
one, h1 = vk.fit(new_model(), x, key=1, epochs=EPOCHS, batch_size=100)
t1 = time.perf_counter() - t
t = time.perf_counter()
four, h4 = vk.fit(new_model(), x, key=1, epochs=EPOCHS, batch_size=100, devices="all")
t4 = time.perf_counter() - t
print(f"1 device : loss {h1['train_loss'][-1]:.4f} ({t1:.1f} s with compilation)")
print(f"4 devices: loss {h4['train_loss'][-1]:.4f} ({t4:.1f} s with compilation)")
print(f"largest parameter difference: {max_diff(one, four):.2e}")
try:
    vk.fit(new_model(), x, key=1, epochs=1, batch_size=102, devices="all")
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# ## Data larger than memory
# Anything with `example_shape`, `__len__` and `read(indices)` is a `vk.Source`;
# `vk.ArraySource(np.load(path, mmap_mode="r"))` reads a `.npy` file from disk on demand.
# Each epoch's permutation is drawn on the host from the epoch key, so a streamed run uses the
# same batches as the in-memory run with the same key. `max_chunk_bytes` is set small here to
# force several chunks.

# %%
work = Path(tempfile.mkdtemp())
np.save(work / "x.npy", x)
source = vk.ArraySource(np.load(work / "x.npy", mmap_mode="r"))
print("source:", len(source), "rows of", source.example_shape)
streamed, hs = vk.fit(
    new_model(),
    source,
    key=1,
    epochs=EPOCHS,
    batch_size=100,
    streaming=vk.training.Streaming(max_chunk_bytes=64 * 100 * 4 * 5, prefetch=2),
)
print(f"streamed loss {hs['train_loss'][-1]:.4f}; largest difference to in-memory: {max_diff(one, streamed):.2e}")
scores = vk.map_batches(lambda xb: -vk.elbo(one, xb, jax.random.key(0)), source, 500)  # constant memory
print("scores of every row, 500 at a time:", scores.shape)

# %% [markdown]
# ## Several hosts
# Each process runs the same script; `vk.distributed.initialize` connects it to process 0's
# address (on SLURM or Open MPI the arguments can be left out). Every process calls `vk.fit`,
# reads only the rows of each batch that its own devices hold, and writes files only if it
# is the main process. Here two processes on this machine stand in for two hosts:

# %%
script = work / "train_two_hosts.py"
script.write_text(
    textwrap.dedent(f"""
    import sys
    import jax, numpy as np
    import vaekit as vk

    rank = int(sys.argv[1])
    vk.distributed.initialize("127.0.0.1:{12000 + os.getpid() % 1000}", num_processes=2, process_id=rank)
    x = np.load("{work / "x.npy"}")
    k1, k2 = jax.random.split(jax.random.key(0))
    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(64, 4, hidden=(128,), activation="tanh", key=k1)),
        decoder=vk.Bernoulli(vk.MLP(2, 64, hidden=(128,), activation="tanh", key=k2)),
    )
    model, h = vk.fit(model, vk.ArraySource(x), key=1, epochs={EPOCHS}, batch_size=100, devices="all")
    if vk.distributed.is_main_process():
        vk.save("{work / "two_hosts"}", model)
        print(f"process {{rank}} of {{vk.distributed.process_count()}}: {{len(jax.devices())}} devices in all, loss {{h['train_loss'][-1]:.4f}}")
    vk.distributed.barrier("saved")
""")
)
env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
procs = [
    subprocess.Popen(
        [sys.executable, str(script), str(r)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for r in range(2)
]
outs = [p.communicate(timeout=600) for p in procs]
for p, (out, err) in zip(procs, outs):
    assert p.returncode == 0, err[-2000:]
    print(out.strip())
two_hosts = vk.load(work / "two_hosts", like=new_model()).model  # a hand-built model: load into its structure
print(f"largest difference to the single-device model: {max_diff(one, two_hosts):.2e}")

# %% [markdown]
# From the command line the same is `vaekit train ... --distributed HOST:PORT
# --num-processes N --process-id I` (or `--distributed auto` under SLURM / Open MPI);
# only process 0 writes the run folder. See the [scaling guide](../guide/scaling.md) for a
# SLURM script, failure handling and what to expect.
#
# **Full size** (`VAEKIT_DOCS_QUICK=0`, 60,000 rows, 10 epochs):
# measured on the shared 2-core CPU (375 s wall for the whole script): final training loss
# 19.3609 nats on 1 device, on 4 forced CPU devices, streamed from a memory-mapped file, and
# with two processes; largest parameter difference to the single-device model 3.1e-6 (4
# devices), 6.6e-6 (streamed) and 3.8e-6 (two processes). With compilation, 1 device took 20.0 s
# and 4 forced devices 42.7 s: on one CPU the forced devices only add partitioning and
# all-reduce work.
