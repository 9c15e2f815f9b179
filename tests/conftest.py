import os

import jax
import numpy as np
import pytest

jax.config.update("jax_numpy_rank_promotion", "allow")


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
