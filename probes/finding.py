"""A probe's result: status, reason code, measured facts and the evidence it rests on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

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
