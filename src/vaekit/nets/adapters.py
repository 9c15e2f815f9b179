"""Use networks from other JAX libraries as encoder/decoder networks.

Each adapter returns an equinox module whose parameters are ordinary pytree leaves of
the vaekit model, so ``vk.fit`` trains them like native ones (and ``vk.fixed`` can
freeze them). The network maps *one* example (the conditionals ``vmap`` over the batch).

* :func:`from_init_apply`: a plain ``(init, apply)`` pair, ``init(key, x) -> params``,
  ``apply(params, x) -> y`` (stax / numpyro.nn style).
* :func:`from_linen`: a Flax Linen module (``pip install 'vaekit[flax]'``).
* :func:`from_nnx`: a Flax NNX module (``pip install 'vaekit[flax]'``).
* :func:`from_haiku`: a Haiku ``hk.transform``-ed function (``pip install 'vaekit[haiku]'``).
* :func:`from_equinox`: an equinox module (its non-array leaves, such as activations, are not trained).

Flax and Haiku are imported only when their adapter is used.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray

from ..core import Fixed, resolve
from .stateful import StatefulNet, new_uid


def _require(module: str, who: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{who} needs the optional dependency {module.split('.')[0]!r}; install it with "
            f"pip install 'vaekit[{extra}]'."
        ) from None


def _out_size(apply: Callable, params: Any, example_input: Any) -> int | None:
    shape = jax.eval_shape(apply, params, jnp.asarray(example_input)).shape
    return int(shape[0]) if len(shape) == 1 else None


def fixed_tree(tree: Any) -> Fixed:
    """A pytree of arrays (a network's state) as one :class:`vaekit.Fixed`."""
    return Fixed(tree)


class Adapted(eqx.Module):
    """A foreign network: ``apply(params, x)`` with ``params`` trained as part of the model.

    :ivar params: the network's parameters (a pytree of arrays).
    :ivar out_size: output size when the output is a vector (lets ``Gaussian("shared")``
        and friends infer the data size), else ``None``.
    """

    params: Any
    apply: Callable[[Any, Array], Array]
    out_size: int | None = eqx.field(static=True)
    kind: str = eqx.field(static=True)

    def __call__(self, x: Array) -> Array:
        return self.apply(resolve(self.params), x)


def from_init_apply(
    init: Callable[[PRNGKeyArray, Array], Any] | None,
    apply: Callable[[Any, Array], Array],
    *,
    example_input: Any,
    key: PRNGKeyArray | None = None,
    params: Any = None,
) -> Adapted:
    """Wrap a plain ``(init, apply)`` pair.

    :param init: ``init(key, x) -> params`` (may be ``None`` when ``params`` is given).
    :param apply: ``apply(params, x) -> y`` for one example ``x``.
    :param example_input: one example, used to initialise and to infer the output size.
    :param params: use these parameters instead of calling ``init``.
    """
    if params is None:
        if init is None or key is None:
            raise ValueError("from_init_apply needs init= and key=, or params=.")
        params = init(key, jnp.asarray(example_input))
    return Adapted(params, apply, _out_size(apply, params, example_input), "init_apply")


def from_linen(
    module: Any,
    *,
    example_input: Any,
    key: PRNGKeyArray | None = None,
    params: Any = None,
    state: Any = None,
    train_arg: str = "train",
) -> Adapted | StatefulNet:
    """Wrap a Flax Linen module (its ``params`` collection is trained).

    Modules with other collections (``batch_stats`` of ``nn.BatchNorm``, built with
    ``axis_name="batch"``) become a :class:`~vaekit.nets.stateful.StatefulNet`: the
    collections are updated in ``vk.fit``'s training steps (``__call__(x, train=True)``,
    collections mutable) and used as they are everywhere else (``train=False``).

    :param params: the ``params`` collection to start from (default ``module.init``).
    :param state: the other collections, e.g. ``{"batch_stats": ...}`` (default: from ``module.init``).
    :param train_arg: the keyword of ``__call__`` that switches training mode, when it has one.
    """
    linen = _require("flax.linen", "vaekit.nets.from_linen", "flax")
    if not isinstance(module, linen.Module):
        raise TypeError(f"from_linen needs a flax.linen.Module, got {type(module).__name__}.")
    takes_train = train_arg in inspect.signature(module.__call__).parameters

    def mode(train: bool) -> dict[str, bool]:
        return {train_arg: train} if takes_train else {}

    if params is None:
        if key is None:
            raise ValueError("from_linen needs key= (to initialise) or params=.")
        variables = dict(module.init(key, jnp.asarray(example_input), **mode(False)))
        params = variables.pop("params")
        if state is None:
            state = variables or None
    if state:
        state = dict(state)

        def apply_state(p, s, x, train):
            if not train:
                return module.apply({"params": p, **s}, x, **mode(False)), s
            out, new = module.apply({"params": p, **s}, x, mutable=list(s), **mode(True))
            return out, dict(new)

        size = _out_size(lambda p, x: apply_state(p, state, x, False)[0], params, example_input)
        return StatefulNet(params, fixed_tree(state), apply_state, size, "linen", new_uid())

    def apply(p, x):
        return module.apply({"params": p}, x)

    return Adapted(params, apply, _out_size(apply, params, example_input), "linen")


def from_haiku(transformed: Any, *, example_input: Any, key: PRNGKeyArray | None = None, params: Any = None) -> Adapted:
    """Wrap a Haiku transformed function (``hk.transform(f)``, no state, no rng in apply)."""
    hk = _require("haiku", "vaekit.nets.from_haiku", "haiku")
    if isinstance(transformed, hk.TransformedWithState):
        raise TypeError("from_haiku needs a function without state: use hk.transform, not hk.transform_with_state.")
    if not (hasattr(transformed, "init") and hasattr(transformed, "apply")):
        raise TypeError(f"from_haiku needs a hk.transform-ed function, got {type(transformed).__name__}.")
    if params is None:
        if key is None:
            raise ValueError("from_haiku needs key= (to initialise) or params=.")
        params = transformed.init(key, jnp.asarray(example_input))

    def apply(p, x):  # hk.transform: apply(params, rng, x)
        return transformed.apply(p, None, x)

    try:
        size = _out_size(apply, params, example_input)
    except TypeError:  # hk.without_apply_rng(...): apply(params, x)

        def apply(p, x):
            return transformed.apply(p, x)

        size = _out_size(apply, params, example_input)
    return Adapted(params, apply, size, "haiku")


def from_nnx(module: Any, *, example_input: Any) -> Adapted:
    """Wrap a Flax NNX module: its ``nnx.Param`` state is trained, other state is kept fixed."""
    nnx = _require("flax.nnx", "vaekit.nets.from_nnx", "flax")
    if not isinstance(module, nnx.Module):
        raise TypeError(f"from_nnx needs a flax.nnx.Module, got {type(module).__name__}.")
    graphdef, params, rest = nnx.split(module, nnx.Param, ...)
    params = nnx.to_pure_dict(params)
    rest = nnx.to_pure_dict(rest)  # non-trainable state: a constant of the network

    def apply(p, x):
        return nnx.merge(graphdef, p, rest)(x)

    return Adapted(params, apply, _out_size(apply, params, example_input), "nnx")


def from_equinox(module: Any, *, example_input: Any | None = None, state: Any = None) -> Adapted | StatefulNet:
    """Wrap an equinox module: its arrays are trained, everything else (activation
    functions and other non-array leaves, e.g. in ``eqx.nn.MLP``) is kept static.

    :param state: the ``eqx.nn.State`` of a module built with ``eqx.nn.make_with_state``
        (``__call__(x, state) -> (y, state)``, e.g. with ``eqx.nn.BatchNorm(n,
        axis_name="batch")``): the result is a :class:`~vaekit.nets.stateful.StatefulNet`
        whose state ``vk.fit`` updates in training steps (``inference=False``) and which
        uses it as it is everywhere else (``eqx.nn.inference_mode``).
    """
    if not isinstance(module, eqx.Module) or not callable(module):
        raise TypeError(f"from_equinox needs a callable equinox.Module, got {type(module).__name__}.")
    if state is not None:
        if not isinstance(state, eqx.nn.State):
            raise TypeError(
                f"from_equinox(state=) needs the eqx.nn.State of eqx.nn.make_with_state, got {type(state).__name__}."
            )
        params, train_static = eqx.partition(eqx.nn.inference_mode(module, False), eqx.is_array)
        eval_static = eqx.partition(eqx.nn.inference_mode(module, True), eqx.is_array)[1]

        def apply_state(p, s, x, train):
            return eqx.combine(p, train_static if train else eval_static)(x, s)

        size = None
        if example_input is not None:
            size = _out_size(lambda p, x: apply_state(p, state, x, False)[0], params, example_input)
        if size is None and isinstance(getattr(module, "out_size", None), int):
            size = module.out_size
        return StatefulNet(params, fixed_tree(state), apply_state, size, "equinox", new_uid())
    params, static = eqx.partition(module, eqx.is_array)

    def apply(p, x):
        return eqx.combine(p, static)(x)

    try:
        size = None if example_input is None else _out_size(apply, params, example_input)
    except TypeError as e:
        if "state" not in str(e):
            raise
        raise TypeError(
            "from_equinox: this module's __call__ takes a state (e.g. eqx.nn.BatchNorm); build it "
            "with model, state = eqx.nn.make_with_state(Module)(...) and pass "
            "vk.nets.from_equinox(model, state=state)."
        ) from None
    if size is None and isinstance(getattr(module, "out_size", None), int):
        size = module.out_size
    return Adapted(params, apply, size, "equinox")
