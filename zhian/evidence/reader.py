"""Read access to a run's ledger, for verify, report, export and archive."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from zhian.evidence.chain import Record, Row, record_of
from zhian.evidence.storage import LEDGER_FILE, SqliteStorage


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
