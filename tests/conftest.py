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
