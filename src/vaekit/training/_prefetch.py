"""A background thread that reads the next chunks of a data source while the device trains."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from .._validate import positive_int

T = TypeVar("T")

_DONE = object()


class Prefetcher(Iterator[T]):
    """Iterate ``load(item)`` for ``item in items``, computed up to ``depth`` items ahead.

    ``load`` runs in one daemon thread (reading files and copying to the device release
    the GIL, so this overlaps with the compiled training step). An exception in ``load``
    is raised by ``next()`` in the caller's thread. ``close()`` (or leaving a ``with``
    block) stops the thread early, e.g. when training stops before the epoch ends.
    """

    def __init__(self, load: Callable[[Any], T], items: Iterable[Any], depth: int = 2):
        depth = positive_int(depth, "prefetch depth")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(load, iter(items)), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, load, items) -> None:
        try:
            for item in items:
                if self._stop.is_set() or not self._put(("ok", load(item))):
                    return
        except BaseException as e:  # handed to the consumer
            self._put(("error", e))
            return
        self._put(("ok", _DONE))

    def __next__(self) -> T:
        kind, value = self._queue.get()
        if kind == "error":
            self.close()
            raise value
        if value is _DONE:
            self.close()
            raise StopIteration
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
