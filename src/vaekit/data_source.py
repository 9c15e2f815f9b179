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


class ArraySource:
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
