"""Placing arrays on a device mesh and reading chunks of batches from a data source.

A :class:`Placement` is the data-parallel layout (a 1-D ``Mesh`` named ``"data"``:
batches split along their leading axis, everything else replicated); :func:`read_chunk`
turns a block of example indices into one device array, reading only the rows that this
process's devices hold; :func:`map_batches` applies a function to data larger than
memory, batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec
from jaxtyping import Array

from .._validate import positive_int
from ._prefetch import Prefetcher
from ._source import ArraySource, Source

AXIS = "data"

Device = Any  # a jax.Device (pyright cannot use jax.Device in annotations)


class Placement:
    """Data parallelism over ``devices``: a 1-D mesh with axis ``"data"``."""

    def __init__(self, devices: Sequence[Device]):
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
            if isinstance(a, jax.Array) and jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
                return jax.random.wrap_key_data(put(jax.random.key_data(a)), impl=jax.random.key_impl(a))
            host = np.asarray(a)
            return jax.make_array_from_callback(host.shape, self.replicated, lambda idx: host[idx])

        return jax.tree.map(put, tree)


def to_local(tree: Any) -> Any:
    """Array leaves spread over several devices (or processes) as ordinary local arrays."""

    def get(a):
        if isinstance(a, jax.Array) and len(a.sharding.device_set) > 1:
            if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):
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
    max_chunk_bytes = positive_int(max_chunk_bytes, "max_chunk_bytes")
    per_batch = batch_size * int(np.prod(example_shape, dtype=np.int64)) * 4
    return int(max(1, min(n_batches, max_chunk_bytes // per_batch)))


def map_batches(
    fn: Callable[[Array], Any],
    data: Any,
    batch_size: int,
    *,
    max_chunk_bytes: int = 64 * 2**20,
    prefetch: int = 2,
) -> Any:
    """Apply ``fn`` to ``data`` batch by batch with constant memory; concatenate the outputs.

    ``fn(xb [batch_size, *data]) -> pytree of [batch_size, ...]`` arrays is compiled once
    (the last batch is padded to ``batch_size`` and its padding dropped from the output).
    ``data`` is an array or a :class:`~vaekit.Source` (a memmap, an image
    folder, ...): chunks of at most ``max_chunk_bytes`` are read ahead in a background
    thread, so only a few chunks and the per-example outputs are ever in memory. Use it
    to score files larger than memory, e.g.
    ``map_batches(lambda xb: vk.elbo(model, xb, key), source, 1000)``.

    :returns: the outputs of ``fn`` concatenated along the leading axis, as numpy arrays.
    """
    source = as_source(data)
    n = len(source)
    if n == 0:
        raise ValueError("map_batches got empty data; pass at least one example.")
    batch_size = positive_int(batch_size, "batch_size")
    bs = min(batch_size, n)
    n_batches = -(-n // bs)
    c = chunk_batches(max_chunk_bytes, bs, source.example_shape, n_batches)
    jfn = jax.jit(fn)

    def load(start):
        rows = np.arange(start * bs, min(n, (start + c) * bs))
        return rows.size, read_chunk(source, _pad_rows(rows, c * bs).reshape(c, bs), None)

    outs = []
    with Prefetcher(load, range(0, n_batches, c), prefetch) as chunks:
        for size, xc in chunks:
            for b in range(-(-size // bs)):
                keep = min(bs, size - b * bs)
                out = jfn(xc[b])
                outs.append(jax.tree.map(lambda a, keep=keep: np.asarray(a)[:keep], out))
    return jax.tree.map(lambda *a: np.concatenate(a), *outs)


def _pad_rows(rows: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, -1, np.int64)
    out[: rows.size] = rows
    return out
