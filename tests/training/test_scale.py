"""Scale-out: data-parallel training over devices and processes, streamed sources, map_batches."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.training import map_batches
from vaekit.training._prefetch import Prefetcher

SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "src")

# A small model and data shared by the subprocess scripts and the in-process tests.
SETUP = """
import numpy as np, jax, jax.numpy as jnp, equinox as eqx
import vaekit as vk
from sklearn.datasets import load_digits
X = (load_digits().data[:400] / 16.0 > 0.5).astype(np.float32)

def make_model(d=64):
    k1, k2 = jax.random.split(jax.random.key(0))
    return vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(d, 4, hidden=(16,), key=k1), variance="diag"),
        decoder=vk.Bernoulli(vk.MLP(2, d, hidden=(16,), key=k2)),
    )

def leaves(m):
    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(m, eqx.is_array))]
"""
_shared: dict = {}
exec(SETUP, _shared)  # the same X, make_model and leaves here as in the subprocess scripts
X, make_model, leaves = _shared["X"], _shared["make_model"], _shared["leaves"]


def _run(script: str, *args: str, devices: int = 1, timeout: int = 240) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=SRC, JAX_PLATFORMS="cpu")
    # keep the session's flags (tests/conftest.py) and add the device count
    env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    return subprocess.run(
        [sys.executable, "-c", SETUP + textwrap.dedent(script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _close(a, b, atol=2e-5):
    la, lb = leaves(a) if not isinstance(a, list) else a, leaves(b) if not isinstance(b, list) else b
    assert len(la) == len(lb)
    for u, v in zip(la, lb):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=atol)


FOUR_DEVICES = """
import sys, json
from vaekit.training import Trainer, make_loss, default_optimizer
from vaekit.training._streaming import Placement
assert len(jax.devices()) == 4
m = make_model()
kw = dict(key=jax.random.key(1), epochs=3, batch_size=40)
one, h1 = vk.fit(m, X, **kw, x_val=X[:50])
four, h4 = vk.fit(m, X, **kw, x_val=X[:50], devices=jax.devices())
four_s, h4s = vk.fit(m, vk.ArraySource(X), **kw, devices="all", max_chunk_bytes=3 * 40 * 64 * 4)
# the compiled step really works on a quarter of each batch and all-reduces the gradients
p = Placement(jax.devices())
t = Trainer(default_optimizer(), make_loss(), 40, None, p.batch)
args = p.replicate((m, t.init(m), jnp.asarray(X), jax.random.key(1), jnp.zeros((), jnp.int32)))
hlo = Trainer.train_epoch.lower(t, *args).compile().compiled.as_text()
try:
    vk.fit(m, X, key=jax.random.key(1), epochs=1, batch_size=42, devices=4)
    err = ""
except ValueError as e:
    err = str(e)
np.savez(sys.argv[1], *(leaves(one) + leaves(four) + leaves(four_s)))
json.dump(dict(
    hlo_quarter="f32[10,64]" in hlo, hlo_full="f32[40,64]" in hlo, allreduce="all-reduce" in hlo,
    out_devices=[len(a.devices()) for a in jax.tree.leaves(eqx.filter(four, eqx.is_array))],
    h1=h1["train_loss"], h4=h4["train_loss"], v1=h1["val_loss"], v4=h4["val_loss"], err=err,
), open(sys.argv[1] + ".json", "w"))
"""


def test_four_devices_match_one_device(tmp_path):
    out = str(tmp_path / "p.npz")
    r = _run(FOUR_DEVICES, out, devices=4)
    assert r.returncode == 0, r.stderr[-3000:]
    info = _json(out + ".json")
    # each device computes on 10 of the 40 examples, and gradients are summed across devices
    assert info["hlo_quarter"] and not info["hlo_full"] and info["allreduce"]
    # the returned model is an ordinary single-device model
    assert set(info["out_devices"]) == {1}
    np.testing.assert_allclose(info["h4"], info["h1"], rtol=1e-5)
    np.testing.assert_allclose(info["v4"], info["v1"], rtol=1e-5)
    assert "not divisible by the 4 devices" in info["err"] and "40 or 44" in info["err"]
    with np.load(out) as arrs:
        flat = [arrs[f"arr_{i}"] for i in range(len(arrs.files))]
    n = len(flat) // 3
    one, four, four_s = flat[:n], flat[n : 2 * n], flat[2 * n :]
    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(one, leaves(make_model())))  # it trained
    _close(four, one)
    _close(four_s, one)


WORKER = """
import sys, json
rank, nproc, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
vk.distributed.initialize(f"127.0.0.1:{port}", num_processes=nproc, process_id=rank)

class Spy(vk.ArraySource):
    rows = 0
    def read(self, idx):
        Spy.rows += len(idx)
        return super().read(idx)

m = make_model()
kw = dict(key=jax.random.key(1), epochs=2, batch_size=40, devices="all")
a, _ = vk.fit(m, Spy(X), **kw, max_chunk_bytes=4 * 40 * 64 * 4)
b, h = vk.fit(m, X, **kw, x_val=X[:50])
np.savez(out, *(leaves(a) + leaves(b)))
json.dump(dict(rows=Spy.rows, devices=len(jax.devices()), main=vk.distributed.is_main_process(),
               val=h["val_loss"]), open(out + ".json", "w"))
vk.distributed.barrier("written")
"""


def _json(path):
    with open(path) as f:
        return json.load(f)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_together_like_one(tmp_path):
    port = str(_free_port())
    outs = [str(tmp_path / f"p{i}.npz") for i in range(2)]
    res = [None, None]

    def go(i):
        res[i] = _run(WORKER, str(i), "2", port, outs[i])

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in res:
        assert r.returncode == 0, r.stderr[-3000:]
    infos = [_json(o + ".json") for o in outs]
    assert [i["devices"] for i in infos] == [2, 2]
    assert [i["main"] for i in infos] == [True, False]
    # each process read its half of the 2 x 400 training rows (plus 160 rows of input checks)
    assert [i["rows"] for i in infos] == [160 + 400, 160 + 400]
    m = make_model()
    kw = dict(key=jax.random.key(1), epochs=2, batch_size=40)
    ref, href = vk.fit(m, X, **kw, x_val=X[:50])
    for o, info in zip(outs, infos):
        with np.load(o) as arrs:
            got = [arrs[f"arr_{i}"] for i in range(len(arrs.files))]
        n = len(got) // 2
        _close(got[:n], ref)
        _close(got[n:], ref)
        np.testing.assert_allclose(info["val"], href["val_loss"], rtol=1e-5)


@pytest.fixture(scope="module")
def reference():
    """In-memory training that the streamed runs must reproduce."""
    return vk.fit(make_model(), X, key=jax.random.key(1), epochs=2, batch_size=40, x_val=X[:90])


class CountingSource(vk.ArraySource):
    """Records the largest read, in bytes."""

    def __init__(self, array):
        super().__init__(array)
        self.max_bytes = 0
        self.calls = 0

    def read(self, indices):
        out = super().read(indices)
        self.max_bytes = max(self.max_bytes, out.nbytes)
        self.calls += 1
        return out


class PNGFolder:
    """A tiny image-folder Source: one grayscale PNG per example, read on demand."""

    def __init__(self, folder):
        self.paths = sorted(folder.glob("*.png"))
        self.max_bytes = 0

    @property
    def example_shape(self):
        return (64,)

    def __len__(self):
        return len(self.paths)

    def read(self, indices):
        from PIL import Image

        out = np.stack([np.asarray(Image.open(self.paths[i]), np.float32).reshape(64) for i in indices]) / 255.0
        self.max_bytes = max(self.max_bytes, out.nbytes)
        return out


def test_streaming_image_folder_beyond_memory_cap_matches_in_memory(tmp_path, reference):
    from PIL import Image

    for i, row in enumerate(X):
        Image.fromarray((row.reshape(8, 8) * 255).astype(np.uint8)).save(tmp_path / f"{i:04d}.png")
    folder = PNGFolder(tmp_path)
    assert isinstance(folder, vk.Source) and len(folder) == len(X)
    cap = 3 * 40 * 64 * 4  # three batches: a tenth of the data set
    assert X.nbytes > 3 * cap
    ref, href = reference
    got, hgot = vk.fit(
        make_model(),
        folder,
        key=jax.random.key(1),
        epochs=2,
        batch_size=40,
        x_val=vk.ArraySource(X[:90]),
        max_chunk_bytes=cap,
    )
    assert folder.max_bytes <= cap
    _close(got, ref, atol=1e-6)
    np.testing.assert_allclose(hgot["train_loss"], href["train_loss"], rtol=1e-6)
    np.testing.assert_allclose(hgot["val_loss"], href["val_loss"], rtol=1e-6)


def test_memmap_source_equals_in_memory_and_resumes(tmp_path, reference):
    np.save(tmp_path / "x.npy", X)
    src = CountingSource(np.load(tmp_path / "x.npy", mmap_mode="r"))
    m = make_model()
    kw = dict(key=jax.random.key(1), epochs=2, batch_size=40, max_chunk_bytes=4 * 40 * 64 * 4)
    ref, href = reference
    got, hgot = vk.fit(m, src, **kw)
    assert src.max_bytes <= 4 * 40 * 64 * 4
    _close(got, ref, atol=1e-6)
    np.testing.assert_allclose(hgot["train_loss"], href["train_loss"], rtol=1e-6)
    # stop after epoch 1 (the prefetch thread must not hang), then resume bit-identically
    states = []
    vk.fit(m, src, **kw, callback=lambda s: states.append(s) or True)
    assert len(states) == 1 and threading.active_count() < 20
    res, _ = vk.fit(m, src, **kw, resume=states[0])
    assert all(np.array_equal(a, b) for a, b in zip(leaves(res), leaves(got)))


def test_one_device_mesh_matches_default(reference):
    b, hb = vk.fit(make_model(), X, key=jax.random.key(1), epochs=2, batch_size=40, x_val=X[:90], devices=1)
    _close(b, reference[0])
    np.testing.assert_allclose(hb["val_loss"], reference[1]["val_loss"], rtol=1e-5)


def test_bad_sources_and_devices_are_clear():
    m = make_model()
    kw = dict(key=jax.random.key(1), epochs=1, batch_size=40)
    with pytest.raises(ValueError, match="examples of shape \\(32,\\)"):
        vk.fit(m, vk.ArraySource(X[:, :32]), **kw)
    bad = X.copy()
    bad[300, 5] = np.nan
    with pytest.raises(ValueError, match="NaN/inf values in 1 example.*\\[300\\]"):
        vk.fit(m, vk.ArraySource(bad), **kw)
    with pytest.raises(ValueError, match="outside the support"):
        vk.fit(m, vk.ArraySource(X * 0.5), **kw)
    assert vk.distributed.resolve_devices("1") == jax.devices()[:1]  # CLI style count
    assert vk.distributed.resolve_devices("all") == jax.devices()
    with pytest.raises(ValueError, match="1 device"):
        vk.fit(m, X, **kw, devices=8)
    with pytest.raises(ValueError, match="'all'"):
        vk.fit(m, X, **kw, devices="gpu")
    with pytest.raises(TypeError, match="jax devices"):
        vk.fit(m, X, **kw, devices=["cpu"])
    with pytest.raises(ValueError, match="max_chunk_bytes"):
        vk.fit(m, vk.ArraySource(X), **kw, max_chunk_bytes=0)


def test_map_batches_constant_memory_and_equal_to_direct():
    m = make_model()
    src = CountingSource(X[:203])

    def fn(xb):  # deterministic per example: decoder log-likelihood at the posterior mean
        z = m.posterior(xb).mean
        return {"ll": m.likelihood(z).log_prob(xb), "z": z}

    got = map_batches(fn, src, 50, max_chunk_bytes=2 * 50 * 64 * 4)
    assert got["ll"].shape == (203,) and got["z"].shape == (203, 2)
    assert src.max_bytes <= 2 * 50 * 64 * 4 and src.calls == 3
    direct = fn(jnp.asarray(X[:203]))
    np.testing.assert_allclose(got["ll"], np.asarray(direct["ll"]), rtol=1e-5)
    np.testing.assert_allclose(got["z"], np.asarray(direct["z"]), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        map_batches(fn, X, 0)


def test_prefetcher_order_errors_and_early_close():
    assert list(Prefetcher(lambda i: i * i, range(7), depth=2)) == [i * i for i in range(7)]

    def boom(i):
        if i == 3:
            raise OSError("disk gone")
        return i

    with pytest.raises(OSError, match="disk gone"):
        list(Prefetcher(boom, range(10)))
    p = Prefetcher(lambda i: i, range(10**9), depth=1)
    assert next(p) == 0
    p.close()
    assert not p._thread.is_alive()


def test_equal_settings_reuse_the_compiled_epoch():
    from vaekit.training import make_loss

    assert vk.default_optimizer(1e-3) is vk.default_optimizer(1e-3)
    assert vk.default_optimizer(1e-3) is not vk.default_optimizer(2e-3)
    assert make_loss(beta=0.5) is make_loss(beta=0.5) and make_loss() is not make_loss(beta=0.5)
    sched = lambda s: 1.0  # noqa: E731
    assert make_loss(beta=sched) is make_loss(beta=sched)
    # a second identical fit finds the compiled epoch in the cache (no re-trace)
    import logging

    m = make_model()
    vk.fit(m, X[:80], key=jax.random.key(0), epochs=1, batch_size=40)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("jax").addHandler(handler)
    try:
        with jax.log_compiles(True):
            vk.fit(m, X[:80], key=jax.random.key(0), epochs=1, batch_size=40)
            cached = [r.getMessage() for r in records]
            vk.fit(m, X[:80], key=jax.random.key(0), epochs=1, batch_size=20)  # new shape: compiles
            fresh = [r.getMessage() for r in records[len(cached) :]]
    finally:
        logging.getLogger("jax").removeHandler(handler)
    assert not any("train_epoch" in r for r in cached)
    assert any("train_epoch" in r for r in fresh)
