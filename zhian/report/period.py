"""The period report of a monitor (zhian/monitor/period.py) in the formats `zhian report` has: the
`zhian.period/1` JSON, Markdown, one self-contained HTML file (the run report's style, words from the
same catalogues, the retention chart inline), JUnit XML (one testcase per indicator: a failure when
it spent any of the monitored period failing, so a pipeline sees a month with a lapse) and OSCAL
(period_oscal.py)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from zhian.monitor.period import FAILING, NOT_MONITORED
from zhian.report.escape import clean, esc
from zhian.report.html import CSS
from zhian.report.messages import Messages, messages
from zhian.report.model import Lang
from zhian.report.period_oscal import period_oscal
from zhian.report.svg_period import retention_over_period


def _status(t: Messages, status: str) -> str:
    if status == NOT_MONITORED:
        return t("period.not_monitored")
    return t("status." + status) if t.has("status." + status) else status


def _pct(share: float) -> str:
    return f"{share:.1%}"


def _n(value: object) -> str:
    return "—" if value is None else f"{value:g}" if isinstance(value, float | int) else str(value)


def _alert(t: Messages, outage: Mapping[str, Any]) -> str:
    alert = outage.get("platform_alert")
    if not alert:
        return t("period.alert.unknown")
    if alert.get("alert"):
        return t("period.alert.yes", after=_n(alert.get("after_s")), id=alert.get("alert_id") or "—")
    return t("period.alert.no", window=_n(alert.get("window_s")))


def _shares(t: Messages, shares: Mapping[str, float]) -> str:
    return ", ".join(f"{_status(t, k)} {_pct(v)}" for k, v in shares.items())


def _retention_rows(doc: Mapping[str, Any]) -> list[tuple[str, str, str, str, str]]:
    rows = []
    for device, checks in sorted(doc["retention"].items()):
        days = [r["observed_days"] for r in checks if isinstance(r.get("observed_days"), int | float)]
        if days:
            need = checks[-1].get("required_days")
            rows.append((device, f"{min(days):g}", f"{days[-1]:g}", _n(need), str(len(checks))))
    return rows


def _outage_rows(t: Messages, doc: Mapping[str, Any]) -> list[tuple[str, ...]]:
    return [
        (o["device"], t.reason(str(o.get("reason"))), o["start"], o["end"] or t("period.open"),
         _n(o.get("duration_s")), _alert(t, o))
        for o in doc["outages"]
    ]  # fmt: skip


def _linkage_rows(t: Messages, doc: Mapping[str, Any]) -> list[tuple[str, ...]]:
    def word(prefix: str, code: object) -> str:
        return t(f"{prefix}.{code}") if t.has(f"{prefix}.{code}") else str(code)

    rows: list[tuple[str, ...]] = []
    for event in doc["linkage_events"]:
        where = str(event.get("zone") or event.get("area") or event.get("subject") or "—")
        trigger = str(event.get("trigger") or "—")
        for e in event["effects"]:
            rows.append(
                (str(event["at"]), trigger, where, word("effect", e.get("effect")), str(e.get("target")),
                 word("watch", e.get("status")), _n(e.get("delay_s")), _n(e.get("deadline_s")))
            )  # fmt: skip
    return rows


def _degraded_lines(t: Messages, doc: Mapping[str, Any]) -> list[str]:
    return [
        t("period.degraded.row", indicator=d["indicator"], baseline=_status(t, d["baseline"]),
          now=_status(t, d["now"]), since=d.get("since", "—"))
        for d in doc.get("degraded_since_baseline", ())
    ]  # fmt: skip


def _gap_rows(t: Messages, gaps: Iterable[Mapping[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (str(g["device"]), str(g.get("started_at") or "—"), str(g.get("ended_at") or t("period.open")),
         str(g.get("reason") or g.get("error") or "—"))
        for g in gaps
    ]  # fmt: skip


def _heads(t: Messages, prefix: str, names: Sequence[str]) -> list[str]:
    return [t(f"{prefix}.{name}") for name in names]


OUTAGE_COLS = ("device", "reason", "start", "end", "duration", "alert")
LINKAGE_COLS = ("at", "trigger", "where", "effect", "target", "status", "delay", "deadline")
RETENTION_COLS = ("camera", "min", "last", "required", "checks")


# -- Markdown ------------------------------------------------------------------------------------------
def _md_table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(map(cell, row)) + " |" for row in rows]


def markdown(doc: Mapping[str, Any], t: Messages) -> str:
    lines = [f"# {t('period.title', start=doc['from'], end=doc['to'])}", "",
             t("period.monitored", share=_pct(doc["monitored_share"])), ""]  # fmt: skip
    lines += [f"## {t('period.indicators')}", ""]
    lines += _md_table(
        [t("period.col.indicator"), t("period.col.shares")],
        [(i, _shares(t, s)) for i, s in doc["indicators"].items()],
    )
    lines += ["", f"## {t('period.retention')}", ""]
    lines += _md_table(_heads(t, "period.col", RETENTION_COLS), _retention_rows(doc))
    lines += ["", f"## {t('period.outages')}", ""]
    lines += _md_table(_heads(t, "period.col", OUTAGE_COLS), _outage_rows(t, doc))
    for key, title in (("broker_gaps", "period.gaps"), ("event_gaps", "period.event_gaps")):
        lines += ["", f"## {t(title)}", ""]
        rows = _gap_rows(t, doc.get(key, ()))
        lines += [f"- {' | '.join(row)}" for row in rows] or [f"- {t('period.none')}"]
    lines += ["", f"## {t('period.linkage')}", ""]
    rows = _linkage_rows(t, doc)
    lines += _md_table(_heads(t, "period.col", LINKAGE_COLS), rows) if rows else [f"- {t('period.none')}"]
    if "degraded_since_baseline" in doc:
        lines += ["", f"## {t('period.degraded')}", ""]
        lines += [f"- {line}" for line in _degraded_lines(t, doc)] or [f"- {t('period.none')}"]
    return "\n".join(lines) + "\n"


# -- HTML ----------------------------------------------------------------------------------------------
def _html_table(head: Sequence[str], rows: Iterable[Sequence[str]], t: Messages) -> str:
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        return f"<p>{esc(t('period.none'))}</p>"
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def html(doc: Mapping[str, Any], t: Messages) -> str:
    start = datetime.combine(date.fromisoformat(doc["from"]), time(), UTC)
    end = datetime.combine(date.fromisoformat(doc["to"]) + timedelta(days=1), time(), UTC)
    title = t("period.title", start=doc["from"], end=doc["to"])
    indicators = "".join(
        f'<tr><td>{esc(i)}</td><td><span class="st st-{esc(_worst(s))}">{esc(_shares(t, s))}</span></td></tr>'
        for i, s in doc["indicators"].items()
    )
    head = f"<th>{esc(t('period.col.indicator'))}</th><th>{esc(t('period.col.shares'))}</th>"
    chart = retention_over_period(doc["retention"], start, end, t) or ""
    gap_head = [t("period.col.device"), t("period.col.start"), t("period.col.end"), t("period.col.reason")]
    parts = [
        f"<header><h1>{esc(title)}</h1><p class=sub>{esc(doc['state'])}</p>"
        f'<p class="note">{esc(t("period.intro"))}</p>'
        f"<p>{esc(t('period.monitored', share=_pct(doc['monitored_share'])))}</p></header>",
        f"<h2>{esc(t('period.indicators'))}</h2>",
        f"<table><thead><tr>{head}</tr></thead><tbody>{indicators}</tbody></table>"
        if indicators
        else f"<p>{esc(t('period.none'))}</p>",
        f"<h2>{esc(t('period.retention'))}</h2>",
        chart,
        _html_table(_heads(t, "period.col", RETENTION_COLS), _retention_rows(doc), t),
        f"<h2>{esc(t('period.outages'))}</h2>",
        _html_table(_heads(t, "period.col", OUTAGE_COLS), _outage_rows(t, doc), t),
        f"<h2>{esc(t('period.gaps'))}</h2>",
        _html_table(gap_head, _gap_rows(t, doc["broker_gaps"]), t),
        f"<h2>{esc(t('period.event_gaps'))}</h2>",
        _html_table(gap_head, _gap_rows(t, doc.get("event_gaps", ())), t),
        f"<h2>{esc(t('period.linkage'))}</h2>",
        _html_table(_heads(t, "period.col", LINKAGE_COLS), _linkage_rows(t, doc), t),
    ]
    if "degraded_since_baseline" in doc:
        lines = _degraded_lines(t, doc)
        items = "".join(f"<li>{esc(line)}</li>" for line in lines) or f"<li>{esc(t('period.none'))}</li>"
        warn = ' class="warn"' if lines else ""
        parts += [f"<h2>{esc(t('period.degraded'))}</h2>", f"<ul{warn}>{items}</ul>"]
    return (
        f'<!DOCTYPE html>\n<html lang="{esc(t.lang)}"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>" + "".join(parts) + "</body></html>\n"
    )


def _worst(shares: Mapping[str, float]) -> str:
    """The status class an indicator's row is coloured by: the worst it held in the period."""
    return next((s for s in ("fail", "partial", "error", "pass") if shares.get(s)), "not_assessed")


# -- JUnit ---------------------------------------------------------------------------------------------
def junit(doc: Mapping[str, Any], t: Messages) -> str:
    name = t("period.title", start=doc["from"], end=doc["to"])
    root = ET.Element("testsuites", name=clean(name))
    suite = ET.SubElement(root, "testsuite", name=clean(name), timestamp=doc["to"])
    failures = 0
    degraded = {d["indicator"]: d for d in doc.get("degraded_since_baseline", ())}
    for indicator, shares in doc["indicators"].items():
        case = ET.SubElement(suite, "testcase", classname="zhian.period", name=clean(indicator), time="0")
        failing = {k: v for k, v in shares.items() if k in FAILING and v > 0}
        if failing or indicator in degraded:
            failures += 1
            lapse = {"degraded_since_baseline": [degraded.get(indicator)]}
            why = _shares(t, failing) if failing else _degraded_lines(t, lapse)[0]
            ET.SubElement(case, "failure", type="fail", message=clean(why))
        ET.SubElement(case, "system-out").text = clean(_shares(t, shares))
    suite.set("tests", str(len(doc["indicators"])))
    suite.set("failures", str(failures))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def render_json(doc: Mapping[str, Any], _t: Messages) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


PERIOD_RENDERERS: dict[str, Callable[[Mapping[str, Any], Messages], str]] = {
    "html": html,
    "md": markdown,
    "json": render_json,
    "junit": junit,
    "oscal": period_oscal,
}


def render_period(doc: Mapping[str, Any], fmt: str, lang: Lang) -> str:
    return PERIOD_RENDERERS[fmt](doc, messages(lang))
