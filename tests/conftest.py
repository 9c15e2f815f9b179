import os
import shutil
import tempfile

# One JAX persistent compilation cache per test session, shared by the pytest-xdist
# workers and by the ``vaekit`` / ``python -c`` subprocesses the tests start (they
# inherit these variables). It must be set before jax is imported. A fresh folder per
# session: CI starts cold, no state leaks between sessions, and a cache hit returns the
# executable XLA would have compiled from the same program, so no test changes meaning.
if "VAEKIT_TEST_JAX_CACHE" not in os.environ:  # the controller (or a plain run) makes it
    os.environ["VAEKIT_TEST_JAX_CACHE"] = tempfile.mkdtemp(prefix="vaekit-test-jax-cache-")
    _OWN_CACHE = True
else:  # an xdist worker: the controller's folder
    _OWN_CACHE = False
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.environ["VAEKIT_TEST_JAX_CACHE"])
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# The tests' programs are small and run briefly, so compiling them dominates the suite's
# time. XLA's lowest backend optimization level and its older (non-MLIR) CPU fusion
# emitters compile them several times faster (the same operations, evaluated with less
# optimized machine code; no test asserts on speed). Subprocesses inherit XLA_FLAGS;
# those that set their own keep these (tests/cli/test_devices.py, ...).
for _flag in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false"):
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_flag}".strip()

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "allow")


def pytest_unconfigure(config):
    if _OWN_CACHE:
        shutil.rmtree(os.environ["VAEKIT_TEST_JAX_CACHE"], ignore_errors=True)


@pytest.fixture
def getkey():
    """Fresh keys from a fixed seed: ``k = getkey()``."""
    base = jax.random.key(1234)
    counter = iter(range(10**6))
    return lambda: jax.random.fold_in(base, next(counter))


@pytest.fixture(scope="session")
def digits_binary():
    from sklearn.datasets import load_digits

    return (load_digits().data / 16.0 > 0.5).astype(np.float32)


@pytest.fixture(scope="session")
def data_dir():
    d = os.environ.get("VAEKIT_DATA_DIR")
    if not d:
        here = os.path.dirname(os.path.abspath(__file__))
        cand = os.path.normpath(os.path.join(here, "..", "..", "shared", "data"))
        d = cand if os.path.isdir(cand) else None
    return d


def _wav_folder(root, n_files=3, seconds=0.5, rate=8000):
    """A folder of ``n_files`` mono 16-bit WAV tones (noisy sines) at ``rate`` Hz."""
    import wave

    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n_files):
        t = np.arange(int(seconds * rate)) / rate
        sig = 0.5 * np.sin(2 * np.pi * (220 + 110 * i) * t) + 0.02 * rng.normal(size=t.size)
        with wave.open(str(root / f"tone{i}.wav"), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes((np.clip(sig, -1, 1) * 32767).astype("<i2").tobytes())
    return root


@pytest.fixture(scope="session")
def make_wav_folder():
    """``make_wav_folder(path, n_files=3, seconds=0.5, rate=8000) -> path``."""
    return _wav_folder
