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
from zhian.evidence.commits import EACH, Commits, Ticker

LEDGER_FILE = "ledger.sqlite"
SCHEMA_VERSION = 1


class Storage(Protocol):
    """Where rows live. When an insert is durable is the storage's `Commits` (see `commits`)."""

    def insert(self, row: Row) -> None: ...
    def flush(self) -> None: ...
    def batch(self) -> AbstractContextManager[None]: ...
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

    def __init__(self, path: Path, *, readonly: bool = False, commits: Commits = EACH) -> None:
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
                _create_whole(path, commits.page_bytes)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._migrate(readonly)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise LedgerError(f"{path}: not a readable ledger ({exc})") from None
        self._commits = commits
        self._pending = 0  # records inserted in the open transaction since its last commit
        self._batches: list[int] = []  # for each open batch, `_pending` at its start
        self._failure: sqlite3.Error | OSError | None = None  # a commit the ticker could not make
        self._ticker = Ticker(commits.after_s, self._tick) if commits.after_s and not readonly else None

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
            self._raise_failure()
            held = bool(self._batches) or self._commits.every > 1  # else the statement commits itself
            if held and not self._db.in_transaction:
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
            if held:
                self._pending += 1
                self._commit_if_due()

    def flush(self) -> None:
        """Commit what is held outside a batch (a commit that failed on the ticker raises here, once)."""
        with self._lock:
            self._raise_failure()
            if not self._batches and self._db.in_transaction:
                self.commit_held()

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The inserts made inside are committed together, after it ends and as the storage's Commits
        say, never split between two commits; or, on an error inside, dropped alone (a savepoint: the
        records held before it stay). Batches nest."""
        with self._lock:
            self._raise_failure()
            if not self._db.in_transaction:
                self._db.execute("BEGIN")  # else the outermost savepoint's RELEASE would commit
            self._db.execute("SAVEPOINT batch")
            self._batches.append(self._pending)
        try:
            yield
        except BaseException:
            with self._lock:
                self._pending = self._batches.pop()
                if self._db.in_transaction:  # SQLite may have rolled it all back itself (disk full)
                    self._db.execute("ROLLBACK TO batch")
                    self._db.execute("RELEASE batch")
                else:
                    self._pending = 0
                self._commit_if_due()
            raise
        with self._lock:
            self._batches.pop()
            self._db.execute("RELEASE batch")
            self._commit_if_due()

    def _commit_if_due(self) -> None:
        """The lock held: commit once the transaction holds `every` records, outside any batch (an
        empty one left by a dropped batch is closed at once)."""
        if self._batches or not self._db.in_transaction:
            return
        if self._pending >= self._commits.every or not self._pending:
            self.commit_held()

    def commit_held(self) -> None:
        """COMMIT, the lock held; a failed one rolls the transaction back (a full disk may have already)."""
        self._pending = 0
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK")
            raise

    def _tick(self) -> None:
        """The ticker's: commit what waits, unless a batch is open (its end decides)."""
        with self._lock:
            if self._batches or not self._db.in_transaction:
                return
            try:
                self.commit_held()
            except (sqlite3.Error, OSError) as exc:
                self._failure = exc

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure

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
        What the transaction holds is committed first (a failure raises, the file closed anyway)."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.stop()
        with self._lock:
            try:
                self._raise_failure()
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


def _create_whole(path: Path, page_bytes: int) -> None:
    """A new ledger appears with its schema or not at all: built under a temporary name, synced, then
    renamed. A kill between SQLite creating the file and the schema being written used to leave an
    unversioned file that verify could only call broken (bench_crash: 2 kills in 50)."""
    building = path.with_name(path.name + ".new")
    building.unlink(missing_ok=True)  # what a kill during an earlier creation left
    db = sqlite3.connect(building, isolation_level=None)
    try:
        db.execute(f"PRAGMA page_size={int(page_bytes)}")  # before the first table, or ignored
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
