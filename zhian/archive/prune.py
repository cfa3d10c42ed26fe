"""`zhian archive prune --before DATE`: delete runs sealed before DATE, never one younger than six years.

4.9 keeps an evaluation's files at least 6 years, so a DATE later than six years ago is refused as a
whole (nothing is deleted), and `--dry-run` lists what would go. Deleting a run removes its records,
findings, verdicts and file list with it, then every stored file no remaining run names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from psycopg.rows import class_row

from scorer.validity import KEEP_YEARS, anniversary
from zhian.archive import blobs
from zhian.archive.blobs import Conn
from zhian.errors import UsageError


@dataclass(frozen=True)
class Prunable:
    id: int
    run_id: str
    community: str
    sealed_at: datetime


@dataclass(frozen=True)
class Pruned:
    runs: list[Prunable]
    blobs: int  # stored files no other run names (deleted, or that would be)


def latest_allowed(today: date) -> date:
    return anniversary(today, -KEEP_YEARS)


def prune(conn: Conn, before: date, today: date, *, dry_run: bool) -> Pruned:
    limit = latest_allowed(today)
    if before > limit:
        raise UsageError(
            f"archive prune: refused: runs sealed before {before} include some younger than"
            f" {KEEP_YEARS} years (4.9 keeps every evaluation's files {KEEP_YEARS} years);"
            f" the latest --before allowed today is {limit}. Nothing was deleted"
        )
    with conn.transaction():
        with conn.cursor(row_factory=class_row(Prunable)) as cur:
            runs = cur.execute(
                """SELECT r.id, r.run_id, c.name AS community, r.sealed_at
                   FROM runs r JOIN communities c ON c.id = r.community_id
                   WHERE r.sealed_at < %s::date ORDER BY r.sealed_at, r.id""",
                (before,),
            ).fetchall()
        ids = [r.id for r in runs]
        if dry_run:
            row = conn.execute(
                """SELECT count(DISTINCT f.sha256) FROM run_files f WHERE f.run = ANY(%s) AND NOT EXISTS
                   (SELECT 1 FROM run_files o WHERE o.sha256 = f.sha256 AND o.run <> ALL(%s))""",
                (ids, ids),
            ).fetchone()
            return Pruned(runs, int(str(row[0])) if row else 0)
        conn.execute("DELETE FROM runs WHERE id = ANY(%s)", (ids,))
        dropped = blobs.drop_unreferenced(conn)
        conn.execute(
            "DELETE FROM communities c WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.community_id = c.id)"
        )
    return Pruned(runs, dropped)
