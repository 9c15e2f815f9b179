"""Networks with state (BatchNorm running statistics): aevb's ``apply(params, state, x, train)``.

A :class:`StatefulNet` holds trained ``params`` and a ``state`` that is not trained
(wrapped in :func:`vaekit.fixed`). Called on its own, or anywhere outside ``vk.fit``'s
training step, it runs in evaluation mode: the stored state is used and never changes
(``vk.elbo``, ``vk.log_likelihood``, ``x_val`` losses, scoring, sampling). Inside the
training step (:func:`training`) the conditional that holds it maps it over the batch
with the named axis :data:`BATCH_AXIS` (which BatchNorm needs to compute batch
statistics), and the updated state is handed back to ``vk.fit``, which carries it from
step to step in its compiled loop. Since the state is part of the model, checkpoints,
``vk.save`` and ``vk.load`` keep it.

Build one with :func:`vaekit.nets.from_equinox` (``state=`` from ``eqx.nn.make_with_state``)
or :func:`vaekit.nets.from_linen` (a module with a ``batch_stats`` collection whose
``__call__`` takes ``train=``). The BatchNorm layers must use ``axis_name="batch"``.
The stateful network must be the conditional's own network (e.g. ``vk.Gaussian(net)``),
not wrapped in another one.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import equinox as eqx
import jax
from jaxtyping import Array

from ..core import Fixed, resolve

#: the name of the batch axis the conditionals map a stateful network over
BATCH_AXIS = "batch"

_COLLECTORS: list[dict[str, Any]] = []


@contextlib.contextmanager
def training() -> Iterator[dict[str, Any]]:
    """Run stateful networks in training mode while tracing the block; yields a dict that
    receives their new states (``uid -> state``)."""
    box: dict[str, Any] = {}
    _COLLECTORS.append(box)
    try:
        yield box
    finally:
        _COLLECTORS.pop()


def is_training() -> bool:
    """Whether the code being traced is inside :func:`training`."""
    return bool(_COLLECTORS)


class StatefulNet(eqx.Module):
    """A network ``apply(params, state, x, train) -> (y, new_state)`` for one example.

    :ivar params: trained parameters.
    :ivar state: the state (a :class:`vaekit.Fixed`: not trained; updated by ``vk.fit``).
    :ivar uid: identifies the network's state in ``vk.fit``'s loop.
    """

    params: Any
    state: Fixed
    apply: Callable[[Any, Any, Array, bool], tuple[Array, Any]]
    out_size: int | None = eqx.field(static=True)
    kind: str = eqx.field(static=True)
    uid: str = eqx.field(static=True)
    stateful: ClassVar[bool] = True

    def __call__(self, x: Array) -> Array:
        """Evaluation mode: one example with the stored state."""
        return self.apply(resolve(self.params), resolve(self.state), x, False)[0]

    def map_batch(self, family: Any, flat: Array) -> Any:
        """``family._params`` over ``flat [n, *input]`` (``family.net`` is this network).

        In training mode the batch axis is named :data:`BATCH_AXIS` and the new state is
        recorded for ``vk.fit``; otherwise a plain ``vmap`` with the stored state.
        """
        if not is_training():
            return jax.vmap(family._params)(flat)
        params, state = resolve(self.params), resolve(self.state)

        def one(x):
            box: list = []

            def net(v):
                out, new = self.apply(params, state, v, True)
                box.append(new)
                return out

            p = eqx.tree_at(lambda f: f.net, family, net)._params(x)
            return p, box[0]

        out, new = jax.vmap(one, axis_name=BATCH_AXIS, out_axes=(0, None))(flat)
        record(self.uid, new)
        return out


def _is_net(node: Any) -> bool:
    """A module with state that training updates: a :class:`StatefulNet`, or any module with
    ``stateful = True`` and ``uid``/``state`` fields (e.g. a VQ-VAE codebook)."""
    return isinstance(node, eqx.Module) and getattr(node, "stateful", False) is True and hasattr(node, "uid")


def record(uid: str, state: Any) -> None:
    """Hand the new state of the module ``uid`` to ``vk.fit`` (only inside :func:`training`)."""
    if _COLLECTORS:
        _COLLECTORS[-1][uid] = jax.lax.stop_gradient(state)


def states(model: Any) -> dict[str, Any]:
    """The states of the stateful networks in ``model``: ``uid -> state``."""
    return {n.uid: n.state.value for n in jax.tree.leaves(model, is_leaf=_is_net) if _is_net(n)}


def with_states(model: Any, new: dict[str, Any]) -> Any:
    """``model`` with the states ``new`` (``uid -> state``) put into its stateful networks."""
    if not new:
        return model

    def put(n):
        if _is_net(n) and n.uid in new:
            return eqx.tree_at(lambda m: m.state, n, Fixed(new[n.uid]))
        return n

    return jax.tree.map(put, model, is_leaf=_is_net)


def new_uid() -> str:
    return uuid.uuid4().hex
