"""Input validation with errors that name the problem and the fix."""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._validate import positive_int
from ._model import AbstractVAE


def as_data(x: Any, name: str = "x") -> np.ndarray:
    """``x`` as a finite, non-empty numeric numpy array with a leading batch axis."""
    try:
        a = np.asarray(x)
    except Exception as e:  # ragged lists and the like
        raise TypeError(f"{name} could not be read as a numeric array: {e}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be numeric (bool, int or float), got dtype {a.dtype}. Convert "
            "or drop non-numeric columns first."
        )
    if a.ndim == 0 or a.shape[0] == 0 or a.size == 0:
        raise ValueError(f"{name} is empty (shape {a.shape}); pass at least one example.")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a)
        if bad.any():
            rows = np.unique(np.nonzero(bad.reshape(a.shape[0], -1))[0])
            raise ValueError(
                f"{name} contains {int(bad.sum())} NaN/inf value(s) in {len(rows)} row(s) "
                f"(first rows: {rows[:5].tolist()}). Remove or impute them before training."
            )
        if a.dtype.itemsize > 4:  # vaekit computes in float32: say so instead of inf later
            big = np.abs(a) > np.finfo(np.float32).max
            if big.any():
                rows = np.unique(np.nonzero(big.reshape(a.shape[0], -1))[0])
                raise ValueError(
                    f"{name} has {int(big.sum())} value(s) too large for float32, the precision "
                    f"vaekit computes in (|x| > 3.4e38), e.g. {float(a[big][0])!r} (first rows: "
                    f"{rows[:5].tolist()}). Rescale the data (e.g. standardize it) or remove them."
                )
    return a


def check_data(model: AbstractVAE, x: Any, name: str = "x", support: bool = True) -> jax.Array:
    """Validate ``x [batch, *data]`` against ``model`` and return it as a float32 array.

    ``support=False`` skips the decoder-support check (data transformed per batch,
    e.g. dynamically binarized, need only be in the support after the transform)."""
    a = as_data(x, name)
    data_shape = model.data_shape
    if a.shape[1:] != data_shape:
        raise ValueError(
            f"{name} has examples of shape {a.shape[1:]} but the model's decoder produces "
            f"examples of shape {data_shape}. Reshape the data to [batch, "
            f"{', '.join(map(str, data_shape))}] or build the model for this data."
        )
    try:
        eqx.filter_eval_shape(lambda m, v: jnp.zeros(m.posterior(v).event_shape), model, jnp.zeros((1, *a.shape[1:])))
    except Exception as e:
        raise ValueError(f"The encoder cannot take {name} with examples of shape {a.shape[1:]}: {e}") from None
    ok = np.asarray(model.decoder.support_check(jnp.asarray(a, jnp.float32))) if support else np.ones(1, bool)
    if not ok.all():
        raise ValueError(
            f"{name} has values outside the support of the decoder "
            f"{type(model.decoder).__name__} ({support_hint(model.decoder)}): "
            f"{int((~ok).sum())} bad value(s), e.g. {a.reshape(-1)[np.argmin(ok.reshape(-1))]!r}. "
            f"{support_fix(model.decoder)}"
        )
    return jnp.asarray(a, dtype=jnp.float32)


def support_hint(dec) -> str:
    """What the values of a decoder family must be, e.g. \"values must be 0 or 1\"."""
    return {
        "Bernoulli": "values must be 0 or 1",
        "Beta": "values must lie strictly between 0 and 1",
        "ContinuousBernoulli": "values must lie in [0, 1]",
        "Dirichlet": "each example must be non-negative and sum to 1",
        "Categorical": "values must be class indices (or one-hot rows)",
    }.get(type(dec).__name__, "see the family's support")


def support_fix(dec) -> str:
    """How to put data into a decoder family's support."""
    return {
        "Bernoulli": "Binarize the data (e.g. x = (x > 0.5)) or use a Gaussian/Beta decoder.",
        "Beta": "Rescale into (0, 1), e.g. clip to [1e-3, 1 - 1e-3].",
        "ContinuousBernoulli": "Rescale into [0, 1] (e.g. divide 0-255 pixels by 255) or use a Gaussian decoder.",
    }.get(type(dec).__name__, "Transform the data or choose another decoder family.")


def check_batch_size(batch_size: Any, n: int, name: str = "x_train") -> int:
    """``batch_size`` as an int when it is a positive int of at most ``n`` (the rows of ``name``)."""
    batch_size = positive_int(batch_size, "batch_size")
    if batch_size > n:
        raise ValueError(
            f"batch_size={batch_size} is larger than {name}, which has {n} examples. Use batch_size <= {n}."
        )
    return int(batch_size)
