"""Fixed (non-trainable) arrays and the filter that tells optimizers what to train.

``vk.fixed(a)`` wraps an array so that ``vk.fit`` never changes it and no gradient
flows into it (the ``NoGradArray`` of the Julia original). Code that uses a model calls
:func:`resolve` first, which replaces each wrapper by ``stop_gradient(value)``; every
public vaekit function and every vaekit module method does so already, so a fixed
array can sit anywhere in a model, inside a network too.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike


class Fixed(eqx.Module):
    """An array that is part of the model but is not trained."""

    value: jax.Array

    def __jax_array__(self):  # lets jnp functions accept a Fixed directly
        return jax.lax.stop_gradient(self.value)


def fixed(array: ArrayLike) -> Fixed:
    """Mark ``array`` as not trainable: ``vk.fit`` leaves it bit-identical.

    A fixed array may sit anywhere in a model (a prior parameter, a network layer, a decoder
    scale); every vaekit function reads it through :func:`resolve`. Example, a prior whose
    mean stays at zero while its scale trains::

        prior = vk.Normal(vk.fixed(jnp.zeros(2)), jnp.ones(2))
    """
    if isinstance(array, Fixed):
        return array
    return Fixed(jnp.asarray(array))


def _is_fixed(node: Any) -> bool:
    return isinstance(node, Fixed)


def resolve(tree: Any) -> Any:
    """Replace every :class:`Fixed` in ``tree`` by ``stop_gradient`` of its value."""
    return jax.tree_util.tree_map(
        lambda n: jax.lax.stop_gradient(n.value) if isinstance(n, Fixed) else n,
        tree,
        is_leaf=_is_fixed,
    )


def value(a: Any) -> Any:
    """The array behind ``a`` (``stop_gradient``-ed when ``a`` is fixed)."""
    return jax.lax.stop_gradient(a.value) if isinstance(a, Fixed) else a


def trainable(model: Any) -> Any:
    """Filter spec for ``eqx.partition``: True for trainable float arrays.

    Arrays wrapped by :func:`fixed` and non-float leaves are False. ``vk.fit`` hands it to
    the optimizer; to count what trains::

        params, _ = eqx.partition(model, vk.trainable(model))
        n = sum(a.size for a in jax.tree_util.tree_leaves(params))
    """

    def spec(node):
        if isinstance(node, Fixed):
            return jax.tree_util.tree_map(lambda _: False, node)
        return eqx.is_inexact_array(node)

    return jax.tree_util.tree_map(spec, model, is_leaf=_is_fixed)
