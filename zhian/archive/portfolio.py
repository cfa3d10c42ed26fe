"""What an evaluation body reads from the archive: each community's latest run and grade, the label's
validity (5 years from the award) and next yearly re-check (4.10), and what has degraded since the
graded run (by the latest run or monitor segment after it).

The graded run of a community is its latest complete run with a grade and an award date: the
evaluator's date when the run holds the evaluator's file, else the run's end (a machine proposal,
said as such). An indicator has degraded when its final status in the latest later run or segment
is worse than in the graded run (pass > partial > fail).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg.rows import dict_row

from scorer.validity import rechecks, valid_until
from zhian.archive.blobs import Conn
from zhian.errors import UsageError

_RANK = "CASE {0} WHEN 'pass' THEN 3 WHEN 'partial' THEN 2 WHEN 'fail' THEN 1 END"
# One community's latest run or segment, and its graded run: each an index probe (LIMIT 1 per
# community), so the portfolio stays quick however many daily segments a community has.
_LATEST = """SELECT id, run_id, kind, sealed_at, grade FROM runs WHERE community_id = c.id
             ORDER BY sealed_at DESC, id DESC LIMIT 1"""
_GRADED = """SELECT id, run_id, grade, awarded_on, graded_by, level_applied, sealed_at FROM runs
             WHERE community_id = {0} AND kind = 'run' AND grade IS NOT NULL AND awarded_on IS NOT NULL
                   AND NOT interrupted {1}
             ORDER BY awarded_on DESC, sealed_at DESC, id DESC LIMIT 1"""


def _worse(latest: str, graded: str) -> str:
    """The indicators whose status in run `latest` is worse than in run `graded` (SQL FROM/WHERE).
    Only a failing or partial status can be worse than another: those come from the partial index."""
    return (
        f"verdicts l JOIN verdicts g ON g.run = {graded} AND g.indicator = l.indicator"
        f" WHERE l.run = {latest} AND l.status IN ('fail', 'partial')"
        f" AND {_RANK.format('l.status')} < {_RANK.format('g.status')}"
    )


_DEGRADED = "SELECT g.indicator, g.status AS before, l.status AS now, l.since FROM " + _worse(
    "%(latest)s", "%(graded)s"
)
PORTFOLIO = f"""
SELECT c.id, c.name, c.operator, (SELECT count(*) FROM runs WHERE community_id = c.id) AS runs,
       latest.id AS latest_id, latest.run_id AS latest_run_id, latest.kind AS latest_kind,
       latest.sealed_at AS latest_sealed_at, latest.grade AS latest_grade,
       graded.id AS graded_id, graded.run_id AS graded_run_id, graded.grade, graded.awarded_on,
       graded.graded_by, graded.level_applied,
       CASE WHEN graded.id IS NULL OR latest.id = graded.id OR latest.sealed_at <= graded.sealed_at THEN 0
            ELSE (SELECT count(*) FROM {_worse("latest.id", "graded.id")})
       END AS degraded
FROM communities c
CROSS JOIN LATERAL ({_LATEST}) latest
LEFT JOIN LATERAL ({_GRADED.format("c.id", "")}) graded ON true
"""


SEGMENTS_SHOWN = 31  # a month of a monitor's daily segments on a community's page


def graded_run(conn: Conn, community: int, sealed_by: str) -> int | None:
    """The community's graded run as of `sealed_by` (an ISO time): the one a segment then watched."""
    row = conn.execute(_GRADED.format("%s", "AND sealed_at <= %s"), (community, sealed_by)).fetchone()
    return int(str(row[0])) if row else None


@dataclass(frozen=True)
class Label:
    grade: str
    level_applied: str | None
    awarded_on: date
    graded_by: str  # evaluator | machine
    run: int
    run_id: str
    valid_until: date
    next_recheck: date | None  # None: no re-check left before the label ends
    recheck_overdue: date | None  # a re-check date passed with no run since
    expired: bool

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class CommunityRow:
    id: int
    name: str
    operator: str
    runs: int
    latest: int
    latest_run_id: str
    latest_kind: str
    latest_sealed_at: datetime
    latest_grade: str | None
    label: Label | None
    degraded: int

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "label"}
        out["latest_sealed_at"] = self.latest_sealed_at.isoformat()
        out["label"] = self.label.as_dict() if self.label else None
        return out


def _label(row: dict[str, Any], today: date) -> Label | None:
    if row["graded_id"] is None:
        return None
    awarded: date = row["awarded_on"]
    until = valid_until(awarded)
    due = [d for d in rechecks(awarded) if d >= today]
    passed = [d for d in rechecks(awarded) if d < today]
    overdue = passed[-1] if passed and row["latest_sealed_at"].date() < passed[-1] else None
    return Label(
        grade=row["grade"],
        level_applied=row["level_applied"],
        awarded_on=awarded,
        graded_by=row["graded_by"],
        run=row["graded_id"],
        run_id=row["graded_run_id"],
        valid_until=until,
        next_recheck=due[0] if due and until >= today else None,
        recheck_overdue=overdue if until >= today else None,
        expired=until < today,
    )


def _community(row: dict[str, Any], today: date) -> CommunityRow:
    return CommunityRow(
        id=row["id"],
        name=row["name"],
        operator=row["operator"],
        runs=row["runs"],
        latest=row["latest_id"],
        latest_run_id=row["latest_run_id"],
        latest_kind=row["latest_kind"],
        latest_sealed_at=row["latest_sealed_at"],
        latest_grade=row["latest_grade"],
        label=_label(row, today),
        degraded=row["degraded"],
    )


def _no_jit(conn: Conn) -> None:
    """The portfolio's plans look costly to PostgreSQL's JIT, which then spends seconds compiling
    what runs in milliseconds (seen with 1,000 communities): off for this transaction."""
    conn.execute("SET LOCAL jit = off")


def portfolio(conn: Conn, today: date) -> list[CommunityRow]:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        _no_jit(conn)
        rows = cur.execute(PORTFOLIO + " ORDER BY c.name").fetchall()
    return [_community(r, today) for r in rows]


@dataclass(frozen=True)
class RunRow:
    id: int
    run_id: str
    kind: str
    sealed_at: datetime
    level_applied: str | None
    grade: str | None
    graded_by: str | None
    awarded_on: date | None
    interrupted: bool
    records: int
    signer: str
    manifest_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {k: v.isoformat() if isinstance(v, date) else v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Problem:
    indicator: str
    level: str
    status: str
    devices: list[str]
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Degraded:
    indicator: str
    before: str
    now: str
    since: datetime | None  # the monitor's: since when it holds `now` (a run does not say)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__ | {"since": self.since.isoformat() if self.since else None}


@dataclass(frozen=True)
class CommunityDetail:
    community: CommunityRow
    runs: list[RunRow]
    problems: list[Problem]  # failing indicators of the latest run or segment
    degraded: list[Degraded]
    older_segments: int  # monitor segments past the SEGMENTS_SHOWN latest, not listed

    def as_dict(self) -> dict[str, Any]:
        return {
            "community": self.community.as_dict(),
            "runs": [r.as_dict() for r in self.runs],
            "older_segments": self.older_segments,
            "grade_history": [r.as_dict() for r in self.grade_history],
            "problems": [p.as_dict() for p in self.problems],
            "degraded": [d.as_dict() for d in self.degraded],
        }

    @property
    def grade_history(self) -> list[RunRow]:
        return [r for r in self.runs if r.grade and r.kind == "run"]


def resolve_community(conn: Conn, ident: str) -> int:
    """A community by its archive number or exact name."""
    row = conn.execute(
        "SELECT id FROM communities WHERE name = %s OR (%s AND id = %s::bigint)",
        (ident, ident.isdigit(), int(ident) if ident.isdigit() else 0),
    ).fetchone()
    if row is None:
        raise UsageError(
            f"archive: no community {ident!r} (give its number or exact name; see `archive list`)"
        )
    return int(str(row[0]))


def community(conn: Conn, community_id: int, today: date) -> CommunityDetail:
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        _no_jit(conn)
        found = cur.execute(PORTFOLIO + " WHERE c.id = %s", (community_id,)).fetchone()
        if found is None:
            raise UsageError(f"archive: community {community_id} has no runs")
        summary = _community(found, today)
        runs = [
            RunRow(**r)
            for r in cur.execute(
                """SELECT r.id, r.run_id, r.kind, r.sealed_at, r.level_applied, r.grade, r.graded_by,
                          r.awarded_on, r.interrupted, r.manifest_sha256, r.signer,
                          (SELECT count(*) FROM records WHERE run = r.id) AS records
                   FROM runs r WHERE r.community_id = %s AND (r.kind = 'run' OR r.id IN (
                        SELECT id FROM runs WHERE community_id = %s AND kind = 'segment'
                        ORDER BY sealed_at DESC, id DESC LIMIT %s))
                   ORDER BY r.sealed_at DESC, r.id DESC""",
                (community_id, community_id, SEGMENTS_SHOWN),
            ).fetchall()
        ]
        listed = sum(1 for r in runs if r.kind == "segment")
        row = cur.execute(
            "SELECT count(*) AS n FROM runs WHERE community_id = %s AND kind = 'segment'", (community_id,)
        ).fetchone()
        older = int(row["n"]) - listed if row else 0
        problems = [
            Problem(**p)
            for p in cur.execute(
                """SELECT v.indicator, v.level, v.status,
                          array_remove(array_agg(DISTINCT f.device), NULL) AS devices,
                          array_remove(array_agg(DISTINCT f.reason), NULL) AS reasons
                   FROM verdicts v
                   LEFT JOIN findings f ON f.run = v.run AND v.indicator = ANY(f.indicators)
                        AND f.status IN ('fail', 'partial')
                   WHERE v.run = %s AND v.status IN ('fail', 'partial')
                   GROUP BY v.indicator, v.level, v.status ORDER BY v.indicator""",
                (summary.latest,),
            ).fetchall()
        ]
        degraded: list[Degraded] = []
        if summary.degraded:
            assert summary.label is not None
            degraded = [
                Degraded(**d)
                for d in cur.execute(
                    _DEGRADED, {"latest": summary.latest, "graded": summary.label.run}
                ).fetchall()
            ]
    return CommunityDetail(summary, runs, problems, degraded, older)
