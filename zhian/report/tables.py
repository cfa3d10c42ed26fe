"""Terminal tables for the catalog and the score, in Chinese and English."""

from __future__ import annotations

from decimal import Decimal

from mapping.catalog import LEVELS, Catalog, Indicator
from scorer.score import GRADE_NEEDS, ScoreReport, number
from zhian.report.textwidth import pad, wrap

TEXT_CELLS = 76


def _pts(value: Decimal | None) -> str:
    return "—" if value is None else str(number(value))


def catalog_table(catalog: Catalog, levels: tuple[str, ...]) -> str:
    out: list[str] = []
    for level in levels:
        items = catalog.level(level)
        out.append(f"Level {level} / {level} 级  ({len(items)} indicators)")
        first = second = ""
        for ind in items:
            if ind.first_level.id != first:
                first = ind.first_level.id
                fl = ind.first_level
                out.append(f"  {fl.id} {fl.name_zh} / {fl.name_en}  [{_pts(fl.points)}]")
            if ind.second_level.id != second:
                second = ind.second_level.id
                sl = ind.second_level
                out.append(f"    {sl.id} {sl.name_zh} / {sl.name_en}  [{_pts(sl.points)}]")
            out.extend(_indicator_rows(ind))
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _indicator_rows(ind: Indicator) -> list[str]:
    head = f"      {pad(ind.id, 8)} {pad(_pts(ind.points) if ind.kind == 'scored' else 'basic', 5)} "
    indent = " " * len(head)
    label = "" if ind.printed_label == ind.id else f"(printed {ind.printed_label or 'no label'}) "
    zh = ind.text_zh or "〔text lost in the paper〕"
    lines = wrap(label + zh, TEXT_CELLS) + (wrap(ind.text_en, TEXT_CELLS) if ind.text_en else [])
    return [head + lines[0]] + [indent + line for line in lines[1:]]


def catalog_summary(catalog: Catalog) -> str:
    out = ["level  first-level indicators (points)                              basic scored points"]
    for level in LEVELS:
        items = catalog.level(level)
        firsts = "  ".join(f"{g.id} {number(g.points or Decimal(0))}" for g in catalog.first_levels(level))
        basic = sum(1 for i in items if i.kind == "basic")
        total = sum((i.points or Decimal(0) for i in items), Decimal(0))
        out.append(f"{level}      {pad(firsts, 60)}{basic:>5} {len(items) - basic:>6} {number(total):>6}")
    lost = [i.id for i in catalog if i.text_lost]
    relabelled = [i.id for i in catalog if i.printed_label != i.id]
    out.append(f"text lost in the paper: {', '.join(lost)}")
    out.append(f"printed label differs from canonical ID: {len(relabelled)} indicators")
    return "\n".join(out) + "\n"


def score_table(report: ScoreReport) -> str:
    mode = "> 80 (9.1)" if report.threshold == "gt" else ">= 80 (9.2 以上)"
    out = [f"Pass mark: {mode}"]
    for lv in report.levels:
        state = "passed" if lv.passed else "pending" if lv.meets_threshold else "not passed"
        flag = "  ⚑ exactly 80: 9.1 and 9.2 disagree here" if lv.exactly_80 else ""
        out.append(f"Level {lv.level}: {number(lv.total)} / {number(lv.max)}  {state}{flag}")
        for fl in lv.first_levels:
            out.append(f"  {pad(fl.id, 4)} {number(fl.total):>6} / {number(fl.max):<4} {fl.status}")
        if lv.basic_failed:
            out.append(f"  basic requirements failed (6.2 gate): {', '.join(lv.basic_failed)}")
        if lv.basic_pending:
            out.append(f"  basic requirements not yet passed: {', '.join(lv.basic_pending)}")
        if lv.open:
            out.append(f"  open scored items (no decisive result): {len(lv.open)}")
    for e in report.eligibility:
        needs = "+".join(GRADE_NEEDS[e.grade])
        verdict = "eligible" if e.eligible else "NOT eligible (9.3): " + "; ".join(e.reasons)
        out.append(f"Grade {e.grade} (needs {needs}): {verdict}")
    out.append(f"Grade: {report.grade or 'none'}")
    return "\n".join(out) + "\n"
