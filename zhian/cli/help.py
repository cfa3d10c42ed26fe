"""`--help` for every command in one shape: what it does, examples, and the exit codes a script sees.

Exit codes are shared by all commands (README "Exit codes" lists them the same way): 0 done, 1
evidence that does not verify, 2 bad input (one line on stderr), 3 the condition of `--fail-on`
holds, 4 a run kept whole but never sealed, 5 a valid seal by an untrusted key, 6 the disk filled
during a run, 7 a step after the probes failed, 130 / 143 stopped by SIGINT / SIGTERM.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_FAIL_ON = 0, 1, 2, 3
EXIT_UNSEALED, EXIT_UNTRUSTED, EXIT_NO_SPACE, EXIT_FAILED = 4, 5, 6, 7
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143

CODES: dict[int, str] = {
    EXIT_OK: "done",
    EXIT_BROKEN: "the evidence does not verify (chain, signature or a file)",
    EXIT_USAGE: "bad input: one line on stderr per problem names the file, option or key",
    EXIT_FAIL_ON: "the --fail-on condition holds (the reason is printed on stderr)",
    EXIT_UNSEALED: "every record kept holds, but the run was never sealed (`zhian seal --recover`)",
    EXIT_UNTRUSTED: "intact and validly signed, by a key this machine does not trust (`zhian keys`)",
    EXIT_NO_SPACE: "the disk filled (or evidence could not be written); what was written is kept",
    EXIT_FAILED: "a step after the probes failed (the report); the evidence is sealed without it",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); the site restored, what was collected kept and sealed",
    EXIT_TERMINATED: "terminated (SIGTERM); the site restored, what was collected kept and sealed",
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


def add_key_dir(parser: argparse.ArgumentParser, use: str = "") -> None:
    """`--key-dir`, worded once for every command that signs or trusts."""
    where = "the signing key and its keyring (default: ZHIAN_KEY_DIR, else ~/.local/share/zhian/keys)"
    parser.add_argument("--key-dir", type=Path, help=where + (f"; {use}" if use else ""))


def add_trust(parser: argparse.ArgumentParser) -> None:
    """`--trust`, as `zhian verify` and `zhian archive push` both take it (evidence/trust.py decides)."""
    parser.add_argument(
        "--trust",
        type=Path,
        action="append",
        metavar="PUBKEY",
        help="also trust this public key (ed25519.pub; repeatable), beside this machine's and its keyring",
    )
