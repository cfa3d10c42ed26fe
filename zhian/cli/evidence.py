"""`zhian verify` and `zhian export`: re-check a sealed run directory, or pack it for evaluators,
offline, years later."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from zhian.cli.help import (
    CODES,
    EXIT_BROKEN,
    EXIT_OK,
    EXIT_UNSEALED,
    EXIT_UNTRUSTED,
    EXIT_USAGE,
    SubParsers,
    add_key_dir,
    add_trust,
    command,
)
from zhian.engine.recover import REASON, recover
from zhian.errors import UsageError
from zhian.evidence.export import NOT_VERIFIED, export_pack
from zhian.evidence.keys import read_public
from zhian.evidence.segments import SEGMENTS_DIR, is_segment, verify_chain, verify_segment
from zhian.evidence.trust import TrustDecision, decide, keyring, trust_key
from zhian.evidence.verify import Verification, verify


def cmd_verify(args: argparse.Namespace) -> int:
    run_dir: Path = args.run_dir
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    pinned = [read_public(path) for path in args.trust or ()]

    def trust(signer: bytes) -> TrustDecision:
        return decide(signer, pinned=pinned, key_dir=args.key_dir)

    if (run_dir / SEGMENTS_DIR).is_dir():
        return verify_monitor(run_dir, trust)
    result = verify_segment(run_dir) if is_segment(run_dir) else verify(run_dir)
    return show(run_dir, result, trust)


def show(run_dir: Path, result: Verification, trust: Callable[[bytes], TrustDecision]) -> int:
    if result.unsealed:
        print(f"{run_dir}: {result.records} records, chain valid, not sealed")
        print(f"NOT sealed: the run stopped before its seal; `zhian seal --recover {run_dir}` seals it")
        return EXIT_UNSEALED
    holds = "the chain holds up to record" if result.broken else "ledger records"
    print(f"{run_dir}: {holds} {result.records}, chain head {result.chain_head[:16]}…")
    decision = trust(result.signer_raw) if result.signer_raw else None
    if decision:
        print(decision.line())
    for problem in result.listed():
        print(f"BROKEN: {problem}")
    if not result.ok:
        print("NOT verified")
        return EXIT_BROKEN
    if decision is None or not decision.trusted:
        print("NOT trusted: chain, signature and every file hold, but the signer is not a trusted key")
        print("(add it with `zhian keys trust FILE.pub` once you know whose it is, or give --trust FILE.pub)")
        return EXIT_UNTRUSTED
    print("verified: chain, signature and every file hold; the signer is trusted")
    return EXIT_OK


def cmd_seal(args: argparse.Namespace) -> int:
    run_dir: Path = args.recover
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: not a run directory")
    result = verify(run_dir)
    if result.problems and not result.sealed:
        for problem in result.problems:
            print(f"BROKEN: {problem}")
        print("NOT recovered: only a chain that holds is sealed")
        return EXIT_BROKEN
    done = recover(run_dir, key_dir=args.key_dir, reason=args.reason or REASON, lang=args.lang)
    print(
        f"{run_dir}: recovered {done.records} records ({done.findings} findings, {done.exchanges} "
        f"exchanges), sealed by {done.signer}; the manifest says recovered: true"
    )
    if done.report:
        print(f"report: {done.report}")
    if done.report_problem:
        print(
            f"zhian: the report could not be written ({done.report_problem}); sealed without it",
            file=sys.stderr,
        )
    return EXIT_OK


def cmd_keys_trust(args: argparse.Namespace) -> int:
    key = trust_key(args.public_file, args.key_dir)
    print(f"trusted {key.fingerprint} (kept as {key.path})")
    return EXIT_OK


def cmd_keys_list(args: argparse.Namespace) -> int:
    keys = keyring(args.key_dir)
    if not keys:
        print("no trusted key yet: this machine's key is made by its first `zhian run`")
    for key in keys:
        print(f"{key.fingerprint}  {key.source}  {key.path}")
    return EXIT_OK


def verify_monitor(state_dir: Path, trust: Callable[[bytes], TrustDecision]) -> int:
    """A monitor's state directory: every segment, and the links between them."""
    check = verify_chain(state_dir)
    signers = {v.signer_raw: trust(v.signer_raw) for _, v in check.segments if v.signer_raw}
    print(f"{state_dir}: {len(check.segments)} segments, {check.records} ledger records")
    for decision in signers.values():
        print(decision.line())
    for name, result in check.segments:
        for problem in result.listed():
            print(f"BROKEN: {name}: {problem}")
    for problem in check.links:
        print(f"BROKEN: {problem}")
    if not check.ok:
        print("NOT verified")
        return EXIT_BROKEN
    if not all(d.trusted for d in signers.values()):
        print("NOT trusted: every segment holds, but a signer is not a trusted key")
        return EXIT_UNTRUSTED
    print("verified: every segment and the chain across them hold; the signers are trusted")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    pack = export_pack(args.run_dir, args.pack, force=args.force)
    print(f"{pack.path}: {pack.size} bytes, sha256 {pack.sha256}")
    if pack.verification.ok:
        print("verified before export: chain, signature and every file hold; open viewer.html in the pack")
        return 0
    for problem in pack.verification.listed():
        print(f"BROKEN: {problem}")
    print(f"NOT verified: exported anyway (--force), marked by {NOT_VERIFIED} and the viewer's banner")
    return EXIT_BROKEN


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "verify",
        "check a run's (or a monitor's: every segment, or one) hash chain, signature and file hashes",
        [
            ("zhian verify runs/demo/run", "signed by this machine's key or one of its keyring"),
            ("zhian verify RUN --trust body-ed25519.pub", "also trust the evaluation body's published key"),
            ("zhian verify monitor-state/", "every segment of a monitor"),
        ],
        (EXIT_OK, EXIT_BROKEN, EXIT_USAGE, EXIT_UNSEALED, EXIT_UNTRUSTED),
    )
    p.add_argument("run_dir", type=Path, metavar="DIR", help="a run, a monitor's --state, or one segment")
    add_trust(p)
    add_key_dir(p)
    p.set_defaults(func=cmd_verify)

    p = command(
        sub,
        "seal",
        "seal what a killed run kept (its chain must hold), marked recovered",
        [
            ("zhian seal --recover runs/2026-12", "after a kill, a power cut or a full disk"),
            ("zhian seal --recover RUN --reason 'power cut at 14:02'", "say why in the manifest"),
        ],
        (EXIT_OK, EXIT_BROKEN, EXIT_USAGE),
    )
    p.add_argument(
        "--recover", type=Path, required=True, metavar="RUN_DIR", help="the unsealed run directory"
    )
    p.add_argument("--reason", help="why the run was not sealed (kept in the manifest, run.json and report)")
    add_key_dir(p)
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="language of the report")
    p.set_defaults(func=cmd_seal)

    p = command(
        sub,
        "keys",
        "the keys `zhian verify` trusts: this machine's own and its keyring",
        [
            ("zhian keys trust colleague-ed25519.pub", "trust runs sealed by this key from now on"),
            ("zhian keys list", "fingerprints of this machine's key and the keyring"),
        ],
    )
    keys_sub = p.add_subparsers(dest="keys_command", required=True)
    k = command(
        keys_sub,
        "trust",
        "add a public key (ed25519.pub) to the keyring",
        [("zhian keys trust colleague-ed25519.pub", "compare its fingerprint with its owner's first")],
    )
    k.add_argument("public_file", type=Path, metavar="FILE.pub", help="the base64 line zhian writes")
    add_key_dir(k)
    k.set_defaults(func=cmd_keys_trust)
    k = command(
        keys_sub,
        "list",
        "list the trusted keys with their fingerprints",
        [("zhian keys list", "this machine's key first, then the keyring")],
    )
    add_key_dir(k)
    k.set_defaults(func=cmd_keys_list)

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
