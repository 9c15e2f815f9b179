"""Several processes (hosts) training one model: start-up, process 0 writes, barriers.

A multi-host run starts the same script on every host; each calls
:func:`initialize` first, then ``vk.fit(..., devices="all")`` trains data-parallel over
the devices of all hosts (each process reads only its shard of every batch). Files are
written by the main process only::

    vk.distributed.initialize("10.0.0.1:1234", num_processes=2, process_id=rank)
    model, history = vk.fit(model, source, key=key, epochs=10, batch_size=256, devices="all")
    if vk.distributed.is_main_process():
        save(model)
    vk.distributed.barrier("saved")  # the others wait until the file exists

On one host nothing here is needed; every helper is then a no-op or trivially true.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from .._validate import positive_int

Device = Any  # a jax.Device (pyright cannot use jax.Device in annotations)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    local_device_ids: Sequence[int] | None = None,
    **kwargs: Any,
) -> None:
    """Connect this process to the others: a thin wrapper over ``jax.distributed.initialize``.

    Call it once per process, before any other JAX call. ``coordinator_address`` is
    ``"host:port"`` of process 0 (which listens there); ``num_processes`` and
    ``process_id`` (``0 .. num_processes - 1``) name this process. On clusters JAX
    detects (SLURM, Open MPI, Cloud TPU) all three may be left out. On CPU the
    processes exchange gradients with gloo (``jax_cpu_collectives_implementation``,
    JAX's default), so a CPU cluster needs no extra setup. Extra keyword arguments go
    to ``jax.distributed.initialize`` unchanged.
    """
    if num_processes is not None:
        num_processes = positive_int(num_processes, "num_processes")
    if process_id is not None and num_processes is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process_id={process_id!r} must lie in 0 .. num_processes - 1 = {num_processes - 1}.")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
        local_device_ids=local_device_ids,
        **kwargs,
    )


def shutdown() -> None:
    """Disconnect from the other processes (``jax.distributed.shutdown``)."""
    jax.distributed.shutdown()


def process_index() -> int:
    """This process's index, ``0 .. process_count() - 1`` (0 on one host)."""
    return jax.process_index()


def process_count() -> int:
    """How many processes take part (1 on one host)."""
    return jax.process_count()


def is_main_process() -> bool:
    """True in the process that writes run folders, checkpoints and logs (process 0)."""
    return jax.process_index() == 0


def barrier(name: str = "vaekit") -> None:
    """Block until every process has reached ``barrier(name)`` (no-op with one process).

    Use it after the main process writes a file that the others then read, e.g. a
    checkpoint before resuming. Every process must call it with the same ``name``.
    """
    if jax.process_count() > 1:
        from . import cluster

        if cluster.joined():  # `vaekit train --distributed`: sees failures of other processes
            return cluster.barrier(name)
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def resolve_devices(devices: Any) -> list[Device] | None:
    """Normalise a ``devices`` argument: ``None``, ``"all"``, a count ``N`` (or ``"N"``), or a list.

    ``"all"`` is ``jax.devices()`` (every device of every process); ``N`` the first
    ``N`` of them. Returns ``None`` for ``None`` (single-device training).
    """
    if devices is None:
        return None
    available = jax.devices()
    if isinstance(devices, str) and devices.strip().isdigit():  # e.g. "--devices 4" on the CLI
        devices = int(devices)
    if isinstance(devices, str):
        if devices != "all":
            raise ValueError(f"devices must be 'all', a count, or a list of jax devices; got {devices!r}.")
        return list(available)
    if isinstance(devices, int | np.integer) and not isinstance(devices, bool):
        if not 1 <= devices <= len(available):
            raise ValueError(
                f"devices={devices} but {len(available)} device(s) are available "
                f"({available[0].platform}); pass 1 .. {len(available)} or 'all'."
            )
        return list(available[: int(devices)])
    try:
        devs = list(devices)
    except TypeError:
        raise TypeError(f"devices must be 'all', a count, or a list of jax devices; got {devices!r}.") from None
    if not devs or not all(isinstance(d, jax.Device) for d in devs):
        raise TypeError(f"devices must be a non-empty list of jax devices (e.g. jax.devices()); got {devices!r}.")
    if len(set(devs)) != len(devs):
        raise ValueError("devices lists the same device more than once.")
    return devs
