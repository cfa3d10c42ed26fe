"""Where a ledger's records are kept: a `Storage` only stores rows and reads them back (SQLite in the
run directory now, a server database later); the chain logic is the ledger's."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Protocol

from zhian.evidence.chain import LedgerError, Row
from zhian.evidence.group_commit import GroupCommit

LEDGER_FILE = "ledger.sqlite"
SCHEMA_VERSION = 1


class Storage(Protocol):
    """Where rows live. Appends are durable when `insert` returns, or with group commit within
    COMMIT_AFTER_S (and at `flush`)."""

    def insert(self, row: Row) -> None: ...
    def flush(self) -> None: ...
    def transaction(self) -> AbstractContextManager[None]: ...
    def last(self) -> Row | None: ...
    def rows(self) -> Iterator[Row]: ...
    def row(self, record_id: str) -> Row | None: ...
    def meta(self) -> dict[str, str]: ...
    def set_meta(self, values: Mapping[str, str]) -> None: ...
    def close(self) -> None: ...


_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        """CREATE TABLE records (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            probe TEXT,
            device TEXT,
            started_at TEXT,
            body BLOB NOT NULL,
            hash TEXT NOT NULL UNIQUE,
            prev_hash TEXT NOT NULL
        )""",
        "CREATE INDEX records_probe_device ON records (probe, device)",
    ),
}


class SqliteStorage:
    """One SQLite file per run, WAL while the run writes, a single self-contained file once closed.

    synchronous=NORMAL in WAL mode keeps every committed record through a kill of the process (the
    threat here); only a power cut could lose the last few commits, and never the chain's validity.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        if readonly:
            if not path.is_file():
                raise LedgerError(f"{path}: no ledger here")
            # immutable skips locking, but would also skip a killed writer's WAL: use it only without one
            wal = path.with_name(path.name + "-wal")
            uri = f"file:{path}?mode=ro" + ("" if wal.exists() else "&immutable=1")
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            if not path.exists():
                _create_whole(path)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._migrate(readonly)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerError(f"{path}: not a readable ledger ({exc})") from None
        self._group: GroupCommit | None = None

    def group_commit(self) -> None:
        """From now on commit every COMMIT_EVERY records, and what waits COMMIT_AFTER_S at the latest."""
        if self._group is None:
            self._group = GroupCommit(self._lock, self._db, self)

    def _migrate(self, readonly: bool) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"{self.path}: ledger schema {version} is newer than this zhian reads ({SCHEMA_VERSION})"
            )
        if readonly:
            if version == 0:
                raise LedgerError(f"{self.path}: not a zhian ledger (no schema version)")
            return
        with self._lock:
            _migrate_from(self._db, version)

    def insert(self, row: Row) -> None:
        with self._lock:
            group = self._group
            if group is not None:
                group.raise_failure()
                if not self._db.in_transaction:
                    self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO records (seq, id, kind, probe, device, started_at, body, hash, prev_hash)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.seq,
                    row.id,
                    row.kind,
                    row.probe,
                    row.device,
                    row.started_at,
                    row.body,
                    row.hash,
                    row.prev_hash,
                ),
            )
            if group is not None and group.added():
                self.commit_held()

    def flush(self) -> None:
        """Commit what group commit holds (a commit that fails raises here, once)."""
        with self._lock:
            if self._group is None:
                return  # every insert committed already
            self._group.raise_failure()
            if self._db.in_transaction:
                self.commit_held()

    def commit_held(self) -> None:
        """COMMIT, the lock held; a failed one rolls the group back (a full disk may have already)."""
        if self._group is not None:
            self._group.pending = 0
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """The inserts made inside are committed together (one commit, not one each), or not at all."""
        if self._group is not None:
            raise RuntimeError("a storage in group commit commits by itself: no transaction inside")
        with self._lock:
            self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            with self._lock:
                self._db.execute("ROLLBACK")
            raise
        with self._lock:
            self._db.execute("COMMIT")

    _COLUMNS = "seq, id, kind, probe, device, started_at, body, hash, prev_hash"

    def last(self) -> Row | None:
        found = self._db.execute(f"SELECT {self._COLUMNS} FROM records ORDER BY seq DESC LIMIT 1").fetchone()
        return Row(*found) if found else None

    def rows(self) -> Iterator[Row]:
        for found in self._db.execute(f"SELECT {self._COLUMNS} FROM records ORDER BY seq"):
            yield Row(*found)

    def kinds(self) -> dict[str, int]:
        """Records counted by kind, in the order each kind first appears (no body is read)."""
        found = self._db.execute("SELECT kind, count(*) FROM records GROUP BY kind ORDER BY min(seq)")
        return {str(kind): int(n) for kind, n in found}

    def row(self, record_id: str) -> Row | None:
        found = self._db.execute(f"SELECT {self._COLUMNS} FROM records WHERE id = ?", (record_id,)).fetchone()
        return Row(*found) if found else None

    def rows_with_ids(self, record_ids: Sequence[str]) -> Iterator[Row]:
        """The rows of these ids that exist, in no particular order (one query per 500 ids)."""
        for at in range(0, len(record_ids), 500):
            part = record_ids[at : at + 500]
            marks = ",".join("?" * len(part))
            for found in self._db.execute(f"SELECT {self._COLUMNS} FROM records WHERE id IN ({marks})", part):
                yield Row(*found)

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", values.items())

    def close(self) -> None:
        """Fold the WAL back into the one file, so the file alone is the ledger (hashed, exported).
        What group commit holds is committed first (a failure raises, the file closed anyway)."""
        group, self._group = self._group, None
        if group is not None:
            group.stop()
        with self._lock:
            try:
                if group is not None:
                    group.raise_failure()
                    if self._db.in_transaction:
                        self.commit_held()
            except BaseException:
                self._db.close()
                raise
            try:
                if not self._db.execute("PRAGMA query_only").fetchone()[0]:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                    self._db.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.OperationalError:
                pass  # read-only (immutable) handle: nothing to fold
            self._db.close()


def _migrate_from(db: sqlite3.Connection, version: int) -> None:
    for step in range(version + 1, SCHEMA_VERSION + 1):
        db.execute("BEGIN")
        for statement in _MIGRATIONS[step]:
            db.execute(statement)
        db.execute(f"PRAGMA user_version={step}")
        db.execute("COMMIT")


def _create_whole(path: Path) -> None:
    """A new ledger appears with its schema or not at all: built under a temporary name, synced, then
    renamed. A kill between SQLite creating the file and the schema being written used to leave an
    unversioned file that verify could only call broken (bench_crash: 2 kills in 50)."""
    building = path.with_name(path.name + ".new")
    building.unlink(missing_ok=True)  # what a kill during an earlier creation left
    db = sqlite3.connect(building, isolation_level=None)
    try:
        _migrate_from(db, 0)
    finally:
        db.close()
    fd = os.open(building, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(building, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
