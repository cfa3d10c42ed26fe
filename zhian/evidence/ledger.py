"""The evidence ledger of a run: every exchange and finding as a hash-chained record, kept as collected.

Each record's body is canonical JSON holding the hash of the record before it, and its own hash is
the sha256 of those exact bytes; so an edit, removal or reordering anywhere breaks the chain at that
record, and `zhian verify` can name it years later (4.9). Records are committed one by one, so a kill
at any moment leaves a valid chain of everything recorded before it; a run's ledger commits in small
groups instead (`group_commit`: at most COMMIT_EVERY records or COMMIT_AFTER_S seconds), so a kill
loses at most that last group, the chain of what came before staying valid. Large raw replies go to
`artefacts/<sha256>` before the record that names them is committed.

The chain logic lives here; where the records are kept is a `Storage` (SQLite in the run directory
now, a server database later) that only stores rows and reads them back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from collectors.exchange import Exchange
from collectors.limits import DEFAULT_MAX_REPLY_BYTES
from probes.finding import Finding
from zhian import __version__
from zhian.evidence.group_commit import GroupCommit
from zhian.evidence.scrub import Scrubber

LEDGER_FILE = "ledger.sqlite"
ARTEFACTS_DIR = "artefacts"
GENESIS = "0" * 64
SCHEMA_VERSION = 1

# The (probe, device) job a collector call is made for: set by the run around each job, read when
# the exchange is recorded (a shared fetch names the first job that asked for it).
current_job: ContextVar[tuple[str, str] | None] = ContextVar("current_job", default=None)


class LedgerError(Exception):
    """A ledger that cannot be opened or read: names the file and what is wrong."""


def canonical(body: Mapping[str, Any]) -> bytes:
    """The exact bytes a record's hash covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Row:
    """What a storage keeps of one record: the hashed body and copies of a few fields for queries."""

    seq: int
    id: str
    kind: str
    probe: str | None
    device: str | None
    started_at: str | None
    body: bytes
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Record:
    seq: int
    id: str
    kind: str  # run_start | exchange | finding | run_end
    hash: str
    prev_hash: str
    body: dict[str, Any]


def record_of(row: Row) -> Record:
    try:
        body = json.loads(row.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"record {row.seq}: body is not JSON ({exc})") from None
    return Record(row.seq, row.id, row.kind, row.hash, row.prev_hash, body)


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


class Ledger:
    """Appends hash-chained records to a storage, with secrets removed before anything is written."""

    def __init__(
        self,
        storage: Storage,
        run_dir: Path,
        *,
        secrets: Sequence[str] = (),
        max_artefact_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        start: str = GENESIS,
    ) -> None:
        """`start`: the hash the first record follows (a segment's: the previous segment's head)."""
        self.storage = storage
        self.run_dir = run_dir
        self.max_artefact_bytes = max_artefact_bytes
        self._scrub = Scrubber(secrets)  # defence in depth: collectors redact already
        self._lock = threading.RLock()  # re-entered by the appends of a batch
        self._start = start
        last = storage.last()
        self._seq = last.seq if last else 0
        self.head = last.hash if last else start
        self.counts: dict[str, int] = {}

    def append(self, kind: str, fields: Mapping[str, Any]) -> None:
        with self._lock:
            chained = {"kind": kind, "seq": self._seq + 1, "prev_hash": self.head}
            body = dict(fields) | chained
            body["id"] = body.get("id") or uuid.uuid4().hex
            data = canonical(body)
            if self._scrub.shows_in(data):  # rare: the strings walked one by one only then
                body = self._scrub(dict(fields)) | chained
                body["id"] = body.get("id") or uuid.uuid4().hex
                data = canonical(body)
            digest = sha256(data)
            row = Row(
                seq=body["seq"],
                id=body["id"],
                kind=kind,
                probe=body.get("probe"),
                device=body.get("device"),
                started_at=body.get("started_at"),
                body=data,
                hash=digest,
                prev_hash=self.head,
            )
            try:
                self.storage.insert(row)
            except BaseException:
                self._resync()  # a failed group commit lost records this ledger had chained on
                raise
            self._seq, self.head = row.seq, digest
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def flush(self) -> None:
        """Everything appended so far committed (group commit); raises what a commit raised."""
        with self._lock:
            try:
                self.storage.flush()
            except BaseException:
                self._resync()
                raise

    def _resync(self) -> None:
        last = self.storage.last()
        self._seq, self.head = (last.seq, last.hash) if last else (0, self._start)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The records appended inside are committed in one transaction: a burst of records costs one
        commit, not one each (a monitor's first judgement of 50,000 devices was 0.75 ms a record in
        commits). All or nothing: a kill loses at most the batch in flight and the chain stays valid;
        an error inside rolls the batch back and the chain goes on from the head stored before it.
        No other thread appends meanwhile."""
        with self._lock:
            seq, head, counts = self._seq, self.head, dict(self.counts)
            with self.storage.transaction():
                try:
                    yield
                except BaseException:
                    self._seq, self.head, self.counts = seq, head, counts
                    raise

    def scrub_bytes(self, data: bytes) -> bytes:
        """An artefact's bytes with every literal secret removed, as records are scrubbed (bytes that
        are not UTF-8 pass through unchanged)."""
        text = data.decode("utf-8", "surrogateescape")
        scrubbed = self._scrub.text(text)
        return data if scrubbed is text else scrubbed.encode("utf-8", "surrogateescape")

    def store_artefact(self, data: bytes) -> str:
        """Keep a raw reply (scrubbed, never past the bound) as artefacts/<sha256>, durably, before
        any record names it."""
        data = self.scrub_bytes(data[: self.max_artefact_bytes])
        digest = sha256(data)
        folder = self.run_dir / ARTEFACTS_DIR
        folder.mkdir(exist_ok=True)
        path = folder / digest
        if not path.exists():
            tmp = folder / f".{digest}.tmp"
            with tmp.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            tmp.replace(path)
        return digest

    def close(self) -> None:
        self.storage.close()


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


def open_ledger(
    run_dir: Path,
    *,
    secrets: Sequence[str] = (),
    run_id: str | None = None,
    max_artefact_bytes: int = DEFAULT_MAX_REPLY_BYTES,
    start: str = GENESIS,
    group_commit: bool = False,
) -> Ledger:
    """The run directory's ledger for writing (created on first use); `group_commit`: see
    SqliteStorage.group_commit (a kill loses at most the last group)."""
    storage = SqliteStorage(run_dir / LEDGER_FILE)
    meta = storage.meta()
    if not meta:
        storage.set_meta(
            {
                "run_id": run_id or "",
                "created_at": datetime.now(UTC).isoformat(),
                "tool": f"zhian {__version__}",
                "hash": "sha256 over canonical JSON (sorted keys, no spaces, UTF-8); chain from " + GENESIS,
            }
        )
    if group_commit:
        storage.group_commit()
    return Ledger(storage, run_dir, secrets=secrets, max_artefact_bytes=max_artefact_bytes, start=start)


class LedgerReader:
    """Read access for verify, report and export (never writes: the file stays as sealed)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.storage = SqliteStorage(run_dir / LEDGER_FILE, readonly=True)

    def rows(self) -> Iterator[Row]:
        return self.storage.rows()

    def records(self) -> Iterator[Record]:
        for row in self.storage.rows():
            yield record_of(row)

    def last(self) -> Row | None:
        """The chain's head: its last record."""
        return self.storage.last()

    def kinds(self) -> dict[str, int]:
        return self.storage.kinds()

    def get(self, record_id: str) -> Record | None:
        row = self.storage.row(record_id)
        return record_of(row) if row else None

    def get_many(self, record_ids: Sequence[str]) -> dict[str, Record]:
        """The records of these ids that exist, by id (a report's thousands of cited exchanges)."""
        return {row.id: record_of(row) for row in self.storage.rows_with_ids(record_ids)}

    def close(self) -> None:
        self.storage.close()


def exchange_fields(exchange: Exchange, run_id: str, indicators: Sequence[str]) -> dict[str, Any]:
    """An exchange as record fields: who was asked what, when, how, and what came back."""
    job = current_job.get()
    request, response = exchange.request, exchange.response  # redacted by the collector
    return {
        "id": exchange.id,
        "run_id": run_id,
        "probe": job[0] if job else None,
        "device": exchange.device,
        "indicators": list(indicators),
        "method": {
            "protocol": exchange.protocol,
            "operation": exchange.operation,
            "address": exchange.address,
        },
        "collector": f"zhian {__version__}",
        "library": exchange.library,
        "started_at": exchange.started_at.isoformat(),
        "duration_s": exchange.duration_s,
        "device_time": exchange.device_time.isoformat() if exchange.device_time else None,
        "ok": exchange.ok,
        "error": exchange.error,
        "request": request,
        "response": response,
        "exchange_sha256": sha256(canonical({"request": request, "response": response})),
        "facts": exchange.facts,
    }


class Records(Protocol):
    """Where records are appended: a run's Ledger, or the monitor's SegmentedLedger."""

    counts: dict[str, int]
    max_artefact_bytes: int

    def append(self, kind: str, fields: Mapping[str, Any]) -> None: ...
    def store_artefact(self, data: bytes) -> str: ...


class ExchangeRecorder:
    """The run's collector sink: each exchange becomes a ledger record at once."""

    def __init__(
        self, ledger: Records, run_id: str, indicators_of: Callable[[str, str], Sequence[str]]
    ) -> None:
        self.ledger, self.run_id, self._indicators_of = ledger, run_id, indicators_of

    def __call__(self, exchange: Exchange) -> None:
        job = current_job.get()
        indicators = self._indicators_of(*job) if job else ()
        fields = exchange_fields(exchange, self.run_id, indicators)
        if exchange.raw:
            fields["raw_sha256"] = self.ledger.store_artefact(exchange.raw)
            fields["raw_size"] = len(exchange.raw)
            if len(exchange.raw) > self.ledger.max_artefact_bytes:
                fields["raw_kept"] = self.ledger.max_artefact_bytes
        self.ledger.append("exchange", fields)

    @property
    def count(self) -> int:
        return self.ledger.counts.get("exchange", 0)


def finding_fields(finding: Finding, run_id: str, indicators: Sequence[str]) -> dict[str, Any]:
    return finding.as_dict() | {"run_id": run_id, "indicators": list(indicators)}
