"""What a linkage test records: each expected effect's watch, the run as it ended, the restore steps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collectors.errors import CollectorError
from probes.linkage.params import Effect, Outcome, TriggerKind, WatchStatus


@dataclass
class Watch:
    """One expected effect on one target, filled in while the test runs."""

    effect: Effect
    target: str
    deadline_s: float
    baseline_active: bool = False  # already in the effect's state before the trigger
    seen_at: datetime | None = None
    error: str | None = None  # reason code: why the target could not be observed
    error_detail: str | None = None
    evidence: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.seen_at is not None or self.error is not None or self.baseline_active

    def see(self, at: datetime, evidence: Iterable[str], **facts: Any) -> None:
        if self.seen_at is None:
            self.seen_at = at
            self.evidence += [e for e in evidence if e and e not in self.evidence]
            self.facts |= facts

    def fail(self, exc: CollectorError) -> None:
        self.broken(exc.reason, str(exc), (exc.exchange_id,) if exc.exchange_id else ())

    def broken(self, reason: str, detail: str, evidence: Iterable[str] = ()) -> None:
        if self.error is None and self.seen_at is None:
            self.error, self.error_detail = reason, detail
            self.evidence += [e for e in evidence if e]


@dataclass(frozen=True)
class Observed:
    """A Watch as the run ended."""

    effect: Effect
    target: str
    deadline_s: float
    delay_s: float | None  # trigger to first observation; None: never seen
    baseline_active: bool
    error: str | None
    error_detail: str | None
    evidence: tuple[str, ...]
    facts: Mapping[str, Any]

    @property
    def status(self) -> WatchStatus:
        if self.delay_s is not None:
            return "on_time" if self.delay_s <= self.deadline_s else "late"
        if self.baseline_active:
            return "already_active"
        return "error" if self.error is not None else "missing"

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "effect": self.effect,
            "target": self.target,
            "status": self.status,
            "delay_s": self.delay_s,
            "deadline_s": self.deadline_s,
        }
        if self.error is not None and self.delay_s is None:
            row |= {"error": self.error, "error_detail": self.error_detail}
        return row | dict(self.facts)


@dataclass(frozen=True)
class RestoreStep:
    step: str  # panel_reset, test_mode_off, panel_normal, door_locked, camera_cleared, relay_off ...
    target: str
    ok: bool
    detail: str
    evidence: tuple[str, ...] = ()
    operator_told: bool = False


def restore_rows(steps: Iterable[RestoreStep]) -> list[dict[str, Any]]:
    return [
        {"step": s.step, "target": s.target, "ok": s.ok, "detail": s.detail, "operator_told": s.operator_told}
        for s in steps
    ]


@dataclass(frozen=True)
class Problem:
    """Why a test could not run: the reason code, a sentence, and the exchanges that show it."""

    reason: str
    detail: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkageRun:
    test: str  # fire_linkage | intrusion_linkage
    subject: str  # the panel or camera tested
    trigger_kind: TriggerKind
    area: str
    zone: int | None
    outcome: Outcome
    started_at: datetime
    trigger_at: datetime | None
    trigger_evidence: tuple[str, ...]
    observed_until: datetime | None
    watches: tuple[Observed, ...]
    restore: tuple[RestoreStep, ...]
    problem: Problem | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def restored(self) -> bool:
        return all(step.ok for step in self.restore)

    def of(self, effect: Effect) -> tuple[Observed, ...]:
        return tuple(w for w in self.watches if w.effect == effect)


@dataclass(frozen=True)
class PanelRun:
    """A panel's fire test: one LinkageRun per zone tested, in the order they ran."""

    panel: str
    runs: tuple[LinkageRun, ...]
    sample: Mapping[str, Any]  # how the zones were chosen (the facts' zone_sample)


def seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)
