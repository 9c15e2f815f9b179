"""Multi-layer perceptron for single examples (batch with ``jax.vmap``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from .._validate import one_of, positive_int
from ..core import resolve


def identity(x: Array) -> Array:
    """``x`` unchanged (the MLP's default final activation)."""
    return x


#: activations by name (``activation="tanh"``, e.g. in a TOML ``[model_options]`` table)
ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "tanh": jax.nn.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "elu": jax.nn.elu,
    "selu": jax.nn.selu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "sigmoid": jax.nn.sigmoid,
    "leaky_relu": jax.nn.leaky_relu,
    "identity": identity,
}


def activation_fn(activation: str | Callable[[Array], Array]) -> Callable[[Array], Array]:
    """An activation given by name (see :data:`ACTIVATIONS`) or as a callable."""
    if isinstance(activation, str):
        return ACTIVATIONS[one_of(activation, ACTIVATIONS, "activation", extra=", or a callable")]
    if not callable(activation):
        raise TypeError(f"activation must be a name ({', '.join(ACTIVATIONS)}) or a callable, got {activation!r}.")
    return activation


def widths(hidden: int | Sequence[int], name: str = "hidden") -> tuple[int, ...]:
    """Layer widths from an int (one hidden layer) or a sequence of ints."""
    if isinstance(hidden, int) and not isinstance(hidden, bool):
        hidden = (hidden,)
    try:
        out = tuple(int(h) for h in hidden)  # pyright: ignore[reportGeneralTypeIssues]
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be an int or a sequence of ints, e.g. 500 or (256, 128); got {hidden!r}."
        ) from None
    if any(h <= 0 for h in out):
        raise ValueError(f"MLP {name} widths must be positive, got {out}.")
    return out


class MLP(eqx.Module):
    """``in_size -> hidden... -> out_size`` with ``activation`` between layers.

    The input of one example may have any shape with ``in_size`` elements; it is
    flattened first. ``hidden=()`` gives a single linear (affine) map.

    :param in_size: number of input features.
    :param out_size: number of outputs.
    :param hidden: widths of the hidden layers (an int for one layer).
    :param activation: elementwise non-linearity after each hidden layer, or its name
        (``"tanh"``, ``"relu"``, ... see :data:`ACTIVATIONS`).
    :param final_activation: applied to the output (identity by default).
    """

    layers: tuple[eqx.nn.Linear, ...]
    activation: Callable[[Array], Array] = eqx.field(static=True)
    final_activation: Callable[[Array], Array] = eqx.field(static=True)
    in_size: int = eqx.field(static=True)
    out_size: int = eqx.field(static=True)

    def __init__(
        self,
        in_size: int,
        out_size: int,
        hidden: int | Sequence[int] = (500,),
        activation: str | Callable[[Array], Array] = jax.nn.tanh,
        final_activation: Callable[[Array], Array] = identity,
        *,
        key: PRNGKeyArray,
    ):
        in_size = positive_int(in_size, "MLP in_size")
        out_size = positive_int(out_size, "MLP out_size")
        hidden = widths(hidden)
        activation = activation_fn(activation)
        sizes = (in_size, *hidden, out_size)
        keys = jax.random.split(key, len(sizes) - 1)
        self.layers = tuple(eqx.nn.Linear(a, b, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys))
        self.activation = activation
        self.final_activation = final_activation
        self.in_size = in_size
        self.out_size = out_size

    def __call__(self, x: Array) -> Array:
        """``x``: one example, ``in_size`` elements in any shape -> ``[out_size]``."""
        net = resolve(self)
        h = jnp.reshape(x, (-1,))
        if h.shape[0] != self.in_size:
            raise ValueError(
                f"MLP expects inputs with {self.in_size} features per example, got "
                f"shape {tuple(x.shape)} ({h.shape[0]} features)."
            )
        for layer in net.layers[:-1]:
            h = net.activation(layer(h))
        return net.final_activation(net.layers[-1](h))
