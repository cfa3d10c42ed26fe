"""`zhian verify` and `zhian export`: re-check a sealed run directory, or pack it for evaluators,
offline, years later."""

from __future__ import annotations

import argparse
from pathlib import Path

from zhian.errors import UsageError
from zhian.evidence.export import NOT_VERIFIED, export_pack
from zhian.evidence.keys import PUBLIC_FILE, default_key_dir, fingerprint, read_public
from zhian.evidence.verify import verify

EXIT_BROKEN = 1


def cmd_verify(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    trusted = read_public(args.trust) if args.trust else None
    result = verify(run_dir, trusted)
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


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", help="check a run's hash chain, signature and file hashes")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--trust", type=Path, metavar="PUBKEY", help="require this public key (ed25519.pub)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="write a self-contained evidence pack (ZIP) with an offline viewer")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--pack", type=Path, required=True, metavar="FILE.zip", help="where to write the pack")
    p.add_argument(
        "--force",
        action="store_true",
        help="export a run that does not verify, marked NOT-VERIFIED in the pack",
    )
    p.set_defaults(func=cmd_export)
