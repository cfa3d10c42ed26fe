"""The report as JUnit XML, for pipelines that already read it (continuous compliance monitoring).

One testsuite per level, one testcase per indicator. A final fail or partial is a <failure> (type
fail / partial); anything the evaluator still has to decide is <skipped>: no decisive result, a
scored item not evaluated behind a failed basic requirement (6.2), or a machine failure set aside by
a waiver. A pass is a plain testcase. system-out carries the verdicts and the evidence: each finding
and the ledger records (id, sequence number, hash) it rests on.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from zhian.report.escape import clean
from zhian.report.messages import Messages, messages
from zhian.report.model import EvidenceView, FindingView, IndicatorRow, Report, ResultView


def _result(label: str, r: ResultView | None) -> str:
    if r is None:
        return f"{label}: —"
    ratio = f" ratio {r.ratio:g}" if r.ratio is not None else ""
    return f"{label}: {r.status}{ratio}" + (f" — {r.note}" if r.note else "")


def _out(i: IndicatorRow, findings: list[FindingView], evidence: dict[str, EvidenceView]) -> str:
    lines = [
        _result("machine", i.machine),
        _result("evaluator", i.evaluator),
        f"final: {i.final_status}; awarded {i.awarded:g}" + (" (gated, 6.2)" if i.gated else ""),
    ]
    if i.waiver:
        w = i.waiver
        lines.append(f"waiver: {w.state}, expires {w.expires}, approved by {w.approver}: {w.justification}")
    for n in i.findings:
        f = findings[n - 1]
        lines.append(f"F{n} {f.probe} on {f.device}: {f.status} {f.reason} — {f.detail}")
        for ex in f.evidence:
            e = evidence.get(ex)
            where = f"ledger record #{e.seq} sha256 {e.hash}" if e and e.found else "not in the ledger"
            lines.append(f"  evidence {ex}: {where}")
    return "\n".join(lines)


def _skip_reason(t: Messages, i: IndicatorRow) -> str | None:
    if i.gated:
        return f"{t('indicator.gated')}; {t('junit.own', status=t('status.' + i.final_status))}"
    if i.waiver and i.waiver.state == "applied":
        return t("waiver.applied", expires=i.waiver.expires, on=i.waiver.judged_on)
    if i.final_status in ("pass", "fail", "partial"):
        return None
    return t("junit.pending", status=t("status." + i.final_status))


def render_junit(r: Report) -> str:
    t = messages(r.lang)
    evidence = {e.id: e for e in r.evidence}
    root = ET.Element("testsuites", name=clean(f"zhian report: {r.overview.community.name}"))
    totals = {"tests": 0, "failures": 0, "skipped": 0}
    for level in r.run.levels:
        rows = [i for i in r.indicators if i.level == level]
        if not rows:
            continue
        suite = ET.SubElement(
            root, "testsuite", name=clean(t("indicator.level", level=level)), timestamp=r.report_date
        )
        props = ET.SubElement(suite, "properties")
        total = next((s for s in r.summary.levels if s.level == level), None)
        properties: tuple[tuple[str, str], ...] = (
            ("run_id", r.run.run_id),
            ("total", f"{total.total:g}" if total else ""),
            ("passed", str(total.passed).lower() if total else ""),
            ("threshold", r.run.threshold),
        )
        for name, value in properties:
            ET.SubElement(props, "property", name=name, value=clean(value))
        counts = {"tests": 0, "failures": 0, "skipped": 0}
        for i in rows:
            counts["tests"] += 1
            case = ET.SubElement(
                suite, "testcase", classname=clean(f"{level}.{i.first_level}.{i.second_level}"), time="0"
            )
            case.set("name", clean(f"{i.id} {i.text}"))
            skip = _skip_reason(t, i)
            if skip is not None:
                counts["skipped"] += 1
                ET.SubElement(case, "skipped", message=clean(skip))
            elif i.final_status in ("fail", "partial"):
                counts["failures"] += 1
                source = i.evaluator or i.machine
                message = t("status." + i.final_status) + (
                    f": {source.note}" if source and source.note else ""
                )
                failure = ET.SubElement(case, "failure", type=i.final_status, message=clean(message))
                failure.text = clean(f"{i.id} {i.text}")
            ET.SubElement(case, "system-out").text = clean(_out(i, r.findings, evidence))
        for key, n in counts.items():
            suite.set(key, str(n))
            totals[key] += n
        suite.set("errors", "0")
    for key, n in totals.items():
        root.set(key, str(n))
    root.set("errors", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
