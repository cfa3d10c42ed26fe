"""`--help` for every command in one shape: what it does, examples, and the exit codes a script sees.

Exit codes are shared by all commands: 0 done, 1 evidence that does not verify, 2 bad input (one
line on stderr), 3 the condition of `--fail-on` holds, 130 interrupted (what was collected is kept).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TypeAlias

EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_FAIL_ON, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

CODES: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_BROKEN: "the evidence does not verify (chain, signature or a file)",
    EXIT_USAGE: "bad input: one line on stderr names the file, option or key",
    EXIT_FAIL_ON: "the --fail-on condition holds (the reason is printed on stderr)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGTERM); what was collected is kept",
}

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def command(
    sub: SubParsers,
    name: str,
    summary: str,
    examples: Sequence[tuple[str, str]],
    codes: dict[int, str] | Sequence[int] = (EXIT_OK, EXIT_USAGE),
    description: str | None = None,
) -> argparse.ArgumentParser:
    """A sub-command whose --help ends with its examples and exit codes."""
    width = max(len(cmd) for cmd, _ in examples)
    lines = ["examples:"] + [f"  {cmd:<{width}}  # {why}" if why else f"  {cmd}" for cmd, why in examples]
    meanings = codes if isinstance(codes, dict) else {c: CODES[c] for c in codes}
    lines += ["", "exit codes:"] + [f"  {code:<3} {text}" for code, text in meanings.items()]
    return sub.add_parser(
        name,
        help=summary,
        description=description or summary,
        epilog="\n".join(lines) + "\n",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
