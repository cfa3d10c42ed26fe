"""What collectors hand over in a test: a list of exchanges that is also their sink."""

from __future__ import annotations

import json
from dataclasses import asdict

from collectors.exchange import Exchange


class Ledger(list[Exchange]):
    """The exchanges a test's collectors handed over (zhian's own ledger chains them; tests need
    only the list)."""

    def __call__(self, exchange: Exchange) -> None:
        self.append(exchange)

    def get(self, exchange_id: str | None) -> Exchange:
        return next(e for e in self if e.id == exchange_id)

    def ids(self) -> set[str]:
        return {e.id for e in self}

    def operations(self) -> list[str]:
        return [e.operation for e in self]

    def dumped(self) -> str:
        """Everything the evidence ledger would keep, raw artefacts included."""
        rows = []
        for e in self:
            row = asdict(e)
            row["raw"] = (e.raw or b"").decode(errors="replace")
            rows.append(json.dumps(row, default=str, ensure_ascii=False))
        return "\n".join(rows)
