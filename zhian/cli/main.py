"""The `zhian` command line: one sub-command per task, errors in one line with exit code 2.

Each family of commands lives in its own module, which imports what its commands need (the run
engine, the report renderers, the protocol libraries, PostgreSQL ...). `zhian X ...` imports the
module of X only: a config check does not pay for the simulator or the archive. `zhian --help` (or
anything that is not a known command) builds the whole tree.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from mapping.catalog import CatalogError
from zhian import __version__
from zhian.cli.help import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, SubParsers
from zhian.errors import UsageError

# module -> the commands it adds (in `zhian --help` order); each module has add_parser(sub)
FAMILIES: dict[str, tuple[str, ...]] = {
    "zhian.cli.standard": ("catalog", "score", "sample"),
    "zhian.cli.configcmd": ("config",),
    "zhian.cli.run": ("run",),
    "zhian.cli.report": ("report",),
    "zhian.cli.evidence": ("verify", "seal", "keys", "export"),
    "zhian.cli.monitor": ("monitor",),
    "zhian.cli.diff": ("diff",),
    "zhian.cli.sim": ("sim",),
    "zhian.cli.discover": ("discover",),
    "zhian.cli.archive": ("archive",),
}
MODULE_OF = {name: module for module, names in FAMILIES.items() for name in names}


def _add(sub: SubParsers, module: str) -> None:
    add: Callable[[SubParsers], None] = importlib.import_module(module).add_parser
    add(sub)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command tree, or (`only`, a command's name) the tree with that command alone."""
    parser = argparse.ArgumentParser(
        prog="zhian",
        description=(
            "Machine evidence and an auxiliary score (clause 7.2) under T/CREA 智慧住区安全防范安全评价标准"
        ),
    )
    parser.add_argument("--version", action="version", version=f"zhian {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in [MODULE_OF[only]] if only in MODULE_OF else FAMILIES:
        _add(sub, module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words else None)
    args = parser.parse_args(words)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (UsageError, CatalogError) as exc:
        for line in str(exc).splitlines() or [""]:
            print(f"zhian: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("zhian: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug still ends in one line; ZHIAN_TRACEBACK=1 shows where
        if os.environ.get("ZHIAN_TRACEBACK"):
            raise
        print(
            f"zhian: internal error: {type(exc).__name__}: {exc} (ZHIAN_TRACEBACK=1 shows where)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
