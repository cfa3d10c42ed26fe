"""Judging a linkage run (no I/O): the findings of the probes that share it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from probes.finding import Finding, Status
from probes.linkage.params import FIRE, LABELS, NOT_RUN, Effect
from probes.linkage.watches import LinkageRun, PanelRun, restore_rows, seconds_between


def timeline_facts(run: LinkageRun) -> dict[str, Any]:
    """What every linkage record carries, active or observed from a real alarm: the trigger and the
    whole timeline (the period report reads this shape)."""
    return {
        "test": run.test,
        "subject": run.subject,
        "trigger": run.trigger_kind,
        "zone": run.zone,
        "area": run.area,
        "outcome": run.outcome,
        "trigger_at": run.trigger_at.isoformat() if run.trigger_at else None,
        "observed_for_s": seconds_between(run.trigger_at, run.observed_until),
        "timeline": [w.row() for w in run.watches],
        **run.facts,
    }


def run_facts(run: LinkageRun, effect: Effect) -> dict[str, Any]:
    """Facts every linkage finding carries: the timeline, the effect judged, and the restore."""
    own = run.of(effect)
    return (
        timeline_facts(run)
        | {
            "effect": effect,
            "deadline_s": max((w.deadline_s for w in own), default=None),
            "targets": {w.target: w.row() for w in own},
            "restore": {"complete": run.restored, "steps": restore_rows(run.restore)},
        }
        | dict(run.facts)
    )  # the test's own facts have the last word, as in timeline_facts


def judge_effect(
    probe: str, device: str, run: LinkageRun, effect: Effect, started_at: datetime, finished_at: datetime
) -> Finding:
    """Pass when every expected target showed the effect within its deadline; fail when one never did
    (effect_missing) or did too late (effect_late); error when a target could not be observed."""
    facts = run_facts(run, effect)
    label = LABELS[effect]
    restore_note = "" if run.restored else " The site was not fully restored after the test (see facts)."

    def finding(status: Status, reason: str, detail: str, evidence: Iterable[str] = ()) -> Finding:
        return Finding(
            probe=probe,
            device=device,
            status=status,
            reason=reason,
            detail=detail + restore_note,
            facts=facts,
            evidence=tuple(dict.fromkeys(e for e in evidence if e)),
            started_at=started_at,
            finished_at=finished_at,
        )

    if run.outcome != "triggered":
        evidence = run.trigger_evidence + (run.problem.evidence if run.problem else ())
        if run.problem is not None:
            return finding("error", run.problem.reason, run.problem.detail, evidence)
        return finding("not_assessed", run.outcome, NOT_RUN[run.outcome], evidence)
    own = run.of(effect)
    if not own:
        return finding("not_assessed", "no_targets", f"Nothing in {run.area} is expected to show a {label}.")
    evidence = run.trigger_evidence + tuple(e for w in own for e in w.evidence)
    missing = [w for w in own if w.status == "missing"]
    late = [w for w in own if w.status == "late"]
    broken = [w for w in own if w.status == "error"]
    active = [w for w in own if w.status == "already_active"]
    facts["missing"] = [w.target for w in missing]
    facts["late"] = {w.target: {"delay_s": w.delay_s, "deadline_s": w.deadline_s} for w in late}
    if missing:
        names = ", ".join(w.target for w in missing)
        window = facts["observed_for_s"] or facts["deadline_s"]
        return finding(
            "fail", "effect_missing", f"No {label} from {names} within {window:g} s of the trigger.", evidence
        )
    if late:
        worst = max(late, key=lambda w: w.delay_s or 0.0)
        return finding(
            "fail",
            "effect_late",
            f"{label.capitalize()} came late: {worst.target} after {worst.delay_s:g} s "
            f"(deadline {worst.deadline_s:g} s).",
            evidence,
        )
    if broken:
        names = ", ".join(f"{w.target} ({w.error})" for w in broken)
        return finding("error", broken[0].error or "error", f"Could not observe {names}.", evidence)
    if active:
        names = ", ".join(w.target for w in active)
        return finding(
            "not_assessed",
            "effect_already_active",
            f"{names} already showed the {label} before the trigger, so the linkage cannot be timed.",
            evidence,
        )
    slowest = max(w.delay_s or 0.0 for w in own)
    return finding(
        "pass",
        "effect_in_time",
        f"Every target showed the {label} within its deadline ({len(own)} targets, slowest {slowest:g} s).",
        evidence,
    )


# The panel's verdict is its worst zone's.
ZONE_ORDER: dict[Status, int] = {"fail": 0, "error": 1, "not_assessed": 2, "partial": 3, "pass": 4}


def judge_zones(
    probe: str, device: str, run: PanelRun, effect: Effect, started_at: datetime, finished_at: datetime
) -> Finding:
    """Each zone judged on its own (judge_effect), the panel by its worst zone; zones without a target
    for the effect count only when no zone has one. Evidence and facts of every zone are kept."""
    judged = [(r, judge_effect(probe, device, r, effect, started_at, finished_at)) for r in run.runs]
    counted = [(r, f) for r, f in judged if f.reason != "no_targets"] or judged
    worst = min((f.status for _, f in counted), key=ZONE_ORDER.__getitem__)
    deciding = [(r, f) for r, f in counted if f.status == worst]
    detail = " ".join(_in_zone(r, f.detail) for r, f in deciding)
    if len(judged) > 1:
        tally = ", ".join(f"{r.zone} {f.status}" for r, f in judged)
        detail += f" (zones tested: {tally})"
    facts: dict[str, Any] = {
        "test": FIRE,
        "subject": run.panel,
        "trigger": run.runs[0].trigger_kind,
        "effect": effect,
        "zone_sample": dict(run.sample),
        "restore_complete": all(r.restored for r in run.runs),
        "zones": [f.facts | {"status": f.status, "reason": f.reason, "detail": f.detail} for _, f in judged],
    }
    return Finding(
        probe=probe,
        device=device,
        status=worst,
        reason=deciding[0][1].reason,
        detail=detail,
        facts=facts,
        evidence=tuple(dict.fromkeys(e for _, f in judged for e in f.evidence)),
        started_at=started_at,
        finished_at=finished_at,
    )


def _in_zone(run: LinkageRun, detail: str) -> str:
    return detail if run.zone is None else f"Zone {run.zone} ({run.area}): {detail}"


def not_permitted(probe: str, device: str, test: str, at: datetime) -> Finding:
    return Finding(
        probe,
        device,
        "not_assessed",
        "active_not_permitted",
        f"Active test {test!r} is not permitted in this run.",
        started_at=at,
        finished_at=at,
    )
