"""The one-screen summary in every format `zhian report --summary --format` offers.

The terminal text is `screen.render_screen`; json is `summary_data` (zhian.summary/1), and md, html
and JUnit render that same data, so a CI job or a script reads what a person reads.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from zhian.report.escape import clean, esc
from zhian.report.messages import messages
from zhian.report.model import Report
from zhian.report.screen import fix_line, level_state, render_screen, sample_lines

SUMMARY_SCHEMA = "zhian.summary/1"
CSP = "default-src 'none'; style-src 'unsafe-inline'"
STYLE = "body{font-family:sans-serif;max-width:60rem;margin:1rem auto}li{white-space:pre-wrap}"


def summary_data(report: Report) -> dict[str, Any]:
    """What the screen shows, as data: grade, levels, coverage, sampling, problems, unread devices."""
    s, cov = report.summary, report.coverage
    waiting = sum(c.waiting.indicators for c in cov)
    return {
        "schema": SUMMARY_SCHEMA,
        "lang": report.lang,
        "run_id": report.run.run_id,
        "tool": report.run.tool,
        "community": report.overview.community.name,
        "target_level": report.overview.community.target_level,
        "threshold": s.threshold,
        "grade": s.grade,
        "provisional": waiting > 0,
        "interrupted": report.run.interrupted,
        "recovered": report.run.recovered,  # sealed after a kill by `zhian seal --recover`
        "recovery_reason": report.run.recovery_reason,
        "levels": [
            {
                "level": lv.level,
                "total": lv.total,
                "max": lv.max,
                "state": level_state(lv),
                "basic_failed": lv.basic_failed,
            }
            for lv in s.levels
        ],
        "coverage": {
            "machine_decided": sum(c.machine_decided.indicators for c in cov),
            "machine_points": sum(c.machine_decided.points for c in cov),
            "waiting": waiting,
            "waiting_points": sum(c.waiting.points for c in cov),
        },
        "sampling": {
            "mode": report.run.sampling_mode,
            "seed": report.run.sampling_seed,
            "groups": [
                {"group": g.group, "population": g.population, "size": g.size, "rule": g.rule}
                for g in report.overview.samples
            ],
        },
        "fixes": [
            {
                "rank": f.rank,
                "reason": f.reason,
                "status": f.status,
                "fix_on": f.fix_on,
                "seen_on": f.seen_on,
                "indicators": f.indicators,
                "gates": f.gates,
                "points": f.points,
            }
            for f in report.problems.fixes
        ],
        "failing_indicators": [p.indicator for p in report.problems.items],
        "unread": [u.device for u in report.problems.unread],
    }


def _json(report: Report) -> str:
    return json.dumps(summary_data(report), ensure_ascii=False, indent=2) + "\n"


def _markdown(report: Report) -> str:
    t = messages(report.lang)
    lines = render_screen(report).splitlines()
    out = [f"# {clean(lines[0])}", ""]
    out += [f"- {clean(line.strip())}" for line in lines[1:] if line.strip()]
    out.append("")
    if report.problems.fixes:
        cols = ("col.rank", "col.cause", "col.fix_on", "col.touches", "col.impact")
        out += ["| " + " | ".join(t(c) for c in cols) + " |", "|---|---|---|---|---|"]
        for f in report.problems.fixes:
            impact = (t("fix.gates", items=", ".join(f.gates)) + "; " if f.gates else "") + t(
                "fix.points", points=f"{f.points:g}"
            )
            cells = (str(f.rank), t.reason(f.reason), f.fix_on, ", ".join(f.indicators), impact)
            out.append("| " + " | ".join(clean(c).replace("|", "\\|") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def _html(report: Report) -> str:
    lines = render_screen(report).splitlines()
    body = "\n".join(f"<li>{esc(line.strip())}</li>" for line in lines[1:] if line.strip())
    lang = "zh-CN" if report.lang == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>{esc(lines[0])}</title><style>{STYLE}</style></head>\n"
        f"<body><h1>{esc(lines[0])}</h1>\n<ul>\n{body}\n</ul></body></html>\n"
    )


def _junit(report: Report) -> str:
    """One test case per level (failure when not passed) and one per fix."""
    t = messages(report.lang)
    data = summary_data(report)
    root = ET.Element("testsuites", name=clean(f"zhian summary: {data['community']}"))
    suite = ET.SubElement(root, "testsuite", name=clean(data["run_id"]))
    failures = 0
    for lv in data["levels"]:
        case = ET.SubElement(suite, "testcase", classname="level", name=f"level {lv['level']}")
        if lv["state"] != "level.passed":
            failures += 1
            ET.SubElement(case, "failure", type=lv["state"], message=clean(t(lv["state"])))
    for fix in report.problems.fixes:
        case = ET.SubElement(suite, "testcase", classname="fix", name=f"{fix.reason} @ {fix.fix_on}")
        failures += 1
        ET.SubElement(case, "failure", type=fix.status, message=clean(fix_line(t, fix)))
    suite.set("tests", str(len(data["levels"]) + len(report.problems.fixes)))
    suite.set("failures", str(failures))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


SUMMARY_RENDERERS = {"text": render_screen, "json": _json, "md": _markdown, "html": _html, "junit": _junit}
__all__ = ["SUMMARY_RENDERERS", "sample_lines", "summary_data"]
