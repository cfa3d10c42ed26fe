"""The monitor's status board: the current status of each (probe, device) and of each indicator.

A finding is kept in the ledger only when its (probe, device) changes status, so silence in the
ledger means "unchanged", never "unchecked": each indicator is also re-recorded once a day (the
still-holds record) with the status it holds. The board is rebuilt on a restart from the state
sealed with the last segment plus the records written after it, so a restart records nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mapping.catalog import Catalog
from mapping.rules import RuleSet, Tally
from probes.finding import Finding

Key = tuple[str, str]  # (probe, device)
UNKNOWN = "unknown"


@dataclass
class Indicator:
    status: str
    since: str
    held_at: str  # when the status was last recorded (a change or a still-holds record)
    ratio: float | None = None
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {"status": self.status, "since": self.since, "held_at": self.held_at, "ratio": self.ratio}


def key_of(probe: str, device: str) -> str:
    return f"{probe}|{device}"


class Board:
    def __init__(self, rules: RuleSet, catalog: Catalog, scope: Mapping[str, set[Key]]) -> None:
        self.rules, self.catalog = rules, catalog
        # scope: indicator -> the (probe, device) pairs its rule judges (judged_pairs)
        self.indicators_of: dict[Key, list[str]] = {}
        for indicator, keys in scope.items():
            for key in keys:
                self.indicators_of.setdefault(key, []).append(indicator)
        self.latest: dict[Key, Finding] = {}
        self.since: dict[Key, str] = {}
        self.indicators: dict[str, Indicator] = {}
        self._dirty: set[str] = set()
        # indicator -> its findings tallied as they come: re-judged without a pass over all of them
        self._tallies: dict[str, Tally] = {i: Tally() for i in scope}

    # -- findings ---------------------------------------------------------------------------------
    def _set(self, key: Key, finding: Finding) -> Finding | None:
        before = self.latest.get(key)
        self.latest[key] = finding
        for indicator in self.indicators_of.get(key, ()):
            tally = self._tallies[indicator]
            if before is not None:
                tally.remove(key, before)
            tally.add(key, finding)
        return before

    def observe(self, finding: Finding) -> str | None:
        """Keep the finding; the status it replaces when it is a change (UNKNOWN for a first), else None."""
        key = (finding.probe, finding.device)
        before = self._set(key, finding)
        if before is not None and (before.status, before.ratio) == (finding.status, finding.ratio):
            return None
        self.since[key] = finding.finished_at.isoformat()
        self._dirty.update(self.indicators_of.get(key, ()))
        return before.status if before is not None else UNKNOWN

    # -- indicators -------------------------------------------------------------------------------
    def judge_dirty(self, at: datetime) -> list[tuple[str, str, Indicator]]:
        """Re-judge the indicators whose findings changed: (indicator, previous status, now) per change."""
        changes: list[tuple[str, str, Indicator]] = []
        for indicator in sorted(self._dirty):
            rule = self.rules.for_indicator(indicator)
            if rule is None:
                continue
            status, ratio, note = self._tallies[indicator].verdict(
                rule, basic=self.catalog.get(indicator).kind == "basic"
            )  # judge() over the indicator's latest findings, from their tally
            old = self.indicators.get(indicator)
            if old is not None and (old.status, old.ratio) == (status, ratio):
                old.note = note
                continue
            stamp = at.isoformat()
            now = Indicator(status, stamp, stamp, ratio, note)
            self.indicators[indicator] = now
            changes.append((indicator, old.status if old else UNKNOWN, now))
        self._dirty.clear()
        return changes

    def still_holding(self, at: datetime, every_s: float) -> list[tuple[str, Indicator]]:
        """Indicators not recorded for `every_s`: recorded again now, with the status they hold."""
        due: list[tuple[str, Indicator]] = []
        for indicator, state in sorted(self.indicators.items()):
            if (at - datetime.fromisoformat(state.held_at)).total_seconds() >= every_s:
                state.held_at = at.isoformat()
                due.append((indicator, state))
        return due

    def verdict_entries(self) -> dict[str, dict[str, Any]]:
        """The indicators' current statuses in the shape `zhian score` reads."""
        out: dict[str, dict[str, Any]] = {}
        for indicator, state in self.indicators.items():
            entry: dict[str, Any] = {"status": state.status, "source": "machine", "note": state.note}
            if state.ratio is not None:
                entry["ratio"] = state.ratio
            out[indicator] = entry
        return out

    # -- state across restarts --------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "schema": "zhian.monitor.state/1",
            "findings": {
                key_of(*k): finding_row(f) | {"since": self.since.get(k)} for k, f in self.latest.items()
            },
            "indicators": {i: s.row() | {"note": s.note} for i, s in self.indicators.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        for row in (state.get("findings") or {}).values():
            self._take(row)
        for indicator, row in (state.get("indicators") or {}).items():
            self.indicators[indicator] = Indicator(
                row["status"], row["since"], row["held_at"], row.get("ratio"), row.get("note", "")
            )

    def replay(self, bodies: Iterable[Mapping[str, Any]]) -> None:
        """Records written after the state was sealed (a segment a kill left open)."""
        for body in bodies:
            if body.get("kind") == "finding" and "change" in body:
                self._take({**body, "since": body.get("finished_at")})
            elif body.get("kind") == "indicator":
                stamp = str(body["at"])
                state = self.indicators.get(body["indicator"])
                since = state.since if state and body.get("record") == "still_holds" else stamp
                self.indicators[body["indicator"]] = Indicator(
                    body["status"], since, stamp, body.get("ratio"), body.get("note", "")
                )

    def _take(self, row: Mapping[str, Any]) -> None:
        finding = Finding(
            probe=row["probe"],
            device=row["device"],
            status=row["status"],
            reason=row["reason"],
            detail=row.get("detail", ""),
            facts=dict(row.get("facts") or {}),
            evidence=tuple(row.get("evidence") or ()),
            ratio=row.get("ratio"),
        )
        key = (finding.probe, finding.device)
        self._set(key, finding)
        if row.get("since"):
            self.since[key] = str(row["since"])


def finding_row(finding: Finding) -> dict[str, Any]:
    return {
        "probe": finding.probe,
        "device": finding.device,
        "status": finding.status,
        "reason": finding.reason,
        "detail": finding.detail,
        "ratio": finding.ratio,
        "evidence": list(finding.evidence),
        "facts": finding.facts,
    }
