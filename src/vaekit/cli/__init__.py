"""The ``vaekit`` command line: ``vaekit <command> [options]``.

Each subcommand lives in its own module ``vaekit.cli.<command>`` with two functions:
``add_parser(subparsers)`` (registers the subcommand and sets ``func``) and the
``func(args) -> int`` it points to. Modules that do not exist are skipped.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from pathlib import Path

COMMANDS = ("train", "evaluate", "sample", "reconstruct", "report", "lattice", "interpolate", "score", "detect")

EXAMPLES = """\
examples:
  vaekit train --data digits --latent-dim 2 --epochs 30 --out runs/digits
  vaekit evaluate runs/digits --split test --iw-samples 5000
  vaekit sample runs/digits -n 64 --output samples.png
  vaekit report runs/digits
  vaekit detect --train normal.csv --input new.csv --output flagged.csv
"""


class CLIError(Exception):
    """An error the command line reports as one line, without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vaekit",
        description="Train, evaluate and use variational autoencoders.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from .._version import __version__

    parser.add_argument("--version", action="version", version=f"vaekit {__version__}")
    parser.add_argument("--no-compile-cache", action="store_true", help=_NO_CACHE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue
            raise
        mod.add_parser(sub)
    for p in sub.choices.values():  # also accepted after the command
        p.add_argument("--no-compile-cache", action="store_true", default=argparse.SUPPRESS, help=_NO_CACHE_HELP)
    return parser


_NO_CACHE_HELP = (
    "do not use the persistent JAX compilation cache (default: compiled programs are kept in "
    "$VAEKIT_COMPILE_CACHE_DIR or <cache folder>/jax, so a second run of the same configuration starts "
    "sooner; VAEKIT_COMPILE_CACHE=0 also turns it off)"
)


def compile_cache_dir() -> Path:
    """Where the command line keeps compiled programs: ``$VAEKIT_COMPILE_CACHE_DIR``, else
    ``jax`` in the vaekit cache folder (``$VAEKIT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/vaekit``, else ``~/.cache/vaekit``)."""
    d = os.environ.get("VAEKIT_COMPILE_CACHE_DIR")
    if d:
        return Path(d)
    root = os.environ.get("VAEKIT_CACHE_DIR")
    if root:
        return Path(root) / "jax"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "vaekit" / "jax"


def enable_compile_cache(disabled: bool = False) -> Path | None:
    """Turn on JAX's persistent compilation cache for this process; returns its folder, or
    None when it is off (``disabled``, ``VAEKIT_COMPILE_CACHE=0``, a cache folder set by
    the user through JAX's own ``JAX_COMPILATION_CACHE_DIR``, which is then used as is,
    or a folder that cannot be created: the cache is an optimisation, never an error)."""
    if disabled or os.environ.get("VAEKIT_COMPILE_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    import jax

    if jax.config.jax_compilation_cache_dir:  # configured by the user: leave it alone
        return None
    path = compile_cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    if not os.access(path, os.W_OK):
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    # the epoch programs take seconds to compile; the many small helpers (data checks,
    # key splits) a few tens of milliseconds, which adds up to seconds at start-up too
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.05)
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every failure ends in one line on stderr and a non-zero code:
    2 for errors (bad input, files, permissions, disk full), 1 for a diverged run,
    128 + the signal number when interrupted (130 for Ctrl-C, 143 for SIGTERM)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # this process writes its plots to files
    args = build_parser().parse_args(argv)
    prefix = f"vaekit {args.command}"
    try:
        # the program (argv from the command line) only: main([...]) called from Python,
        # e.g. by tests, leaves the process's JAX configuration alone
        enable_compile_cache(args.no_compile_cache or argv is not None)
        return int(args.func(args) or 0)
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", 2)
        print(f"{prefix}: {e}" if str(e) else f"{prefix}: interrupted", file=sys.stderr)
        return 128 + int(signum)
    except BaseException as e:  # noqa: BLE001 - one line, never a traceback
        if isinstance(e, SystemExit | GeneratorExit):
            raise
        if os.environ.get("VAEKIT_TRACEBACK"):
            raise
        msg, code = error_line(e)
        print(f"{prefix}: {msg}", file=sys.stderr)
        return code


#: errno -> what to do about it
_OS_FIXES = {
    errno.ENOSPC: "The disk is full: free some space or write somewhere else.",
    errno.EDQUOT: "The disk quota is exceeded: free some space or write somewhere else.",
    errno.EFBIG: "The file is larger than this system or process allows (ulimit -f): raise the limit or write somewhere else.",
    errno.EACCES: "Check the permissions of the folder, or choose another path.",
    errno.EPERM: "The file or folder may not be changed (permissions, or an immutable/read-only file system): choose another path.",
    errno.EROFS: "The file system is read-only: choose another path.",
    errno.ENOENT: "Check the path.",
    errno.EISDIR: "Give a file path, not a folder.",
    errno.ENOTDIR: "A part of the path is a file, not a folder: check the path.",
}


def error_line(e: BaseException) -> tuple[str, int]:
    """The one-line message and exit code for an exception raised by a command."""
    from ..training import TrainingDiverged
    from ..training.checkpoints import FolderInUseError

    notes = "".join(f" {n}" for n in getattr(e, "__notes__", None) or [])
    if isinstance(e, TrainingDiverged):
        return f"error: {e}", 1
    if isinstance(e, OSError) and e.errno is not None and e.strerror:  # from the system
        where = f"{e.filename}: " if e.filename else ""
        fix = _OS_FIXES.get(e.errno, "")
        return " ".join(f"error: {where}{e.strerror}. {fix}{notes}".split()), 2
    if isinstance(e, MemoryError):
        return "error: out of memory. Use less data (--limit), a smaller model or a smaller --batch-size.", 2
    msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else (str(e) or type(e).__name__)
    if isinstance(e, CLIError | ValueError | TypeError | OSError | KeyError | ImportError | FolderInUseError):
        return " ".join(f"error: {msg}{notes}".split()), 2
    first = msg.strip().splitlines()[0] if msg.strip() else ""
    return (
        " ".join(f"error: {type(e).__name__}: {first[:300]}{notes}".split())
        + " (set VAEKIT_TRACEBACK=1 to see where it happened)",
        2,
    )


if __name__ == "__main__":
    sys.exit(main())
