"""The run's collector sink and finding fields: what an exchange or a finding becomes as a record."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from collectors.exchange import Exchange
from probes.finding import Finding
from zhian import __version__
from zhian.evidence.chain import canonical, sha256

# The (probe, device) job a collector call is made for: set by the run around each job, read when
# the exchange is recorded (a shared fetch names the first job that asked for it).
current_job: ContextVar[tuple[str, str] | None] = ContextVar("current_job", default=None)


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
