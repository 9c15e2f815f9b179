"""Placing arrays on a device mesh and reading chunks of batches from a data source.

Private helpers of :mod:`vaekit.training`: a :class:`Placement` is the data-parallel
layout (a 1-D ``Mesh`` named ``"data"``: batches split along their leading axis,
everything else replicated); :func:`read_chunk` turns a block of example indices into
one device array, reading only the rows that this process's devices hold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from ._source import ArraySource, Source

AXIS = "data"


class Placement:
    """Data parallelism over ``devices``: a 1-D mesh with axis ``"data"``."""

    def __init__(self, devices: Sequence[jax.Device]):
        self.mesh = Mesh(np.asarray(devices), (AXIS,))
        self.n_devices = len(devices)
        self.replicated = NamedSharding(self.mesh, PartitionSpec())
        #: ``[batch, *data]`` split along the batch axis.
        self.batch = NamedSharding(self.mesh, PartitionSpec(AXIS))
        #: ``[chunk, batch, *data]`` split along the batch axis.
        self.chunk = NamedSharding(self.mesh, PartitionSpec(None, AXIS))

    def replicate(self, tree: Any) -> Any:
        """Every array leaf of ``tree`` as a copy on all devices (works across processes)."""

        def put(a):
            if not eqx.is_array(a):
                return a
            if isinstance(a, jax.Array) and a.sharding == self.replicated:
                return a
            if isinstance(a, jax.Array) and jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(put(jax.random.key_data(a)), impl=jax.random.key_impl(a))
            host = np.asarray(a)
            return jax.make_array_from_callback(host.shape, self.replicated, lambda idx: host[idx])

        return jax.tree.map(put, tree)


def to_local(tree: Any) -> Any:
    """Array leaves spread over several devices (or processes) as ordinary local arrays."""

    def get(a):
        if isinstance(a, jax.Array) and len(a.sharding.device_set) > 1:
            if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(get(jax.random.key_data(a)), impl=jax.random.key_impl(a))
            return jax.numpy.asarray(np.asarray(a))
        return a

    return jax.tree.map(get, tree)


def as_source(x: Any) -> Source:
    return x if isinstance(x, Source) else ArraySource(np.asarray(x))


def read_rows(source: Source, rows: np.ndarray) -> np.ndarray:
    """``source.read`` for a block of indices of any shape; ``-1`` entries read as zeros.

    Returns float32 ``[*rows.shape, *example_shape]``.
    """
    shape = tuple(source.example_shape)
    flat = rows.reshape(-1)
    valid = flat >= 0
    out = np.zeros((flat.size, *shape), np.float32)
    if valid.any():
        got = np.asarray(source.read(flat[valid]))
        if got.shape != (int(valid.sum()), *shape):
            raise ValueError(
                f"{type(source).__name__}.read returned shape {got.shape} for {int(valid.sum())} "
                f"indices; a Source must return [len(indices), *example_shape] = "
                f"[{int(valid.sum())}, {', '.join(map(str, shape))}]."
            )
        if got.dtype.kind == "f" and not np.isfinite(got).all():
            bad = flat[valid][~np.isfinite(got.reshape(got.shape[0], -1)).all(axis=1)]
            raise ValueError(
                f"The data source has NaN/inf values in {bad.size} example(s) (first indices: "
                f"{bad[:5].tolist()}). Remove or impute them before training."
            )
        out[valid] = got
    return out.reshape(*rows.shape, *shape)


def read_chunk(source: Source, rows: np.ndarray, sharding: NamedSharding | None) -> jax.Array:
    """The examples ``rows [chunk, batch]`` (``-1``: padding) as one device array.

    With a sharding, each device gets only its block and this process reads only the
    rows of its own (addressable) devices; without, the whole chunk goes to the default
    device.
    """
    shape = (*rows.shape, *source.example_shape)
    if sharding is None:
        return jax.device_put(read_rows(source, rows))
    return jax.make_array_from_callback(shape, sharding, lambda idx: read_rows(source, rows[idx[:2]]))


def chunk_batches(max_chunk_bytes: int, batch_size: int, example_shape: Sequence[int], n_batches: int) -> int:
    """How many batches fit in ``max_chunk_bytes`` of float32 (at least 1, at most ``n_batches``)."""
    if not isinstance(max_chunk_bytes, int) or max_chunk_bytes < 1:
        raise ValueError(f"max_chunk_bytes must be a positive int, got {max_chunk_bytes!r}.")
    per_batch = batch_size * int(np.prod(example_shape, dtype=np.int64)) * 4
    return int(max(1, min(n_batches, max_chunk_bytes // per_batch)))
