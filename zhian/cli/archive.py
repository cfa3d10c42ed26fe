"""`zhian archive`: push sealed runs into the PostgreSQL archive, re-verify them from it, read the
portfolio, serve it read-only, prune what is past its six years."""

from __future__ import annotations

import argparse
from pathlib import Path

from zhian.archive import db
from zhian.archive.check import resolve_run, verify_stored
from zhian.archive.push import Refused, push
from zhian.evidence.keys import default_key_dir
from zhian.evidence.trust import TrustedKeys

EXIT_REFUSED = 1  # a run refused or not verified, as `zhian verify` says of a broken run


def cmd_push(args: argparse.Namespace) -> int:
    trust = TrustedKeys.of(args.trust or (), args.key_dir or default_key_dir())
    refused = 0
    with db.connect(db.database_url(args.db)) as conn:
        db.migrate(conn)
        for run_dir in args.run_dirs:
            try:
                pushed = push(conn, run_dir, trust)
            except Refused as exc:
                print(f"REFUSED: {exc}; nothing was written")
                refused += 1
                continue
            what = "stored" if pushed.new else "already archived"
            print(
                f"{run_dir}: {what} as #{pushed.id} (run {pushed.run_id}, {pushed.community};"
                f" {pushed.records} records, {pushed.files} files; manifest {pushed.manifest_sha256[:16]}…)"
            )
    return EXIT_REFUSED if refused else 0


def cmd_verify(args: argparse.Namespace) -> int:
    with db.connect(db.database_url(args.db), read_only=True) as conn:
        db.require_schema(conn)
        run = resolve_run(conn, args.id)
        result = verify_stored(conn, run)
    holds = "the chain holds up to record" if result.broken else "ledger records"
    print(f"archive #{run}: {holds} {result.records}, chain head {result.chain_head[:16]}…")
    if result.signed_by:
        print(f"signed by {result.signed_by}")
    for problem in result.problems:
        print(f"BROKEN: {problem}")
    print(
        "verified from the database: chain, signature and every stored file hold"
        if result.ok
        else "NOT verified"
    )
    return 0 if result.ok else EXIT_REFUSED


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help=f"postgresql://user@host:port/dbname (default: ${db.ENV})")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("archive", help="the evidence archive on PostgreSQL: push, verify, portfolio")
    archive = parser.add_subparsers(dest="archive_command", required=True)

    p = archive.add_parser("push", help="verify sealed run directories and store each in one transaction")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="DIR")
    _db_option(p)
    p.add_argument(
        "--trust",
        type=Path,
        action="append",
        metavar="PUB",
        help="also accept runs signed by this public key (ed25519.pub); repeatable. This machine's own"
        " key is always accepted",
    )
    p.add_argument("--key-dir", type=Path, help="where this machine's key is (default: $ZHIAN_KEY_DIR)")
    p.set_defaults(func=cmd_push)

    p = archive.add_parser("verify", help="re-verify a stored run from the database alone")
    p.add_argument("id", metavar="ID", help="archive number, run id or manifest sha256 (prefix)")
    _db_option(p)
    p.set_defaults(func=cmd_verify)
