"""Part 3 as a list of fixes: findings grouped by cause (reason code) and the device to fix, each
with the indicators it touches, ranked by impact.

One fault can fail several indicators and show on several devices (the platform that raises no
offline alert fails six indicators, seen on every intercom unplugged); the person who fixes it
needs it once, on the device to fix. Every failed or partial finding lands in a group, whoever
decides its indicators. Rank: a cause that fails a basic requirement of a level the target grade
needs comes first (6.2 gates its first level, 9.3 costs the grade), then any other failed basic
requirement, then the points at stake.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from scorer.score import GRADE_NEEDS, number
from zhian.report.model import Fix, IndicatorRow, Lang
from zhian.report.remediation import Remedies
from zhian.report.rundir import FindingIn, RunFiles

FAILING = ("fail", "partial")
TARGET_FAILED = ("missing", "late", "fail")


def targets_in(finding: FindingIn, statuses: Sequence[str]) -> list[str]:
    """A linkage finding's targets in one of `statuses`, in every zone (the target's own name wins
    over its key): the devices that did not respond, not the panel or camera that was the trigger."""
    groups = [finding.facts, *(z for z in finding.facts.get("zones") or () if isinstance(z, dict))]
    return sorted(
        {
            str(t.get("target") or name)
            for g in groups
            for name, t in (g.get("targets") or {}).items()
            if isinstance(t, dict) and t.get("status") in statuses
        }
    )


def fix_devices(finding: FindingIn, remedies: Remedies, first_of_kind: Mapping[str, str]) -> list[str]:
    kind = remedies.fix_on.get(finding.probe)
    if kind and kind in first_of_kind:
        return [first_of_kind[kind]]
    return targets_in(finding, TARGET_FAILED) or [finding.device]


def build_fixes(
    files: RunFiles,
    findings: Sequence[FindingIn],
    rows: Sequence[IndicatorRow],
    first_level_max: Mapping[str, float],
    remedies: Remedies,
    lang: Lang,
) -> list[Fix]:
    kind_of = {d.id: d.kind for d in files.run.inventory}
    first_of_kind: dict[str, str] = {}
    for d in files.run.inventory:
        first_of_kind.setdefault(d.kind, d.id)
    row_of = {r.id: r for r in rows}
    needed = set(GRADE_NEEDS.get(files.run.community.target_level, ()))
    groups: dict[tuple[str, str], list[tuple[int, FindingIn]]] = {}
    for n, f in enumerate(findings, 1):
        if f.status in FAILING:
            for device in fix_devices(f, remedies, first_of_kind):
                groups.setdefault((f.reason, device), []).append((n, f))
    fixes: list[tuple[tuple[int, float, str, str], Fix]] = []
    for (reason, device), found in groups.items():
        touched = sorted({i for _, f in found for i in f.indicators if i in row_of})
        gates = [i for i in touched if row_of[i].kind == "basic" and row_of[i].final_status == "fail"]
        at_stake = sum(
            (Decimal(str(row_of[i].points or 0)) for i in touched if row_of[i].final_status != "pass"),
            Decimal(0),
        ) + sum(
            (Decimal(str(first_level_max.get(fl, 0))) for fl in {row_of[i].first_level for i in gates}),
            Decimal(0),
        )
        first = found[0][1]
        gate_rank = 0 if any(row_of[i].level in needed for i in gates) else 1 if gates else 2
        fix = Fix(
            rank=0,
            reason=reason,
            probe=first.probe,
            fix_on=device,
            fix_kind=kind_of.get(device),
            seen_on=sorted({f.device for _, f in found}),
            indicators=touched,
            indicator_titles={i: row_of[i].text for i in touched},
            gates=gates,
            points=number(at_stake),
            status="fail" if any(f.status == "fail" for _, f in found) else "partial",
            findings=[n for n, _ in found],
            remediation=remedies.text(first.probe, reason, lang),
        )
        fixes.append(((gate_rank, -float(at_stake), reason, device), fix))
    fixes.sort(key=lambda pair: pair[0])
    return [fix.model_copy(update={"rank": rank}) for rank, (_, fix) in enumerate(fixes, 1)]
