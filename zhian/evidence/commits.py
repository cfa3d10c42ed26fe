"""When a ledger's appended records are committed, and so what a SIGKILL of the writer can lose.

One mechanism for every ledger: records are inserted into the connection's open transaction, which
is committed when it holds `every` records, or by a thread's tick every `after_s` seconds, whichever
comes first; a batch (`Ledger.batch`) is a savepoint inside it, committed whole after its end and
never split between two commits, or dropped alone. A commit is all or nothing, so whatever a kill
loses is the tail of the chain: what was committed before it stays a valid chain.

- EACH (the default; the monitor's segments): a record is committed before `append` returns, a
  batch when its `with` block ends. A SIGKILL loses at most the record or the batch in flight.
- GROUPED (a run's ledger): a commit per record cost a large run a twentieth of its CPU (each
  commit writes the table's page and each index's page again) and held the event loop for each one.
  Outside a batch, records are committed in groups of at most 64, none waiting more than 0.2 s
  (and all of them at `flush` and `close`); an open batch holds the group until it ends. A SIGKILL
  loses at most the records appended in the last 0.2 s (fewer than 64), or a batch in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Commits:
    every: int  # records: the transaction is committed once it holds this many (outside a batch)
    after_s: float | None  # the longest a record waits for its commit (None: `every` alone decides)
    # SQLite's page size for a new ledger. A commit writes whole pages: with 16 kB ones a group's
    # 3 kB records share pages (in 4 kB ones each takes a page of its own), so a run's ledger costs
    # a quarter less CPU a record and a fifth less disk; a commit per record writes more with them.
    page_bytes: int = 4096


EACH = Commits(every=1, after_s=None)
GROUPED = Commits(every=64, after_s=0.2, page_bytes=16384)


class Ticker:
    """Calls `tick` every `period` seconds on its own thread until stopped (a tick, not a wake-up per
    group: the appender never signals it)."""

    def __init__(self, period: float, tick: Callable[[], None]) -> None:
        self._period, self._tick = period, tick
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-commit", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._period):
            self._tick()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
