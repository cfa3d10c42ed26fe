"""Points, gates, level totals, grade and eligibility, exactly as the standard counts them.

- scored items: pass = full points, partial = points x ratio, fail = 0; not_assessed and error
  give 0 and stay listed as open.
- 6.2: a failed basic item of a first-level indicator gates its scored items (0, marked gated);
  a basic item not passed yet (not_assessed, partial, error, or no verdict) makes it pending.
- 9.1 / 9.2: a level passes with a total above 80 (gt) or from 80 (ge); a total of exactly 80
  is flagged in both modes because the two clauses disagree there. A level with a pending or
  failed basic item is not passed.
- 9.2 grade: A needs A, B and C passed; B needs B and C; C needs C.
- 9.3: a failed basic item in a level a grade requires makes the community ineligible for it.

Pure: no I/O, exact decimals throughout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from mapping.catalog import LEVELS, Catalog, Indicator
from scorer.results import Result, Verdict

Threshold = Literal["gt", "ge"]
PASS_MARK = Decimal(80)
SCHEMA = "zhian.score/1"
GRADE_NEEDS: dict[str, tuple[str, ...]] = {"A": ("A", "B", "C"), "B": ("B", "C"), "C": ("C",)}


def number(value: Decimal) -> int | float:
    """At most two decimals, and an int when whole, for JSON and tables."""
    q = value.quantize(Decimal("0.01"))
    return int(q) if q == q.to_integral_value() else float(q)


@dataclass(frozen=True)
class IndicatorScore:
    indicator: Indicator
    verdict: Verdict
    awarded: Decimal  # 0 for basic items
    gated: bool
    open: bool  # scored item without a decisive result (not assessed / error / no verdict)

    def as_dict(self) -> dict[str, Any]:
        final = self.verdict.final
        return {
            "kind": self.indicator.kind,
            "max": None if self.indicator.points is None else number(self.indicator.points),
            "awarded": number(self.awarded),
            "status": final.status if final else "not_assessed",
            "gated": self.gated,
            "open": self.open,
            "machine": self.verdict.machine.as_dict() if self.verdict.machine else None,
            "evaluator": self.verdict.evaluator.as_dict() if self.verdict.evaluator else None,
        }


FirstLevelStatus = Literal["scored", "gated", "pending"]


@dataclass(frozen=True)
class FirstLevelScore:
    id: str
    total: Decimal
    max: Decimal
    status: FirstLevelStatus

    def as_dict(self) -> dict[str, Any]:
        return {"total": number(self.total), "max": number(self.max), "status": self.status}


@dataclass(frozen=True)
class LevelScore:
    level: str
    total: Decimal
    max: Decimal
    passed: bool
    meets_threshold: bool
    exactly_80: bool
    basic_failed: tuple[str, ...]
    basic_pending: tuple[str, ...]
    gated: tuple[str, ...]
    open: tuple[str, ...]
    first_levels: tuple[FirstLevelScore, ...]
    indicators: tuple[IndicatorScore, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": number(self.total),
            "max": number(self.max),
            "passed": self.passed,
            "meets_threshold": self.meets_threshold,
            "exactly_80": self.exactly_80,
            "basic_failed": list(self.basic_failed),
            "basic_pending": list(self.basic_pending),
            "gated": list(self.gated),
            "open": list(self.open),
            "first_levels": {f.id: f.as_dict() for f in self.first_levels},
            "indicators": {s.indicator.id: s.as_dict() for s in self.indicators},
        }


@dataclass(frozen=True)
class Eligibility:
    grade: str
    eligible: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class ScoreReport:
    threshold: Threshold
    grade: str | None
    levels: tuple[LevelScore, ...]
    eligibility: tuple[Eligibility, ...]

    def level(self, level: str) -> LevelScore:
        return next(s for s in self.levels if s.level == level)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "threshold": self.threshold,
            "grade": self.grade,
            "levels": {s.level: s.as_dict() for s in self.levels},
            "eligibility": {
                e.grade: {"eligible": e.eligible, "reasons": list(e.reasons)} for e in self.eligibility
            },
        }


def _awarded(ind: Indicator, result: Result | None) -> Decimal:
    if ind.points is None or result is None:
        return Decimal(0)
    if result.status == "pass":
        return ind.points
    if result.status == "partial" and result.ratio is not None:
        return ind.points * result.ratio
    return Decimal(0)


def meets(total: Decimal, threshold: Threshold) -> bool:
    return total > PASS_MARK if threshold == "gt" else total >= PASS_MARK


def score_level(
    catalog: Catalog, level: str, verdicts: Mapping[str, Verdict], threshold: Threshold
) -> LevelScore:
    items = catalog.level(level)
    failed: list[str] = []
    pending: list[str] = []
    for ind in items:
        if ind.kind != "basic":
            continue
        final = verdicts.get(ind.id, Verdict()).final
        if final is not None and final.status == "fail":
            failed.append(ind.id)
        elif final is None or final.status != "pass":
            pending.append(ind.id)
    gated_fl = {catalog.get(i).first_level.id for i in failed}
    pending_fl = {catalog.get(i).first_level.id for i in pending} - gated_fl

    scores: list[IndicatorScore] = []
    for ind in items:
        verdict = verdicts.get(ind.id, Verdict())
        gated = ind.kind == "scored" and ind.first_level.id in gated_fl
        final = verdict.final
        awarded = Decimal(0) if gated else _awarded(ind, final)
        is_open = (
            ind.kind == "scored"
            and not gated
            and (final is None or final.status in ("not_assessed", "error"))
        )
        scores.append(IndicatorScore(ind, verdict, awarded, gated, is_open))

    firsts: list[FirstLevelScore] = []
    for group in catalog.first_levels(level):
        total = sum((s.awarded for s in scores if s.indicator.first_level.id == group.id), Decimal(0))
        status: FirstLevelStatus = (
            "gated" if group.id in gated_fl else "pending" if group.id in pending_fl else "scored"
        )
        firsts.append(FirstLevelScore(group.id, total, group.points or Decimal(0), status))

    total = sum((f.total for f in firsts), Decimal(0))
    ok = meets(total, threshold)
    return LevelScore(
        level=level,
        total=total,
        max=sum((f.max for f in firsts), Decimal(0)),
        passed=ok and not failed and not pending,
        meets_threshold=ok,
        exactly_80=total == PASS_MARK,
        basic_failed=tuple(failed),
        basic_pending=tuple(pending),
        gated=tuple(f.id for f in firsts if f.status == "gated"),
        open=tuple(s.indicator.id for s in scores if s.open),
        first_levels=tuple(firsts),
        indicators=tuple(scores),
    )


def score(catalog: Catalog, verdicts: Mapping[str, Verdict], threshold: Threshold = "gt") -> ScoreReport:
    levels = tuple(score_level(catalog, level, verdicts, threshold) for level in LEVELS)
    by_level = {s.level: s for s in levels}
    eligibility = tuple(
        Eligibility(
            grade,
            eligible=not any(by_level[lv].basic_failed for lv in needs),
            reasons=tuple(f"{i} failed" for lv in needs for i in by_level[lv].basic_failed),
        )
        for grade, needs in GRADE_NEEDS.items()
    )
    grade = next(
        (
            g
            for g, needs in GRADE_NEEDS.items()
            if all(by_level[lv].passed for lv in needs)
            and next(e for e in eligibility if e.grade == g).eligible
        ),
        None,
    )
    return ScoreReport(threshold, grade, levels, eligibility)
