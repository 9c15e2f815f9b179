"""The data-source protocol shared by in-memory arrays and streamed datasets.

A :class:`Source` gives random access to examples by index, so that training can draw
a permutation, read the examples of the next chunk of batches (in a background
thread), and feed them to the compiled training scan. Image/audio folders, numpy
memmaps and large tabular files implement it; each process of a multi-host run reads
only the indices of its own shard.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Source(Protocol):
    """Random-access examples: ``len(source)`` of shape ``example_shape``."""

    @property
    def example_shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def read(self, indices: np.ndarray) -> np.ndarray:
        """Examples ``indices`` (1-D int array) as float32 ``[len(indices), *example_shape]``."""
        ...


class ArrayLike:
    """Array behaviour for a :class:`Source`: ``shape``, ``len``, indexing, ``np.asarray``.

    ``source[i]`` reads one example, ``source[a:b]`` / ``source[[i, j]]`` / a boolean
    mask read those rows (float32), ``source[rows, ...]`` indexes further into them, and
    ``np.asarray(source)`` reads everything (mind the memory for large folders).
    """

    dtype = np.dtype(np.float32)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *tuple(self.example_shape))

    @property
    def ndim(self) -> int:
        return 1 + len(tuple(self.example_shape))

    def __getitem__(self, index):
        rest = ()
        if isinstance(index, tuple):
            index, rest = (index[0], index[1:]) if index else (slice(None), ())
        n = len(self)
        if isinstance(index, int | np.integer) and not isinstance(index, bool):
            i = int(index) + (n if index < 0 else 0)
            if not 0 <= i < n:
                raise IndexError(f"index {int(index)} is out of range for {n} examples.")
            out = self.read(np.array([i]))[0]
        elif isinstance(index, slice):
            out = self.read(np.arange(n)[index])
        else:
            idx = np.asarray(index)
            if idx.dtype == bool:
                if idx.shape != (n,):
                    raise IndexError(f"a boolean index needs shape ({n},), got {idx.shape}.")
                idx = np.flatnonzero(idx)
            elif idx.dtype.kind not in "iu":
                raise IndexError(f"rows must be indexed by ints, slices or a boolean mask, got {idx.dtype}.")
            idx = np.where(idx < 0, idx + n, idx)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise IndexError(f"row index out of range for {n} examples.")
            out = self.read(idx.reshape(-1)).reshape(*idx.shape, *self.example_shape)
        return out[(slice(None),) * (out.ndim - len(tuple(self.example_shape))) + rest] if rest else out

    def __array__(self, dtype=None, copy=None):
        a = self.read(np.arange(len(self)))
        return a if dtype is None else a.astype(dtype)


class ArraySource(ArrayLike):
    """A :class:`Source` over an in-memory (or memory-mapped) numpy array."""

    def __init__(self, array: np.ndarray):
        self.array = array

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape[1:])

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def read(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.array[indices], dtype=np.float32)
