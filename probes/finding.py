"""A probe's result: status, reason code, measured facts and the evidence it rests on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from collectors.errors import CollectorError, DeviceRejected, Unreachable
from collectors.exchange import now

Status = Literal["pass", "fail", "partial", "error", "not_assessed"]


@dataclass(frozen=True)
class Finding:
    probe: str
    device: str
    status: Status
    reason: str  # a stable code: retention_short, alert_missing, unreachable, ...
    detail: str  # one sentence a person reads
    facts: dict[str, Any] = field(default_factory=dict)  # measured values, e.g. retention_days
    evidence: tuple[str, ...] = ()  # exchange ids in the ledger
    ratio: float | None = None  # for partial
    started_at: datetime = field(default_factory=now)
    finished_at: datetime = field(default_factory=now)

    def __post_init__(self) -> None:
        if self.status == "pass" and not self.evidence:
            raise ValueError(f"{self.probe} on {self.device}: a pass needs evidence")
        if (self.status == "partial") != (self.ratio is not None):
            raise ValueError(f"{self.probe} on {self.device}: a ratio goes with partial, and only there")
        if self.ratio is not None and not 0 <= self.ratio <= 1:
            raise ValueError(f"{self.probe} on {self.device}: ratio {self.ratio} outside [0, 1]")

    def as_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "device": self.device,
            "status": self.status,
            "reason": self.reason,
            "detail": self.detail,
            "facts": self.facts,
            "evidence": list(self.evidence),
            "ratio": self.ratio,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }


def collector_finding(
    probe: str,
    device: str,
    exc: CollectorError,
    *,
    started_at: datetime,
    finished_at: datetime,
    evidence: tuple[str, ...] = (),
    status: Status = "error",
) -> Finding:
    """A failed call as a finding: `error` (could not judge) by default, or `fail` where the failure
    is itself the finding (a panel nobody can reach cannot be monitored); cites the failed exchange."""
    facts: dict[str, Any] = {"error": str(exc)}
    if isinstance(exc, Unreachable):
        facts["timed_out"] = exc.timed_out
    if isinstance(exc, DeviceRejected):
        facts["code"] = exc.code
    return Finding(
        probe=probe,
        device=device,
        status=status,
        reason=exc.reason,
        detail=f"The device could not be read: {exc}.",
        facts=facts,
        evidence=evidence + ((exc.exchange_id,) if exc.exchange_id else ()),
        started_at=started_at,
        finished_at=finished_at,
    )


def inventory_finding(
    probe: str, device: str, problem: object, *, started_at: datetime, finished_at: datetime
) -> Finding:
    """An inventory entry the probe cannot use (a missing broker, channel or register map): the
    device was not asked anything, so this is `error`, the site's configuration to mend."""
    return Finding(
        probe=probe,
        device=device,
        status="error",
        reason="inventory_invalid",
        detail=f"The inventory entry cannot be used: {problem}.",
        started_at=started_at,
        finished_at=finished_at,
    )
