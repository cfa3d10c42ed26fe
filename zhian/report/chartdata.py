"""The data behind the report's charts, taken from findings' facts and, for heartbeats, the evidence.

Only what the run measured is drawn. Retention: observed and configured days per camera against the
required days. Heartbeats: per gateway, the observation window and, per device, its first and last
live heartbeat, the last one seen and the longest gap; each single heartbeat only when the MQTT
observation's artefact kept every live message of that topic (it keeps a bounded sample), since a
partial sample drawn as ticks would show gaps that never happened. Linkages: per test (a trigger on
a subject), each effect's delay against its deadline; a fire test's facts hold one timeline, or one
per zone in `facts.zones`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from zhian.evidence.chain import Record
from zhian.evidence.ledger import ARTEFACTS_DIR
from zhian.report.model import (
    Charts,
    HeartbeatChart,
    HeartbeatRow,
    LinkageChart,
    LinkageStep,
    RetentionBar,
    Span,
)
from zhian.report.rundir import FindingIn

RETENTION_PROBES = ("retention", "isapi_retention")
LINKAGE_PREFIXES = ("fire_linkage_", "intrusion_linkage_")
MAX_HEARTBEAT_ROWS = 30  # per gateway; devices not alive are always drawn


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _spans(raw: object) -> list[Span]:
    if not isinstance(raw, list):
        return []
    return [
        Span(start=str(s["start"]), end=_text(s.get("end")), hours=_num(s.get("hours")))
        for s in raw
        if isinstance(s, dict) and s.get("start")
    ]


def retention(findings: Sequence[FindingIn]) -> list[RetentionBar]:
    bars: list[RetentionBar] = []
    for n, f in enumerate(findings, 1):
        if f.probe not in RETENTION_PROBES:
            continue
        observed, configured = _num(f.facts.get("observed_days")), _num(f.facts.get("configured_days"))
        if observed is None and configured is None:
            continue
        required = _num(f.facts.get("required_days"))
        bars.append(
            RetentionBar(
                device=f.device,
                probe=f.probe,
                status=f.status,
                reason=f.reason,
                observed_days=observed,
                configured_days=configured,
                required_days=required,
                as_of=f.finished_at,
                earliest=_text(f.facts.get("earliest")),
                gaps=_spans(f.facts.get("gaps")),
                deletions=_spans(f.facts.get("deletions")),
                finding=n,
            )
        )
    return bars


def _artefact(run_dir: Path, record: Record | None) -> dict[str, Any] | None:
    """The MQTT observation's raw document, if it is there and still matches its name."""
    digest = record.body.get("raw_sha256") if record else None
    if not isinstance(digest, str):
        return None
    path = run_dir / ARTEFACTS_DIR / digest
    try:
        data = path.read_bytes()
        doc = json.loads(data) if hashlib.sha256(data).hexdigest() == digest else None
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _when(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None


TopicRows = dict[str, tuple[dict[str, Any], list[str]]]


def _topic_rows(doc: Mapping[str, Any] | None) -> dict[str, TopicRows]:
    """gateway -> device -> (its heartbeat topic's summary row, every live arrival if the sample
    holds them all); one pass over the observation for all its gateways."""
    if doc is None:
        return {}
    sample: dict[str, list[str]] = {}
    for msg in doc.get("sample") or []:
        if isinstance(msg, dict) and not msg.get("retain"):
            sample.setdefault(str(msg.get("topic")), []).append(str(msg.get("at")))
    out: dict[str, TopicRows] = {}
    for row in doc.get("topics") or []:
        parts = str(row.get("topic", "")).split("/") if isinstance(row, dict) else []
        if len(parts) >= 3 and parts[-1] == "heartbeat":
            beats = sample.get(row["topic"], [])
            out.setdefault(parts[-3], {})[parts[-2]] = (
                row,
                sorted(beats) if len(beats) == row.get("live") else [],
            )
    return out


def _heartbeat_row(n: int, f: FindingIn, topic: tuple[dict[str, Any], list[str]] | None) -> HeartbeatRow:
    row, beats = topic or ({}, [])
    count = f.facts.get("heartbeat_count")
    return HeartbeatRow(
        device=f.device,
        status=f.status,
        reason=f.reason,
        heartbeat_count=count if isinstance(count, int) else None,
        last_seen=_text(f.facts.get("last_seen")),
        max_gap_s=_num(f.facts.get("max_gap_s")),
        interval_s=_num(f.facts.get("heartbeat_interval_s")),
        first_live_at=_text(row.get("first_live_at")),
        last_live_at=_text(row.get("last_live_at")),
        beats=beats,
        finding=n,
    )


def heartbeats(
    findings: Sequence[FindingIn], record: Callable[[str], Record | None], run_dir: Path
) -> list[HeartbeatChart]:
    """`record` looks an exchange up in the run's ledger (only the cited observation's is read)."""
    gateways: dict[str, tuple[int, FindingIn] | None] = {}
    children: dict[str, list[tuple[int, FindingIn]]] = {}
    for n, f in enumerate(findings, 1):
        if f.probe == "gateway_status" and "heartbeat_count" in f.facts:
            gateways[f.device] = (n, f)
        elif f.probe == "heartbeat" and isinstance(f.facts.get("gateway"), str):
            gw = f.facts["gateway"]
            gateways.setdefault(gw, None)
            children.setdefault(gw, []).append((n, f))
    charts: list[HeartbeatChart] = []
    # every gateway of a broker cites the same observation (megabytes on a large site): each is
    # read and indexed once, by its record's id
    read: dict[str, tuple[dict[str, Any] | None, dict[str, TopicRows]]] = {}
    for gw, own in sorted(gateways.items()):
        members = ([own] if own else []) + sorted(
            children.get(gw, []), key=lambda p: (p[1].status == "pass", p[1].device)
        )
        cited = next((r for _, f in members for e in f.evidence if (r := record(e)) is not None), None)
        if cited is not None and cited.id not in read:
            doc = _artefact(run_dir, cited)
            read[cited.id] = (doc, _topic_rows(doc))
        doc, by_gateway = read[cited.id] if cited is not None else (None, {})
        topics = by_gateway.get(gw, {})
        window = doc.get("window") if doc else None
        start = end = None
        exact = isinstance(window, list) and len(window) == 2
        if isinstance(window, list) and len(window) == 2:
            start, end = _text(window[0]), _text(window[1])
        else:
            first = members[0][1]
            finished, span = _when(first.finished_at), _num(first.facts.get("window_s"))
            if finished is not None and span is not None:
                start, end = (finished - timedelta(seconds=span)).isoformat(), finished.isoformat()
        shown = [p for i, p in enumerate(members) if p[1].status != "pass" or i < MAX_HEARTBEAT_ROWS]
        rows = [_heartbeat_row(n, f, topics.get(f.device)) for n, f in shown]
        charts.append(
            HeartbeatChart(
                gateway=gw,
                window_start=start,
                window_end=end,
                window_exact=exact,
                rows=rows,
                more_alive=len(members) - len(shown),
            )
        )
    return charts


def _runs(facts: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """One timeline per zone when the facts hold `zones`, else the facts' own timeline."""
    zones = facts.get("zones")
    if isinstance(zones, list) and zones and all(isinstance(z, Mapping) for z in zones):
        return [{**facts, **z} for z in zones]
    return [facts]


def linkages(findings: Sequence[FindingIn]) -> list[LinkageChart]:
    tests: dict[tuple[str, str, str | None, str | None], tuple[Mapping[str, Any], list[int]]] = {}
    for n, f in enumerate(findings, 1):
        if not f.probe.startswith(LINKAGE_PREFIXES):
            continue
        for run in _runs(f.facts):
            if not isinstance(run.get("timeline"), list) or not run["timeline"]:
                continue
            test = str(run.get("test") or f.probe.rsplit("_", 1)[0])
            key = (
                test,
                str(run.get("subject") or f.device),
                _text(run.get("zone")),
                _text(run.get("trigger_at")),
            )
            tests.setdefault(key, (run, []))[1].append(n)
    charts: list[LinkageChart] = []
    for (test, subject, zone, trigger_at), (run, cited) in tests.items():
        steps = [
            LinkageStep(
                effect=str(s.get("effect", "")),
                target=str(s.get("target", "")),
                status=str(s.get("status", "")),
                delay_s=_num(s.get("delay_s")),
                deadline_s=_num(s.get("deadline_s")),
            )
            for s in run["timeline"]
            if isinstance(s, Mapping)
        ]
        charts.append(
            LinkageChart(
                test=test,
                subject=subject,
                zone=zone,
                area=_text(run.get("area")),
                trigger_at=trigger_at,
                outcome=_text(run.get("outcome")),
                observed_for_s=_num(run.get("observed_for_s")),
                steps=steps,
                findings=cited,
            )
        )
    return charts


def charts(findings: Sequence[FindingIn], record: Callable[[str], Record | None], run_dir: Path) -> Charts:
    return Charts(
        retention=retention(findings),
        heartbeat=heartbeats(findings, record, run_dir),
        linkage=linkages(findings),
    )
