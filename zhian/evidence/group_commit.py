"""Group commit for a SQLite ledger: records committed in small groups instead of one by one.

A commit per record cost a large run a twentieth of its CPU (each commit writes the table's page
and each index's page again) and held the event loop for each one. A group is committed by the
insert that makes it COMMIT_EVERY records, or by a thread at its next tick (every COMMIT_AFTER_S),
whichever comes first: a kill loses at most that last group, and the chain of everything before it stays
valid (a transaction is all or nothing).
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Protocol

COMMIT_EVERY = 64  # records
COMMIT_AFTER_S = 0.2  # the longest a record waits for its commit


class Committer(Protocol):
    def commit_held(self) -> None:
        """COMMIT the open transaction; called with the connection's lock held."""


class GroupCommit:
    """The open group of one connection. `lock` guards the connection; `owner` commits under it.
    A thread commits whatever is open every COMMIT_AFTER_S (a tick, not a wake-up per group: the
    appender never signals it). A commit the thread could not make (a full disk) is raised by
    `raise_failure`, which the storage calls at its next insert, flush or close."""

    def __init__(self, lock: threading.Lock, db: sqlite3.Connection, owner: Committer) -> None:
        self._lock, self._db, self._owner = lock, db, owner
        self.pending = 0
        self.failure: sqlite3.Error | OSError | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-commit", daemon=True)
        self._thread.start()

    def added(self) -> bool:
        """One more record in the group: True when it is full."""
        self.pending += 1
        return self.pending >= COMMIT_EVERY

    def raise_failure(self) -> None:
        failure, self.failure = self.failure, None
        if failure is not None:
            raise failure

    def _run(self) -> None:
        while not self._stopped.wait(COMMIT_AFTER_S):  # the storage's close commits what is left
            with self._lock:
                if not self._db.in_transaction:
                    continue
                try:
                    self._owner.commit_held()
                except (sqlite3.Error, OSError) as exc:
                    self.failure = exc

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
