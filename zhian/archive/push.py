"""`zhian archive push`: a sealed run directory into the archive, verified first, in one transaction.

Nothing is written for a directory that does not verify or whose signer is not trusted. The run is
keyed by the sha256 of its exact manifest bytes: pushing the same seal again stores nothing more.
Within the transaction every file is hashed again as it is stored and the ledger's records again
as they are copied, so a directory changed after its verification aborts the push and leaves no trace.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from zhian.archive import blobs
from zhian.archive.blobs import Conn
from zhian.errors import UsageError
from zhian.evidence.chain import GENESIS, LedgerError, sha256
from zhian.evidence.manifest import MANIFEST, SIGNATURE
from zhian.evidence.reader import LedgerReader
from zhian.evidence.segments import is_segment
from zhian.evidence.trust import TrustedKeys
from zhian.evidence.verify import Verification, verify
from zhian.report.build import build_report
from zhian.report.model import Report
from zhian.report.rundir import EVALUATOR_DIR, RUN_FILE

RECORD_TYPES = ("int8", "int4", "text", "text", "text", "text", "text", "bytea", "text", "text")


class Refused(Exception):
    """A directory the archive will not take: the message says which and why."""


@dataclass(frozen=True)
class Pushed:
    id: int
    manifest_sha256: str
    run_id: str
    community: str
    records: int
    files: int
    new: bool


def push(conn: Conn, run_dir: Path, trust: TrustedKeys) -> Pushed:
    if is_segment(run_dir):
        raise Refused(
            f"{run_dir}: one monitor segment: push its monitor's state directory (the chain is checked)"
        )
    if not (run_dir / RUN_FILE).is_file():
        raise Refused(f"{run_dir}: not a sealed run directory (no {RUN_FILE})")
    require(run_dir, verify(run_dir), trust)
    data = (run_dir / MANIFEST).read_bytes()
    manifest = json.loads(data)
    digest = sha256(data)
    if found := existing(conn, digest):
        return found
    report = _report(run_dir)
    try:
        return _store(conn, run_dir, report, manifest, data)
    except _AlreadyThere:
        found = existing(conn, digest)
        assert found is not None
        return found


class _AlreadyThere(Exception):
    pass


def require(where: Path, result: Verification, trust: TrustedKeys) -> None:
    """Refuse a directory that does not verify or whose signer is not trusted."""
    if not result.ok:
        problems = result.listed()
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise Refused(f"{where}: does not verify: {problems[0]}{more}")
    if result.signer_raw is None:  # verify() names the signer of every sealed directory
        raise Refused(f"{where / MANIFEST}: no signer")
    if why := trust.refusal(result.signer_raw):
        raise Refused(f"{where}: {why}")


def _store(conn: Conn, run_dir: Path, report: Report, manifest: dict[str, Any], data: bytes) -> Pushed:
    digest = sha256(data)
    with conn.transaction():
        c = report.overview.community
        community = community_id(conn, c.name, c.operator, c.address)
        row = conn.execute(
            """INSERT INTO runs (manifest_sha256, kind, run_id, community_id, level_applied, grade,
                   threshold, interrupted, started_at, finished_at, sealed_at, awarded_on, graded_by,
                   manifest, signature, signer)
               VALUES (%s, 'run', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (manifest_sha256) DO NOTHING RETURNING id""",
            (
                digest,
                text(report.run.run_id),
                community,
                report.overview.community.target_level,
                report.summary.grade,
                report.run.threshold,
                report.run.interrupted,
                report.run.started_at,
                report.run.finished_at,
                manifest["sealed_at"],
                report.label.valid_from,
                "evaluator" if report.summary.evaluator_file else "machine",
                data,
                (run_dir / SIGNATURE).read_text(encoding="ascii").strip(),
                manifest["signed_by"]["fingerprint"],
            ),
        ).fetchone()
        if row is None:  # a concurrent push of the same seal won: roll back, report theirs
            raise _AlreadyThere
        run = int(str(row[0]))
        records = copy_records(conn, run, run_dir, manifest)
        _copy_findings(conn, run, report)
        _copy_verdicts(conn, run, report)
        files = store_files(conn, run, run_dir, manifest["files"])
    return Pushed(run, digest, report.run.run_id, report.overview.community.name, records, files, True)


def existing(conn: Conn, digest: str) -> Pushed | None:
    row = conn.execute(
        """SELECT r.id, r.run_id, c.name, (SELECT count(*) FROM records WHERE run = r.id),
                  (SELECT count(*) FROM run_files WHERE run = r.id)
           FROM runs r JOIN communities c ON c.id = r.community_id WHERE r.manifest_sha256 = %s""",
        (digest,),
    ).fetchone()
    if row is None:
        return None
    return Pushed(
        int(str(row[0])), digest, str(row[1]), str(row[2]), int(str(row[3])), int(str(row[4])), False
    )


def text(value: str) -> str:
    """A query column's copy of a text: PostgreSQL text holds no NUL (the sealed bytes keep it)."""
    return value.replace("\x00", "\ufffd")


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def kept_evaluator(run_dir: Path) -> Path | None:
    """The evaluator's file a report sealed into the run kept (the latest by its date), if any."""
    found: list[tuple[str, str, Path]] = []
    for path in sorted((run_dir / EVALUATOR_DIR).glob("*")):
        try:
            header = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        when = header.get("date") if isinstance(header, dict) else None
        found.append((str(when or ""), path.name, path))
    return max(found)[2] if found else None


def _report(run_dir: Path) -> Report:
    """The run as its report reads it: the grade with the evaluator's verdicts, the label's dates
    (from the evaluator's date, else the run's end), each indicator's final status."""
    try:
        meta = _json(run_dir / RUN_FILE)
        ended = meta.get("finished_at") or meta.get("started_at")
        day = datetime.fromisoformat(ended).date() if ended else date.today()
        return build_report(run_dir, "en", kept_evaluator(run_dir), today=day)
    except (UsageError, LedgerError, ValueError, AttributeError) as exc:
        raise Refused(f"{run_dir}: verifies, but cannot be read as a run ({exc})") from None


def community_id(conn: Conn, name: str, operator: str, address: str) -> int:
    """The community's archive number, adding it (or updating its operator and address)."""
    row = conn.execute(
        """INSERT INTO communities (name, operator, address) VALUES (%s, %s, %s)
           ON CONFLICT (name) DO UPDATE SET operator = EXCLUDED.operator, address = EXCLUDED.address
           RETURNING id""",
        (text(name), text(operator), text(address)),
    ).fetchone()
    assert row is not None
    return int(str(row[0]))


def copy_records(conn: Conn, run: int, run_dir: Path, manifest: dict[str, Any], start: str = GENESIS) -> int:
    """Copy the ledger's rows, checking the chain again as they go (the file may have changed since
    verification: the bytes copied must hash and link to the sealed head). `start`: the hash the
    first record follows (a monitor segment's previous head)."""
    reader = LedgerReader(run_dir)
    prev, seq = start, 0
    try:
        with conn.cursor().copy(
            "COPY records (run, seq, id, kind, probe, device, started_at, body, hash, prev_hash)"
            " FROM STDIN (FORMAT BINARY)"  # the bodies go as they are, not escaped as text
        ) as copy:
            copy.set_types(RECORD_TYPES)
            for row in reader.rows():
                # verify() checked every record in full; the copy need only be the same chain
                if (row.seq, row.prev_hash) != (seq + 1, prev) or sha256(row.body) != row.hash:
                    raise Refused(f"{run_dir}: changed while it was being pushed: record {seq + 1}")
                copy.write_row(
                    (run, row.seq, row.id, row.kind, row.probe, row.device, row.started_at, row.body,
                     row.hash, row.prev_hash)
                )  # fmt: skip
                prev, seq = row.hash, row.seq
    finally:
        reader.close()
    sealed = manifest.get("ledger") or {}
    if (sealed.get("records"), sealed.get("chain_head")) != (seq, prev):
        raise Refused(f"{run_dir}: changed while it was being pushed: the ledger no longer matches its seal")
    return seq


def _copy_findings(conn: Conn, run: int, report: Report) -> None:
    with conn.cursor().copy(
        "COPY findings (run, n, probe, device, status, reason, detail, indicators, evidence) FROM STDIN"
    ) as copy:
        for f in report.findings:
            row = (f.probe, f.device, f.status, f.reason, f.detail)
            copy.write_row(
                (run, f.n, *map(text, row), [text(i) for i in f.indicators], [text(e) for e in f.evidence])
            )


def _copy_verdicts(conn: Conn, run: int, report: Report) -> None:
    with conn.cursor().copy("COPY verdicts (run, indicator, level, status, awarded, max) FROM STDIN") as copy:
        for ind in report.indicators:
            copy.write_row((run, ind.id, ind.level, ind.final_status, ind.awarded, ind.points))


def store_files(conn: Conn, run: int, run_dir: Path, listed: dict[str, str]) -> int:
    """Every sealed file, by path, and its bytes once per sha256 (manifest and signature are in `runs`)."""
    have = blobs.known(conn, sorted(set(listed.values())))
    for name, digest in sorted(listed.items()):
        if digest not in have:
            blobs.store(conn, run_dir / name, digest)
            have.add(digest)
    with conn.cursor().copy("COPY run_files (run, path, sha256) FROM STDIN") as copy:
        for name, digest in sorted(listed.items()):
            copy.write_row((run, name, digest))
    return len(listed)
