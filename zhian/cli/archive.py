"""`zhian archive`: push sealed runs into the PostgreSQL archive, re-verify them from it, read the
portfolio, serve it read-only, prune what is past its six years."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from zhian.archive import db
from zhian.archive.check import resolve_run, verify_stored
from zhian.archive.portfolio import CommunityDetail, CommunityRow, community, portfolio, resolve_community
from zhian.archive.prune import prune
from zhian.archive.push import Pushed, Refused, push
from zhian.archive.restore import export_stored
from zhian.archive.segments import StatePushed, is_state_dir, push_state
from zhian.archive.web import serve
from zhian.cli.help import CODES, EXIT_OK, EXIT_USAGE, add_key_dir, add_trust, command
from zhian.errors import UsageError
from zhian.evidence.keys import default_key_dir
from zhian.evidence.trust import TrustedKeys

EXIT_REFUSED = 1  # a run refused or not verified, as `zhian verify` says of a broken run


def cmd_push(args: argparse.Namespace) -> int:
    trust = TrustedKeys.of(args.trust or (), args.key_dir or default_key_dir())
    refused = 0
    with db.connect(db.database_url(args.db)) as conn:
        db.migrate(conn)
        for where in args.run_dirs:
            try:
                if is_state_dir(where):
                    _say_state(where, push_state(conn, where, trust))
                else:
                    _say(where, push(conn, where, trust))
            except Refused as exc:
                print(f"REFUSED: {exc}; nothing was written")
                refused += 1
    return EXIT_REFUSED if refused else 0


def _say(where: Path, pushed: Pushed) -> None:
    what = "stored" if pushed.new else "already archived"
    print(
        f"{where}: {what} as #{pushed.id} (run {pushed.run_id}, {pushed.community};"
        f" {pushed.records} records, {pushed.files} files; manifest {pushed.manifest_sha256[:16]}…)"
    )


def _say_state(where: Path, result: StatePushed) -> None:
    new = [p for p in result.segments if p.new]
    for pushed in new:
        _say(where, pushed)
    before = len(result.segments) - len(new)
    tail = f"; the open segment {result.open_segment} is left for a later push" if result.open_segment else ""
    print(f"{where}: {len(new)} segments stored, {before} already archived{tail}")


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


def cmd_export(args: argparse.Namespace) -> int:
    with db.connect(db.database_url(args.db), read_only=True) as conn:
        db.require_schema(conn)
        run = resolve_run(conn, args.id)
        built = export_stored(conn, run, args.pack)
    print(f"{args.pack}: the evidence pack of archive #{run}, rebuilt from the database")
    print(f"  {built.size} bytes, sha256 {built.sha256}; verified: chain, signature, every file")
    return 0


def _json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _label_text(row: CommunityRow) -> str:
    lb = row.label
    if lb is None:
        return "no graded run"
    by = "" if lb.graded_by == "evaluator" else " (machine proposal)"
    head = f"grade {lb.grade}{by} awarded {lb.awarded_on}"
    if lb.expired:
        return f"{head}; label EXPIRED {lb.valid_until}"
    due = f"next re-check {lb.next_recheck}" if lb.next_recheck else "no re-check left: renew before it ends"
    overdue = f"; re-check OVERDUE since {lb.recheck_overdue}" if lb.recheck_overdue else ""
    return f"{head}; valid until {lb.valid_until}; {due}{overdue}"


def cmd_list(args: argparse.Namespace) -> int:
    with db.connect(db.database_url(args.db), read_only=True) as conn:
        db.require_schema(conn)
        rows = portfolio(conn, args.as_of)
    if args.format == "json":
        _json({"as_of": args.as_of.isoformat(), "communities": [r.as_dict() for r in rows]})
        return 0
    for r in rows:
        degraded = f"; {r.degraded} indicators DEGRADED since the graded run" if r.degraded else ""
        print(f"#{r.id} {r.name} ({r.operator or 'operator unknown'}): {r.runs} runs")
        print(
            f"    latest {r.latest_kind} #{r.latest} {r.latest_run_id} sealed {r.latest_sealed_at:%Y-%m-%d},"
            f" grade {r.latest_grade or '-'}"
        )
        print(f"    {_label_text(r)}{degraded}")
    print(f"{len(rows)} communities (as of {args.as_of})")
    return 0


def _show_text(detail: CommunityDetail) -> None:
    c = detail.community
    print(f"#{c.id} {c.name} ({c.operator or 'operator unknown'})")
    print(f"label: {_label_text(c)}")
    print("runs:")
    for r in detail.runs:
        grade = f"grade {r.grade} ({r.graded_by})" if r.grade else "no grade"
        cut = " INTERRUPTED" if r.interrupted else ""
        print(
            f"  #{r.id} {r.kind} {r.run_id} sealed {r.sealed_at:%Y-%m-%d %H:%M}Z, level {r.level_applied},"
            f" {grade}, {r.records} records, signed by {r.signer}{cut}"
        )
    if detail.older_segments:
        print(f"  and {detail.older_segments} older monitor segments")
    print("grade history:")
    for r in detail.grade_history:
        print(f"  {r.awarded_on}  {r.grade}  (#{r.id}, {r.graded_by})")
    print(
        f"open problems (latest {c.latest_kind} #{c.latest}):" if detail.problems else "open problems: none"
    )
    for p in detail.problems:
        devices = ", ".join(p.devices) or "no device finding"
        print(
            f"  {p.indicator} ({p.level}) {p.status}: {devices}"
            + (f" [{', '.join(p.reasons)}]" if p.reasons else "")
        )
    if detail.degraded:
        graded = c.label.run if c.label else "?"
        print(f"degraded since the graded run #{graded} (by the latest {c.latest_kind} #{c.latest}):")
        for d in detail.degraded:
            since = f" since {d.since:%Y-%m-%d %H:%M}Z" if d.since else ""
            print(f"  {d.indicator}: {d.before} -> {d.now}{since}")


def cmd_show(args: argparse.Namespace) -> int:
    with db.connect(db.database_url(args.db), read_only=True) as conn:
        db.require_schema(conn)
        detail = community(conn, resolve_community(conn, args.community), args.as_of)
    if args.format == "json":
        _json({"as_of": args.as_of.isoformat(), **detail.as_dict()})
    else:
        _show_text(detail)
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    with db.connect(db.database_url(args.db)) as conn:
        db.migrate(conn)
        result = prune(conn, args.before, date.today(), dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for r in result.runs:
        print(f"{verb} #{r.id} {r.community} {r.run_id} sealed {r.sealed_at:%Y-%m-%d}")
    print(
        f"{verb} {len(result.runs)} runs sealed before {args.before}"
        f" and {result.blobs} stored files no other run names"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"archive serve: --listen {args.listen!r}: give HOST:PORT (e.g. 127.0.0.1:8080)")
    url = db.database_url(args.db)
    with db.connect(url, read_only=True) as conn:
        db.require_schema(conn)
    try:
        asyncio.run(
            serve(
                url,
                host.strip("[]"),
                int(port),
                lambda at: print(f"serving the portfolio read-only on {at}", flush=True),
            )
        )
    except OSError as exc:
        raise UsageError(f"archive serve: cannot listen on {args.listen} ({exc.strerror or exc})") from None
    print("stopped")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _db_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--db", metavar="URL", help=f"postgresql://user@host:port/dbname (default: ${db.ENV})")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("archive", help="the evidence archive on PostgreSQL: push, verify, portfolio")
    archive = parser.add_subparsers(dest="archive_command", required=True)

    p = command(
        archive,
        "push",
        "verify sealed runs (and a monitor's sealed segments) and store each in one transaction",
        [
            ("zhian archive push runs/demo/run --db postgresql://zhian@db/zhian", ""),
            ("zhian archive push runs/* --trust body-ed25519.pub", "also accept the body's key"),
            ("zhian archive push /var/lib/zhian/site", "a monitor's --state: every sealed segment"),
        ],
        {
            EXIT_OK: CODES[EXIT_OK],
            EXIT_REFUSED: "a run was refused (nothing of it written)",
            EXIT_USAGE: CODES[EXIT_USAGE],
        },
    )
    p.add_argument(
        "run_dirs", nargs="+", type=Path, metavar="DIR", help="sealed runs or monitor state directories"
    )
    _db_option(p)
    add_trust(p)
    add_key_dir(p, "the machine whose key push trusts")
    p.set_defaults(func=cmd_push)

    p = command(
        archive,
        "verify",
        "re-verify a stored run from the database alone",
        [("zhian archive verify 12", "by archive number; a run id or manifest sha256 prefix works too")],
        {
            EXIT_OK: CODES[EXIT_OK],
            EXIT_REFUSED: "the stored run does not verify",
            EXIT_USAGE: CODES[EXIT_USAGE],
        },
    )
    p.add_argument("id", metavar="ID", help="archive number, run id or manifest sha256 (prefix)")
    _db_option(p)
    p.set_defaults(func=cmd_verify)

    p = command(
        archive,
        "export",
        "a stored run's evidence pack, rebuilt from the database alone (as `zhian export` makes it)",
        [("zhian archive export 12 --out 12.zip", "then `zhian verify` its run/, or open viewer.html")],
        {
            EXIT_OK: CODES[EXIT_OK],
            EXIT_USAGE: "no such run, or it no longer verifies (no pack written)",
        },
    )
    p.add_argument("id", metavar="ID", help="archive number, run id or manifest sha256 (prefix)")
    p.add_argument("--out", dest="pack", type=Path, required=True, metavar="PACK", help="the ZIP to write")
    _db_option(p)
    p.set_defaults(func=cmd_export)

    for name, text, func in (
        ("list", "communities: latest run, grade, label validity, next re-check, degradation", cmd_list),
        ("show", "one community: its runs, grade history, open problems, degradation", cmd_show),
    ):
        example = "zhian archive list --as-of 2027-01-01" if name == "list" else "zhian archive show 翠湖苑"
        p = command(archive, name, text, [(example, "")])
        if name == "show":
            p.add_argument("community", metavar="COMMUNITY", help="its archive number or exact name")
        _db_option(p)
        p.add_argument("--format", choices=("table", "json"), default="table", help="table (default) or json")
        p.add_argument(
            "--as-of",
            type=_date,
            default=date.today(),
            metavar="DATE",
            help="judge dates as of DATE (default today)",
        )
        p.set_defaults(func=func)

    p = command(
        archive,
        "serve",
        "the portfolio as a read-only web site, with each run's evidence pack to download",
        [
            (
                "zhian archive serve --listen 127.0.0.1:8080",
                "then open the address it prints",
            )
        ],
    )
    _db_option(p)
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="default 127.0.0.1:8080")
    p.set_defaults(func=cmd_serve)

    p = command(
        archive,
        "prune",
        "delete runs sealed before DATE; never any younger than 6 years (4.9)",
        [("zhian archive prune --before 2020-01-01 --dry-run", "what would go, deleting nothing")],
    )
    _db_option(p)
    p.add_argument(
        "--before", type=_date, required=True, metavar="DATE", help="delete runs sealed before DATE"
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    p.set_defaults(func=cmd_prune)
