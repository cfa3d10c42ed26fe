"""Connecting to the archive database and bringing its schema up to date.

The schema is a numbered series of SQL files in `migrations/` (NNNN_name.sql), applied in order,
each in the transaction that records it in `zhian_schema`; an advisory lock keeps two zhian
processes from migrating at once. A database whose schema is newer than this zhian is refused.
"""

from __future__ import annotations

import os
import re
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from zhian.errors import UsageError

ENV = "ZHIAN_DB"
READER = "zhian_reader"  # the role a read-only portfolio is granted (migration 0003)
TABLES = ("zhian_schema", "communities", "runs", "records", "findings", "verdicts", "run_files", "blobs",
          "blob_parts")  # fmt: skip
_LOCK = 0x7A6869616E  # "zhian": one advisory lock id for migrations
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every shipped migration, in order."""
    folder = resources.files("zhian.archive") / "migrations"
    found = []
    for entry in folder.iterdir():
        if match := _NAME.match(entry.name):
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def latest_version() -> int:
    return migrations()[-1][0]


def database_url(given: str | None) -> str:
    url = given or os.environ.get(ENV)
    if not url:
        raise UsageError(f"archive: give --db URL (postgresql://user@host:port/dbname) or set {ENV}")
    return url


def shown(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the database URL"
    parts.pop("password", None)
    return make_conninfo(**{k: str(v) for k, v in parts.items() if v is not None})


def connect(url: str, *, read_only: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    try:
        conn = psycopg.connect(url, connect_timeout=10, autocommit=True)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{shown(url)}: cannot connect ({first})") from None
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    return conn


def schema_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    exists = conn.execute("SELECT to_regclass('zhian_schema') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM zhian_schema").fetchone()
    return int(str(row[0])) if row else 0


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Apply the migrations this database lacks; returns its schema version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS zhian_schema (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        current = schema_version(conn)
        _refuse_newer(current)
        for version, name, sql in migrations():
            if version > current:
                conn.execute(sql.encode())
                conn.execute("INSERT INTO zhian_schema (version, name) VALUES (%s, %s)", (version, name))
                current = version
        _grant_reader(conn)
    return current


def _grant_reader(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """SELECT on every archive table this user owns to `zhian_reader`, where it exists and lacks it
    (a table made by a later migration, or the role made by the administrator after the first push)."""
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READER,)).fetchone() is None:
        return
    missing = conn.execute(
        """SELECT c.relname FROM pg_class c
           WHERE c.oid = ANY(SELECT to_regclass(t) FROM unnest(%s::text[]) t)
             AND pg_has_role(current_user, c.relowner, 'USAGE')
             AND NOT has_table_privilege(%s, c.oid, 'SELECT')""",
        (list(TABLES), READER),
    ).fetchall()
    for (table,) in missing:
        grant = sql.SQL("GRANT SELECT ON {} TO {}")
        conn.execute(grant.format(sql.Identifier(str(table)), sql.Identifier(READER)))


def require_schema(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    """For the commands that only read: the archive must exist and be one this zhian knows."""
    current = schema_version(conn)
    if current == 0:
        raise UsageError("archive: this database holds no zhian archive yet (`zhian archive push` makes it)")
    _refuse_newer(current)
    if current < latest_version():
        raise UsageError(
            f"archive: schema {current} is older than this zhian's ({latest_version()});"
            " any `zhian archive push` brings it up to date"
        )


def _refuse_newer(current: int) -> None:
    if current > latest_version():
        raise UsageError(
            f"archive: the database's schema {current} is newer than this zhian knows ({latest_version()})"
        )
