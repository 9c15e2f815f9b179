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
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; every failure ends in one line on stderr and a non-zero code:
    2 for errors (bad input, files, permissions, disk full), 1 for a diverged run,
    128 + the signal number when interrupted (130 for Ctrl-C, 143 for SIGTERM)."""
    os.environ.setdefault("MPLBACKEND", "Agg")  # this process writes its plots to files
    args = build_parser().parse_args(argv)
    prefix = f"vaekit {args.command}"
    try:
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
