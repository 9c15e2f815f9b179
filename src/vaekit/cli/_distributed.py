"""``vaekit train --distributed``: the options, the ``[distributed]`` table of a TOML
configuration, and running one process of a multi-process run (:mod:`vaekit.training.cluster`).

Where the processes join is a property of the launch, not of the run: it is not recorded
in ``config.json``, and a run may be resumed with another number of processes.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Keys of the ``[distributed]`` table of a TOML configuration.
TOML_KEYS = ("coordinator", "num_processes", "process_id", "timeout")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("several processes (hosts)")
    g.add_argument(
        "--distributed",
        metavar="auto|HOST:PORT",
        help="train in several processes: 'auto' on SLURM / Open MPI, or the coordinator's address "
        "(process 0 listens there); use with --devices all (the default then)",
    )
    g.add_argument("--num-processes", type=int, metavar="N", help="how many processes take part (with HOST:PORT)")
    g.add_argument("--process-id", type=int, metavar="I", help="this process: 0 .. N-1; 0 writes the run folder")
    g.add_argument(
        "--distributed-timeout",
        type=int,
        metavar="S",
        help="seconds to wait for the coordinator, and without heartbeat before a process counts as lost (default 60)",
    )


def split_config(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(run configuration, [distributed] table)`` of a TOML file; the run part checked by
    :func:`vaekit.runs.read_config`."""
    from ..runs.config import check_keys, read_config

    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return read_config(path), {}  # raises its clear error
    table = raw.pop("distributed", {})
    if not isinstance(table, dict):
        raise ValueError(
            f'{path}: \'distributed\' must be a table: [distributed] with coordinator = "auto" or "HOST:PORT".'
        )
    unknown = sorted(set(table) - set(TOML_KEYS))
    if unknown:
        raise ValueError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))} in [distributed]. Valid keys: {', '.join(TOML_KEYS)}."
        )
    return check_keys(raw, str(path)), table


def settings(args, table: dict[str, Any]) -> dict[str, Any] | None:
    """The distributed settings (flags over the TOML table), or None for one process."""
    s = {
        "coordinator": args.distributed if args.distributed is not None else table.get("coordinator"),
        "num_processes": args.num_processes if args.num_processes is not None else table.get("num_processes"),
        "process_id": args.process_id if args.process_id is not None else table.get("process_id"),
        "timeout": args.distributed_timeout if args.distributed_timeout is not None else table.get("timeout"),
    }
    if s["coordinator"] is None:
        given = [k for k in ("num_processes", "process_id", "timeout") if s[k] is not None]
        if given:
            raise ValueError(f"--{given[0].replace('_', '-')} applies only with --distributed auto|HOST:PORT.")
        return None
    for k in ("num_processes", "process_id", "timeout"):
        v = s[k]
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (1 if k != "process_id" else 0)):
            raise ValueError(
                f"--{k.replace('_', '-')} must be a {'non-negative' if k == 'process_id' else 'positive'} integer, got {v!r}."
            )
    if not args.out and not args.resume:
        raise ValueError("--distributed needs --out RUN_DIR (the same path on every process; process 0 writes it).")
    return s


def run_joined(args, s: dict[str, Any], train: Callable[[], int]) -> int:
    """Join the other processes, run ``train()``, and end this process with the status
    of the run: an error here or in another process ends every process with one line."""
    import jax

    from ..runs.folder import checkpoints, try_status
    from ..training import cluster
    from . import error_line

    cluster.join(
        s["coordinator"],
        s["num_processes"],
        s["process_id"],
        timeout=s["timeout"] or cluster.DEFAULT_TIMEOUT,
        prefix="vaekit train",
    )
    me, n = jax.process_index(), jax.process_count()
    out = Path(args.resume or args.out)
    resume_hint = f"vaekit train --resume {out} with the same --distributed options on every process"

    def last_words() -> str:
        if me == 0 and (out / "vaekit.json").is_file():
            try_status(out, "failed", error=f"lost contact with another process (process {me} of {n})")
        ck = checkpoints(out) if me == 0 or out.is_dir() else []
        saved = f"the last good checkpoint is {ck[-1].relative_to(out)}" if ck else "no checkpoint was saved"
        return f"In {out}, {saved}. Continue with: {resume_hint}."

    cluster.set_last_words(last_words)
    if me != 0:
        args.quiet = True  # one progress bar, from process 0
    try:
        code = train()
        cluster.finish()
        return code
    except BaseException as e:  # noqa: BLE001 - every failure ends all processes with one line
        if isinstance(e, SystemExit):
            raise
        if isinstance(e, cluster.PeerLost):
            cluster.exit_now(e.code, f"vaekit train: {e}")
        if _is_lost_peer(e):
            cluster.exit_now(2, f"vaekit train: {cluster.lost_message()}")
        if isinstance(e, KeyboardInterrupt):
            line, code = str(e) or "interrupted", 128 + int(getattr(e, "signum", 2))
        else:
            line, code = error_line(e)
        cluster.post_failure(code, line)
        cluster.exit_now(code, f"vaekit train: process {me} of {n}: {line}")
        raise  # not reached: exit_now ends the process


def _is_lost_peer(e: BaseException) -> bool:
    """A collective that failed because another process went away (gloo, coordination service)."""
    text = str(e)
    return any(
        s in text
        for s in ("Gloo", "gloo", "Connection reset", "Connection closed", "heartbeat", "coordination service")
    )
