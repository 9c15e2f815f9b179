"""The ``vaekit`` command line: ``vaekit <command> [options]``.

Each subcommand lives in its own module ``vaekit.cli.<command>`` with two functions:
``add_parser(subparsers)`` (registers the subcommand and sets ``func``) and the
``func(args) -> int`` it points to. Modules that do not exist are skipped.
"""

from __future__ import annotations

import argparse
import importlib
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
    from .. import __version__

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
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, TypeError, FileNotFoundError, FileExistsError, KeyError, ImportError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"vaekit {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vaekit {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
