"""Benchmark of the evidence archive on a throwaway PostgreSQL cluster: the push rate for runs of the
large site's size, and the portfolio's query time with 1,000 communities.

Push: `--runs` sealed run directories, each with `--records` ledger records (exchanges with 2 kB
replies, every 50th with an 8 kB raw artefact, and one finding per 5 exchanges), all distinct; each
is pushed by `zhian archive push`'s own code (verify the directory, build its report, copy records,
findings, verdicts and files in one transaction). The ledgers are written in one SQLite transaction
each to make the fixture quick; they are the real format and must verify, since push refuses any
that does not. A second process writes each run ahead of its push (untimed; at most two ahead) and
each is removed after its push, so 100 runs need little disk. Then one run is re-verified and
exported from the database alone.
Portfolio: two real pushed runs are copied in SQL to `--communities` communities of three runs each
(older, graded, later) and `--segments` monitor segments after them, with all their verdicts, then
the portfolio query and the served page `/` are timed. The machine is shared: the 1-minute load
average is given beside each figure. Prints one JSON line; exits non-zero when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import yaml
from aiohttp import web

from mapping.catalog import load_catalog
from scorer.results import merge_verdicts
from scorer.score import score
from tests.postgres import cluster
from zhian.archive import db
from zhian.archive.check import verify_stored
from zhian.archive.portfolio import portfolio
from zhian.archive.push import push
from zhian.archive.restore import export_stored
from zhian.archive.web import build_app
from zhian.evidence.chain import GENESIS, canonical, sha256
from zhian.evidence.keys import load_or_create
from zhian.evidence.ledger import ARTEFACTS_DIR, open_ledger
from zhian.evidence.manifest import seal
from zhian.evidence.storage import LEDGER_FILE
from zhian.evidence.trust import TrustedKeys

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
AHEAD = 2  # runs written ahead of the push


def write_run(run_dir: Path, n: int, records: int, reply: str) -> int:
    """A sealed run of `records` ledger records; returns how many."""
    run_dir.mkdir(parents=True)
    ledger = open_ledger(run_dir, run_id=f"bench-{n}")
    artefacts = run_dir / ARTEFACTS_DIR
    artefacts.mkdir()
    rows: list[tuple[Any, ...]] = []
    findings: list[str] = []
    prev, at = GENESIS, T0.isoformat()
    for seq in range(1, records + 1):
        device = f"cam-{seq % 1000:04d}"
        common = {"seq": seq, "prev_hash": prev, "probe": "retention", "device": device, "started_at": at}
        if seq % 6 == 0:  # a finding on the exchange before it
            finding = {
                "status": "fail" if seq % 12 else "pass",
                "reason": "retention_short",
                "detail": f"{device}: 12 days of 90",
                "evidence": [f"x{n}-{seq - 1}"],
                "finished_at": at,
                "indicators": ["A2.3.4"],
            }
            body = common | finding | {"kind": "finding", "id": f"f{n}-{seq}", "run_id": f"bench-{n}"}
            findings.append(json.dumps({k: body[k] for k in ("probe", "device", "started_at", *finding)}))
        else:
            raw = f"{n}/{seq} ".encode() + reply.encode() * 4 if seq % 50 == 0 else None
            body = common | {
                "kind": "exchange",
                "id": f"x{n}-{seq}",
                "run_id": f"bench-{n}",
                "method": {"protocol": "onvif", "operation": "FindRecordings", "address": "127.30.0.1:8000"},
                "request": "<tse:FindRecordings/>",
                "response": reply,
                "ok": True,
            }
            if raw:
                (artefacts / sha256(raw)).write_bytes(raw)
                body |= {"raw_sha256": sha256(raw), "raw_size": len(raw)}
        data = canonical(body)
        digest = sha256(data)
        rows.append((seq, body["id"], body["kind"], "retention", device, at, data, digest, prev))
        prev = digest
    db_file = sqlite_of(run_dir)
    with db_file:
        db_file.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db_file.close()
    ledger.close()
    (run_dir / "findings.jsonl").write_text("\n".join(findings) + "\n", encoding="utf-8")
    (run_dir / "verdicts.yaml").write_text(yaml.safe_dump({"verdicts": {}}), encoding="utf-8")
    catalog = load_catalog()
    report = score(catalog, merge_verdicts((i.id for i in catalog), [{}]), "gt")
    (run_dir / "score.json").write_text(json.dumps(report.as_dict()), encoding="utf-8")
    meta = {"schema": "zhian.run/1", "run_id": f"bench-{n}", "tool": "zhian bench",
            "community": {"name": f"大型小区 {n % 10}", "operator": "某物业", "target_level": "A"},
            "started_at": T0.isoformat(), "finished_at": (T0 + timedelta(minutes=30)).isoformat(),
            "levels": ["A", "B", "C"], "threshold": "gt"}  # fmt: skip
    (run_dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    seal(run_dir, load_or_create(run_dir.parent / "keys"), meta)
    return records


def sqlite_of(run_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(run_dir / LEDGER_FILE)


COMMUNITIES = (
    "INSERT INTO communities (name, operator) SELECT '小区 ' || g, '物业 ' || (g %% 40)"
    " FROM generate_series(1, %(n)s) g"
)
# Three runs per community, copied from the two real ones: older (k=0) and graded (k=1) from `graded`,
# the later one (k=2) from `later`; dates spread so that labels and re-checks differ.
RUNS = """
INSERT INTO runs (manifest_sha256, kind, run_id, community_id, level_applied, grade, threshold,
                  interrupted, started_at, finished_at, sealed_at, awarded_on, graded_by, manifest,
                  signature, signer)
SELECT encode(sha256((c.id || '/' || k || '/' || r.id)::bytea), 'hex'), r.kind,
       'copy-' || c.id || '-' || k, c.id, r.level_applied, r.grade, r.threshold, r.interrupted,
       r.started_at, r.finished_at,
       r.sealed_at - make_interval(days => 400 * (2 - k) + (c.id %% 300)::int),
       r.awarded_on - (c.id %% 300)::int, r.graded_by, r.manifest, r.signature, r.signer
FROM communities c CROSS JOIN generate_series(0, 2) k
JOIN runs r ON r.id = CASE WHEN k = 2 THEN %(later)s ELSE %(graded)s END
WHERE c.name LIKE '小区 %%'
"""
VERDICTS = """
INSERT INTO verdicts (run, indicator, level, status, awarded, max)
SELECT n.id, v.indicator, v.level, v.status, v.awarded, v.max
FROM runs n JOIN verdicts v ON v.run = CASE WHEN n.run_id LIKE 'copy-%%-2' THEN %(later)s ELSE %(graded)s END
WHERE n.run_id LIKE 'copy-%%'
"""
# `segments` monitor segments per community, a day apart after its later run, each with the later
# run's verdicts (so the latest view of every community is a segment, degraded as the later run is).
SEGMENTS = """
INSERT INTO runs (manifest_sha256, kind, run_id, community_id, level_applied, interrupted, started_at,
                  finished_at, sealed_at, manifest, signature, signer, monitor_id, segment_index,
                  chain_start)
SELECT encode(sha256((c.id || '/segment/' || s)::bytea), 'hex'), 'segment', 'monitor-' || c.id || '/' || s,
       c.id, r.level_applied, false, r.started_at, r.finished_at,
       r.sealed_at - make_interval(days => (c.id %% 300)::int) + make_interval(days => s),
       r.manifest, r.signature, r.signer, 'monitor-' || c.id, s, r.manifest_sha256
FROM communities c CROSS JOIN generate_series(1, %(segments)s) s JOIN runs r ON r.id = %(later)s
WHERE c.name LIKE '小区 %%'
"""
SEGMENT_VERDICTS = """
INSERT INTO verdicts (run, indicator, level, status, since)
SELECT n.id, v.indicator, v.level, v.status, n.sealed_at
FROM runs n JOIN verdicts v ON v.run = %(later)s WHERE n.kind = 'segment'
"""


def replicate(
    conn: psycopg.Connection[Any], communities: int, segments: int, graded: int, later: int
) -> None:
    """`communities` communities of three runs and `segments` segments each, copied in SQL from two
    pushed runs."""
    ids = {"n": communities, "graded": graded, "later": later, "segments": segments}
    with conn.transaction():
        for statement in (COMMUNITIES, RUNS, VERDICTS, SEGMENTS, SEGMENT_VERDICTS):
            conn.execute(statement, ids)
    conn.execute("ANALYZE")


def timed(samples: int, work: Any) -> float:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def page_time(url: str, samples: int) -> tuple[float, int]:
    runner = web.AppRunner(build_app(url))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    times, size = [], 0
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(samples):
                started = time.perf_counter()
                async with http.get(f"http://{host}:{port}/") as reply:
                    body = await reply.read()
                    assert reply.status == 200
                times.append(time.perf_counter() - started)
                size = len(body)
    finally:
        await runner.cleanup()
    return statistics.median(times), size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--records", type=int, default=20_000, help="ledger records per run")
    parser.add_argument("--communities", type=int, default=1_000)
    parser.add_argument("--segments", type=int, default=7, help="monitor segments per community")
    parser.add_argument("--min-rate", type=float, default=1_000, help="target: records pushed per second")
    parser.add_argument("--max-portfolio-s", type=float, default=1.0, help="target: the portfolio page")
    args = parser.parse_args()
    reply = "<tt:Recording>" + "x" * 2_000 + "</tt:Recording>"
    figures: dict[str, Any] = {"runs": args.runs, "records_per_run": args.records}
    with tempfile.TemporaryDirectory() as tmp, cluster() as server:
        root = Path(tmp)
        dirs = [root / f"run{n:03d}" for n in range(args.runs)]
        url = server.url()
        pushes, loads, total = [], [], 0
        started_all = time.perf_counter()
        # one process writes the next runs (at most AHEAD of them) while this one pushes
        with db.connect(url) as conn, ProcessPoolExecutor(max_workers=1) as writer:
            db.migrate(conn)
            ahead = [writer.submit(write_run, d, n, args.records, reply) for n, d in enumerate(dirs[:AHEAD])]
            for n, d in enumerate(dirs):
                total += ahead.pop(0).result()
                if n + AHEAD < len(dirs):
                    ahead.append(writer.submit(write_run, dirs[n + AHEAD], n + AHEAD, args.records, reply))
                trust = TrustedKeys.of([root / "keys" / "ed25519.pub"], root / "keys")
                started = time.perf_counter()
                assert push(conn, d, trust).new
                pushes.append(time.perf_counter() - started)
                loads.append(os.getloadavg()[0])
                print(
                    f"run {n + 1}: pushed in {pushes[-1]:.1f} s, load {loads[-1]:.1f}",
                    file=sys.stderr,
                    flush=True,
                )
                if n >= 2:  # the first two stay for the portfolio
                    shutil.rmtree(d)
            figures["wall_s"] = round(time.perf_counter() - started_all, 1)
            started = time.perf_counter()
            checked = verify_stored(conn, 1)
            figures["verify_one_from_db_s"] = round(time.perf_counter() - started, 2)
            started = time.perf_counter()
            export_stored(conn, 1, root / "pack.zip")
            figures["export_one_from_db_s"] = round(time.perf_counter() - started, 2)
            figures["load_verify_export"] = round(os.getloadavg()[0], 1)
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        push_s = sum(pushes)
        tenth = max(1, len(pushes) // 10)
        figures |= {
            "push_s": round(push_s, 1),
            "records_pushed_per_s": round(total / push_s),
            "runs_per_min": round(args.runs / push_s * 60, 1),
            "push_one_s_median": round(statistics.median(pushes), 1),
            "push_one_s_first_tenth": round(statistics.mean(pushes[:tenth]), 1),
            "push_one_s_last_tenth": round(statistics.mean(pushes[-tenth:]), 1),
            "load_push_mean": round(statistics.mean(loads), 1),
            "load_push_min_max": [round(min(loads), 1), round(max(loads), 1)],
            "verified_from_db": checked.ok,
            "database_mb": round(int(str(size[0])) / 1e6) if size else None,
        }
        print(json.dumps(figures, ensure_ascii=False), flush=True)  # the push half, in case
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("CREATE DATABASE portfolio")
        pf_url = server.url("portfolio")
        with db.connect(pf_url) as conn:
            db.migrate(conn)
            for d in dirs[:2]:
                push(conn, d, trust)
            conn.execute(  # run 1 as graded by an evaluator, who passed what the machine left open
                "UPDATE runs SET grade = 'B', awarded_on = '2026-11-25', graded_by = 'evaluator' WHERE id = 1"
            )
            conn.execute("UPDATE verdicts SET status = 'pass' WHERE run = 1")
            conn.execute(  # and the later run fails ten of them: every community has degraded
                "UPDATE verdicts SET status = 'fail' WHERE run = 2 AND indicator IN"
                " (SELECT indicator FROM verdicts WHERE run = 2 ORDER BY indicator LIMIT 10)"
            )
            conn.execute("UPDATE runs SET sealed_at = sealed_at + interval '1 day' WHERE id = 2")
            replicate(conn, args.communities, args.segments, graded=1, later=2)
            counts = conn.execute(
                "SELECT (SELECT count(*) FROM communities), (SELECT count(*) FROM runs),"
                " (SELECT count(*) FROM verdicts)"
            ).fetchone()
            rows = portfolio(conn, date.today())
            query_s = timed(20, lambda: portfolio(conn, date.today()))
            figures["load_portfolio"] = round(os.getloadavg()[0], 1)
        page_s, page_bytes = asyncio.run(page_time(pf_url, 20))
        figures |= {
            "communities": counts[0] if counts else None,
            "portfolio_runs": counts[1] if counts else None,
            "portfolio_verdicts": counts[2] if counts else None,
            "portfolio_degraded": sum(1 for r in rows if r.degraded),
            "portfolio_latest_is_segment": sum(1 for r in rows if r.latest_kind == "segment"),
            "portfolio_query_s": round(query_s, 3),
            "portfolio_page_s": round(page_s, 3),
            "portfolio_page_kb": round(page_bytes / 1e3),
        }
    print(json.dumps(figures, ensure_ascii=False))
    ok = figures["verified_from_db"] and figures["records_pushed_per_s"] >= args.min_rate
    return 0 if ok and page_s <= args.max_portfolio_s else 1


if __name__ == "__main__":
    sys.exit(main())
