"""The report's first screen and the fixes of part 3, in HTML.

The first screen says what the machine could decide, what it found, the fixes that matter most and
what waits for the evaluator; while anything waits, scores and grade are marked provisional.
"""

from __future__ import annotations

from zhian.report.escape import esc
from zhian.report.messages import Messages
from zhian.report.model import Report
from zhian.report.screen import fix_line, level_state, sample_lines, waiting

FIRST_FIXES = 5


def _num(value: float) -> str:
    return f"{value:g}"


def first_screen(r: Report, t: Messages) -> str:
    s, community = r.summary, r.overview.community
    n_wait, wait_points = waiting(r)
    mark = f' <span class="prov">{esc(t("first.provisional"))}</span>' if n_wait else ""
    grade = t("grade.value", grade=s.grade) if s.grade else t("grade.none")
    lines = [f"<p class=big>{esc(t('first.grade', grade=grade, target=community.target_level))}{mark}</p>"]
    lines.append(
        f'<p class="{"note" if n_wait else "sub"}">'
        + esc(
            t("first.provisional_explain", waiting=n_wait, points=_num(wait_points))
            if n_wait
            else t("first.final")
        )
        + "</p>"
    )
    levels = "".join(
        "<li>"
        + esc(
            t("first.level", level=lv.level, total=_num(lv.total), max=_num(lv.max), state=t(level_state(lv)))
        )
        + f"{mark}</li>"
        for lv in s.levels
    )
    machine = sum(c.machine_decided.indicators for c in r.coverage)
    points = sum(c.machine_decided.points for c in r.coverage)
    evaluator = sum(c.evaluator_decided.indicators for c in r.coverage)
    lines.append(f"<ul>{levels}</ul>")
    lines.append(
        f"<p>{esc(t('first.decided', machine=machine, points=_num(points), evaluator=evaluator))}</p>"
    )
    lines += [f"<p>{esc(line)}</p>" for line in sample_lines(r, t)]
    fixes = r.problems.fixes
    if fixes:
        touched = len({i for f in fixes for i in f.indicators})
        lines.append(f"<p><b>{esc(t('first.found', fixes=len(fixes), indicators=touched))}</b></p>")
        items = "".join(
            f'<li><a href="#fix-{f.rank}">{esc(fix_line(t, f))}</a></li>' for f in fixes[:FIRST_FIXES]
        )
        lines.append(f"<ul class=fixes>{items}</ul>")
        if len(fixes) > FIRST_FIXES:
            lines.append(f"<p>{esc(t('first.more', n=len(fixes) - FIRST_FIXES))}</p>")
    else:
        lines.append(f"<p>{esc(t('first.none'))}</p>")
    if r.problems.unread:
        lines.append(f"<p>{esc(t('first.unread', n=len(r.problems.unread)))}</p>")
    lines.append(f"<p>{esc(t('first.waiting', waiting=n_wait, points=_num(wait_points)))}</p>")
    return f'<section id="first" class="first"><h2>{esc(t("first.title"))}</h2>{"".join(lines)}</section>'


def fixes_table(r: Report, t: Messages) -> str:
    if not r.problems.fixes:
        return ""
    head = "".join(
        f"<th>{esc(t(k))}</th>"
        for k in (
            "col.rank",
            "col.cause",
            "col.fix_on",
            "col.seen_on",
            "col.touches",
            "col.impact",
            "col.fix",
        )
    )
    rows = []
    for f in r.problems.fixes:
        kind = f" ({t('kind.' + f.fix_kind)})" if f.fix_kind and t.has("kind." + f.fix_kind) else ""
        touched = "<br>".join(
            f'<a href="#ind-{esc(i)}">{esc(i)}</a> {esc(f.indicator_titles.get(i, ""))}' for i in f.indicators
        )
        impact = [esc(t("fix.gates", items=", ".join(f.gates)))] if f.gates else []
        impact.append(esc(t("fix.points", points=_num(f.points))))
        links = " ".join(f'<a href="#f-{n}">F{n}</a>' for n in f.findings)
        rows.append(
            f'<tr id="fix-{f.rank}"><td class=num>{f.rank}</td>'
            f'<td><span class="st st-{esc(f.status)}">{esc(t.reason(f.reason))}</span><br>{links}</td>'
            f"<td>{esc(f.fix_on + kind)}</td><td>{esc(', '.join(f.seen_on))}</td>"
            f"<td>{touched}</td><td>{'<br>'.join(impact)}</td><td>{esc(f.remediation)}</td></tr>"
        )
    return (
        f"<h3>{esc(t('fix.heading'))}</h3><p>{esc(t('fix.explain'))}</p>"
        f"<table class=fixtable><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        f"<h3>{esc(t('fix.by_indicator'))}</h3>"
    )
