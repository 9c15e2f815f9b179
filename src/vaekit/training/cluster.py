"""Joining several processes from the command line, and stopping them together.

``vaekit train --distributed auto|HOST:PORT`` calls :func:`join` before any other JAX
call. On top of ``jax.distributed.initialize`` it adds what a command-line run needs:

- clear errors for a bad address or a coordinator that cannot be reached;
- a watchdog thread: when another process stops sending heartbeats (killed, crashed,
  its machine unreachable) for ``timeout`` seconds, this process says so in one line and
  exits (:func:`set_last_words` adds what was saved);
- barriers through JAX's coordination service (:func:`barrier`) that also see a
  failure another process posted with :func:`post_failure`, so every process stops
  with the error and the exit code of the one that failed, instead of waiting forever.

If process 0 itself dies, its coordination service goes with it and JAX ends the other
processes at once (its own log line, exit code 134): the coordinator cannot be replaced.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import jax

#: Default seconds without a heartbeat before a process counts as lost (also the time
#: allowed to connect to the coordinator and to shut down).
DEFAULT_TIMEOUT = 60
#: A barrier waits at most this many timeouts for a process that is alive but elsewhere.
BARRIER_FACTOR = 10
_FAILED = "vaekit/failed/"
_state: dict = {"timeout": DEFAULT_TIMEOUT, "last_words": None, "rounds": {}, "prefix": "vaekit"}


class PeerLost(RuntimeError):
    """Another process of the run stopped (or failed): ``code`` is the exit code to use."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def parse_address(value: str) -> str | None:
    """``"auto"`` -> ``None`` (JAX finds SLURM / Open MPI settings); ``"HOST:PORT"`` unchanged."""
    value = value.strip()
    if value == "auto":
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"--distributed {value!r}: give 'auto' (on SLURM or Open MPI) or the coordinator's "
            "HOST:PORT, e.g. 10.0.0.1:1234 (process 0 listens there)."
        )
    return value


def join(
    distributed: str,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    timeout: int = DEFAULT_TIMEOUT,
    prefix: str = "vaekit",
) -> None:
    """Connect this process to the others (``jax.distributed.initialize``) and start the watchdog.

    :param distributed: ``"auto"`` or the coordinator's ``"HOST:PORT"``.
    :param timeout: seconds to wait for the coordinator, and without heartbeat from a
        process before it counts as lost.
    :raises ValueError: bad settings; ``ConnectionError``: the coordinator was not reached.
    """
    from .distributed import initialize

    address = parse_address(distributed)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 1:
        raise ValueError(f"the distributed timeout must be a positive number of seconds, got {timeout!r}.")
    if address is not None and (num_processes is None or process_id is None):
        raise ValueError(
            f"--distributed {address} needs --num-processes N and --process-id I (0 for the process "
            "on the coordinator's machine); only --distributed auto finds them itself."
        )
    _state.update(timeout=timeout, prefix=prefix)
    # Without recoverability JAX's service would abort every process the moment one is
    # lost, before anything could be said; the watchdog below stops them instead.
    jax.config.update("jax_enable_recoverability", True)
    # JAX aborts the process when the others do not connect in time; say why just before.
    where = address or "the coordinator found in the environment"
    alarm = threading.Timer(
        max(0.5, timeout - 0.5),
        exit_now,
        (
            2,
            f"{prefix}: error: could not join the other processes through {where} within {timeout} s. "
            "Check that every process was started with the same --distributed and --num-processes (process 0 "
            "listens on that port), that the address is reachable from each machine, or raise --distributed-timeout.",
        ),
    )
    alarm.daemon = True
    alarm.start()
    try:
        initialize(
            address,
            num_processes,
            process_id,
            initialization_timeout=timeout,
            heartbeat_timeout_seconds=timeout,
            shutdown_timeout_seconds=timeout,
        )
    except ValueError as e:
        if address is None and "coordinator_address" in str(e):
            raise ValueError(
                "--distributed auto found no SLURM or Open MPI job in the environment. Start the "
                "processes with srun/mpirun, or give --distributed HOST:PORT --num-processes N --process-id I."
            ) from None
        raise
    except Exception as e:  # noqa: BLE001 - jaxlib raises its own error types
        text = str(e)
        if "DEADLINE_EXCEEDED" in text or "UNAVAILABLE" in text or "timed out" in text.lower():
            where = address or "the coordinator"
            raise ConnectionError(
                f"could not join the other processes through {where} within {timeout} s. Check that "
                "every process was started (process 0 listens on that port), that the address is "
                "reachable from this machine, and that all use the same --num-processes."
            ) from None
        raise
    finally:
        alarm.cancel()
    _state.update(joined=True, me=jax.process_index(), n=jax.process_count(), stopping=False)
    if jax.process_count() > 1:
        threading.Thread(target=_watch, name="vaekit-watchdog", daemon=True).start()


def joined() -> bool:
    """True after :func:`join` in this process."""
    return bool(_state.get("joined"))


def _client() -> Any:
    """JAX's coordination-service client of this process (None before joining)."""
    from jax._src.distributed import global_state

    return global_state.client


def set_last_words(fn: Callable[[], str] | None) -> None:
    """``fn()`` -> what to add to the line printed when a process is lost (e.g. the last
    checkpoint and how to continue); it may also record the failure in the run folder."""
    _state["last_words"] = fn


def lost_message(missing: list[int] | None = None) -> str:
    """The one line said when other processes are lost (``missing``: their indices)."""
    me, n = _state["me"], _state["n"]
    if not missing and n == 2:
        missing = [1 - me]
    who = f"process {', '.join(map(str, missing))}" if missing else "another process"
    msg = (
        f"error: process {me} of {n}: lost contact with {who} (no heartbeat for {_state['timeout']} s, "
        "or its connection closed: it was stopped, crashed, or its machine is unreachable). Stopping."
    )
    words = _state["last_words"]
    if words is not None:
        try:
            msg += " " + words()
        except Exception:  # noqa: BLE001 - the last words must not stop the exit
            pass
    return msg


def exit_now(code: int, line: str | None = None) -> None:
    """Print ``line``, flush, and end the process with ``code`` at once (skipping JAX's
    shutdown, which would wait for the lost process)."""
    if line:
        print(line, file=sys.stderr)
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except Exception:  # noqa: BLE001
            pass
    os._exit(code)


def _watch() -> None:
    n = _state["n"]
    client = _client()
    while True:
        time.sleep(0.5)
        if _state["stopping"]:
            return
        try:
            live = client.get_live_nodes(list(range(n)))
        except Exception:  # noqa: BLE001 - the coordinator is gone
            if not _state["stopping"]:
                exit_now(2, f"{_state['prefix']}: " + lost_message([0]))
            return
        if len(live) < n and not _state["stopping"]:
            missing = sorted(set(range(n)) - set(live))
            failed = _posted_failure()
            if failed is not None:  # it said why before it went
                exit_now(failed.code, f"{_state['prefix']}: {failed}")
            exit_now(2, f"{_state['prefix']}: " + lost_message(missing))


def _posted_failure() -> PeerLost | None:
    client = _client()
    try:
        posted = client.key_value_dir_get(_FAILED)
    except Exception:  # noqa: BLE001
        return None
    if not posted:
        return None
    key, value = sorted(posted)[0]
    code, _, line = value.partition("\t")
    who = key.rsplit("/", 1)[-1]
    return PeerLost(f"process {_state['me']} of {_state['n']}: stopped because process {who} failed: {line}", int(code))


def post_failure(code: int, line: str, wait: float = 5.0) -> None:
    """Tell the other processes that this one failed (``line``, exit ``code``), and give
    them up to ``wait`` seconds to read it at their next barrier."""
    client = _client()
    if client is None:
        return
    _state["stopping"] = True
    me = _state["me"]
    try:
        client.key_value_set(f"{_FAILED}{me}", f"{code}\t{line}")
        deadline = time.monotonic() + wait
        others = _state["n"] - 1
        while time.monotonic() < deadline:
            if len(client.key_value_dir_get("vaekit/seen/")) >= others:
                return
            time.sleep(0.05)
    except Exception:  # noqa: BLE001 - the coordinator is gone: nobody to tell
        return


def barrier(name: str) -> None:
    """Wait until every process reached ``barrier(name)``; raise :class:`PeerLost` when
    another process posted a failure instead (lost processes end this one through the
    watchdog)."""
    client = _client()
    rounds = _state["rounds"]
    r = rounds[name] = rounds.get(name, 0) + 1
    base = f"vaekit/barrier/{name}/{r}/"
    client.key_value_set(f"{base}{_state['me']}", "1")
    n, pause = _state["n"], 0.001
    limit = BARRIER_FACTOR * _state["timeout"]
    deadline = time.monotonic() + limit
    while len(arrived := client.key_value_dir_get(base)) < n:
        failed = _posted_failure()
        if failed is not None:
            client.key_value_set(f"vaekit/seen/{_state['me']}", "1")
            raise failed
        if time.monotonic() > deadline:  # alive but elsewhere, e.g. stopped by a signal mid-epoch
            late = sorted(set(range(n)) - {int(k.rsplit("/", 1)[-1]) for k, _ in arrived})
            raise PeerLost(
                f"error: process {_state['me']} of {n}: process {', '.join(map(str, late))} did not reach "
                f"{name!r} within {limit} s (it is stuck or was stopped at another point). Stopping."
            )
        time.sleep(pause)
        pause = min(0.05, pause * 2)


def finish() -> None:
    """End a run that succeeded everywhere: wait for all processes, then disconnect; process 0
    (the coordinator) last, so that no process loses it while still finishing."""
    if not joined() or _state["n"] == 1:
        return
    barrier("vaekit-done")
    _state["stopping"] = True
    client = _client()
    if _state["me"] == 0:
        deadline = time.monotonic() + _state["timeout"]
        while time.monotonic() < deadline:
            try:
                if len(client.get_live_nodes(list(range(_state["n"])))) <= 1:
                    break
            except Exception:  # noqa: BLE001
                break
            time.sleep(0.05)
    try:
        jax.distributed.shutdown()
    except Exception:  # noqa: BLE001 - the run is complete; nothing left to coordinate
        pass
