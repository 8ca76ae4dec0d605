"""Command line: `python -m dstl <command> ...` (contract in DESIGN.md §6).

Each command lives in its own module exposing `register(subparsers)`, which adds its parser and
sets `func` to a function taking the parsed arguments. `main` turns a `DstlError` (bad input)
into a one-line message on stderr and exit status 2, and Ctrl-C into status 130, never a
traceback; the message starts on a line of its own (`dstl.progress.print_error` closes any open
progress bar first). Outputs are written atomically by the commands, so a failure leaves no partial file.
"""

import argparse
import importlib

from dstl import __version__
from dstl.errors import DstlError
from dstl.progress import print_error

#: Modules under dstl.cli that provide a command, in the order `--help` lists them.
COMMAND_MODULES = ("synth", "labels", "rasterize", "polygons", "evaluate", "predict", "submit", "figure")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dstl",
        description="Find the ten DSTL object classes in 20-band satellite scenes.",
    )
    parser.add_argument("--version", action="version", version=f"dstl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"dstl.cli.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except DstlError as e:
        print_error(e)
        return 2
    except KeyboardInterrupt:
        print_error("interrupted")
        return 130
    return int(result or 0)
