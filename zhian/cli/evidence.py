"""`zhian verify` and `zhian export`: re-check a sealed run directory, or pack it for evaluators,
offline, years later."""

from __future__ import annotations

import argparse
from pathlib import Path

from zhian.cli.help import CODES, EXIT_BROKEN, EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.errors import UsageError
from zhian.evidence.export import NOT_VERIFIED, export_pack
from zhian.evidence.keys import PUBLIC_FILE, default_key_dir, fingerprint, read_public
from zhian.evidence.segments import SEGMENTS_DIR, is_segment, verify_chain, verify_segment
from zhian.evidence.verify import Verification, verify


def cmd_verify(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    trusted = read_public(args.trust) if args.trust else None
    if (run_dir / SEGMENTS_DIR).is_dir():
        return verify_monitor(run_dir, trusted)
    result = verify_segment(run_dir, trusted) if is_segment(run_dir) else verify(run_dir, trusted)
    return show(run_dir, result)


def show(run_dir: Path, result: Verification) -> int:
    holds = "the chain holds up to record" if result.broken else "ledger records"
    print(f"{run_dir}: {holds} {result.records}, chain head {result.chain_head[:16]}…")
    if result.signed_by:
        local = default_key_dir() / PUBLIC_FILE
        mine = local.is_file() and fingerprint(read_public(local)) == result.signed_by
        print(f"signed by {result.signed_by}" + (" (this machine's key)" if mine else ""))
    for problem in result.problems:
        print(f"BROKEN: {problem}")
    print("verified: chain, signature and every file hold" if result.ok else "NOT verified")
    return 0 if result.ok else EXIT_BROKEN


def verify_monitor(state_dir: Path, trusted: bytes | None) -> int:
    """A monitor's state directory: every segment, and the links between them."""
    check = verify_chain(state_dir, trusted)
    signers = sorted({v.signed_by for _, v in check.segments if v.signed_by})
    print(f"{state_dir}: {len(check.segments)} segments, {check.records} ledger records")
    if signers:
        print("signed by " + ", ".join(signers))
    for name, result in check.segments:
        for problem in result.problems:
            print(f"BROKEN: {name}: {problem}")
    for problem in check.links:
        print(f"BROKEN: {problem}")
    print("verified: every segment and the chain across them hold" if check.ok else "NOT verified")
    return 0 if check.ok else EXIT_BROKEN


def cmd_export(args: argparse.Namespace) -> int:
    pack = export_pack(args.run_dir, args.pack, force=args.force)
    print(f"{pack.path}: {pack.size} bytes, sha256 {pack.sha256}")
    if pack.verification.ok:
        print("verified before export: chain, signature and every file hold; open viewer.html in the pack")
        return 0
    for problem in pack.verification.problems:
        print(f"BROKEN: {problem}")
    print(f"NOT verified: exported anyway (--force), marked by {NOT_VERIFIED} and the viewer's banner")
    return EXIT_BROKEN


def add_parsers(sub: SubParsers) -> None:
    p = command(
        sub,
        "verify",
        "check a run's (or a monitor's: every segment, or one) hash chain, signature and file hashes",
        [
            ("zhian verify runs/demo/run", "with the key the manifest names"),
            ("zhian verify RUN --trust body-ed25519.pub", "require the evaluation body's published key"),
            ("zhian verify monitor-state/", "every segment of a monitor"),
        ],
        (EXIT_OK, EXIT_BROKEN, EXIT_USAGE),
    )
    p.add_argument("run_dir", type=Path, metavar="DIR", help="a run, a monitor's --state, or one segment")
    p.add_argument("--trust", type=Path, metavar="PUBKEY", help="require this public key (ed25519.pub)")
    p.set_defaults(func=cmd_verify)

    p = command(
        sub,
        "export",
        "write a self-contained evidence pack (ZIP) with an offline viewer",
        [
            ("zhian export runs/demo/run --pack pack.zip", "refused if the run does not verify"),
            ("zhian export RUN --pack pack.zip --force", "pack it anyway, marked NOT-VERIFIED"),
        ],
        {
            EXIT_OK: CODES[EXIT_OK],
            EXIT_BROKEN: "packed with --force although it does not verify",
            EXIT_USAGE: CODES[EXIT_USAGE],
        },
    )
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a directory written by `zhian run`")
    p.add_argument("--pack", type=Path, required=True, metavar="FILE.zip", help="where to write the pack")
    p.add_argument(
        "--force",
        action="store_true",
        help="export a run that does not verify, marked NOT-VERIFIED in the pack",
    )
    p.set_defaults(func=cmd_export)
