"""Mixed precision for ``vk.fit(..., compute_dtype=jnp.bfloat16)``.

The parameters and the optimizer state stay float32. Inside the loss, every network of
the model's conditionals (``vk.Gaussian(net)`` and the other families) runs on a copy
of its float arrays cast to ``compute_dtype``, with its input cast too, so its matmuls
and convolutions run in that precision; its output is cast back to float32 before it
becomes the parameters of a distribution. Log-densities, the KL term, the sum over data
dimensions and the mean over the batch are computed in float32, and gradients reach the
float32 parameters through the casts (in float32).

Not cast: stateful networks (:mod:`vaekit.nets.stateful`, whose batch statistics stay
float32), networks outside a conditional (e.g. flow layers), priors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array

from ..core import AbstractFamily

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def check_dtype(dtype: Any) -> Any:
    """``dtype`` as a jnp float type of :data:`DTYPES` (a clear error otherwise)."""
    name = str(jnp.dtype(dtype)) if not isinstance(dtype, str) else dtype
    if name not in DTYPES:
        raise ValueError(f"compute_dtype must be one of {', '.join(DTYPES)} (e.g. jnp.bfloat16), got {dtype!r}.")
    return DTYPES[name]


class LowPrecision(eqx.Module):
    """``net`` run in ``dtype``: float arrays and input cast, output cast back to float32."""

    net: Callable[[Array], Array]
    dtype: Any = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        low = jax.tree.map(lambda a: a.astype(self.dtype) if eqx.is_inexact_array(a) else a, self.net)
        return low(jnp.asarray(x).astype(self.dtype)).astype(jnp.float32)


def _is_family(node: Any) -> bool:
    return isinstance(node, AbstractFamily)


def cast_networks(model: Any, dtype: Any) -> Any:
    """``model`` with the network of every conditional family wrapped in :class:`LowPrecision`."""

    def wrap(node):
        if not _is_family(node) or getattr(node.net, "stateful", False) is True:
            return node
        return eqx.tree_at(lambda f: f.net, node, LowPrecision(node.net, dtype))

    return jax.tree.map(wrap, model, is_leaf=_is_family)


_CACHE: dict[tuple[Callable, str], Callable] = {}  # holds the functions: no id reuse


def mixed_precision(loss_fn: Callable, dtype: Any) -> Callable:
    """``loss_fn`` computed with the networks in ``dtype``; the loss is float32. The same
    function for the same ``(loss_fn, dtype)``, so ``fit``'s compiled epoch is reused."""
    dtype = check_dtype(dtype)
    if dtype == jnp.float32:
        return loss_fn
    key = (loss_fn, jnp.dtype(dtype).name)
    if key not in _CACHE:

        def loss(m, x, k, s):
            return loss_fn(cast_networks(m, dtype), x, k, s).astype(jnp.float32)

        _CACHE[key] = loss
    return _CACHE[key]
