"""Compliance over a period, from a monitor's segments: `zhian report STATE --from D --to D`.

Per indicator, the share of the period spent in each status, from the indicator records (a change,
or the daily still-holds); the time the monitor was not running is `not_monitored`, never a status.
Retention per camera at every check (the `measure` records), outages per device (a heartbeat,
gateway or reachability finding turning fail, until it turns pass again) with whether the platform
raised its alert (the `outage_alert` record the platform observer writes for each outage,
zhian/monitor/alerts.py), the broker gaps and the event subscriptions' gaps
(zhian/monitor/events.py), the linkage events observed from real alarms, and with --baseline the
indicators that passed in the graded run and do not now: the 4.10 downgrade risk. The document also
names the monitor (its last start: id, community, config digest) and the segments that hold the
period's evidence, each sealed one with its chain head and the sha256 of its signed manifest.

A linkage event is read from any record whose facts carry a linkage timeline (`trigger_at` and
`timeline`, probes/linkage/judge.py run_facts), the shape the linkage probes' findings have in
`zhian run` and in the monitor's passive observation: one event per trigger, with each effect's
delay against its deadline. The renderers (Markdown, HTML, JUnit, OSCAL) are in zhian/report/period.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from zhian.errors import UsageError
from zhian.evidence.chain import LedgerError
from zhian.evidence.manifest import MANIFEST, file_sha256
from zhian.evidence.segments import SEGMENT_FILE, read_json, records_of, sealed_head, segment_dirs

NOT_MONITORED = "not_monitored"
FAILING = ("fail", "partial")  # an indicator that spent any of the period so has lapsed
OUTAGE_PROBES = frozenset({"heartbeat", "gateway_status"})
GAP_FIELDS = ("device", "started_at", "ended_at", "duration_s", "reason", "error")
ALERT_MATCH_S = 60.0  # an outage_alert names the outage by its start; clocks read a moment apart


def records(state: Path) -> Iterator[dict[str, Any]]:
    for segment in segment_dirs(state):
        try:
            yield from records_of(segment)
        except LedgerError as exc:
            raise UsageError(f"{segment}: {exc}") from None


def stamp(body: Mapping[str, Any]) -> datetime | None:
    for key in ("at", "finished_at", "started_at"):
        value = body.get(key)
        if isinstance(value, str):
            return datetime.fromisoformat(value)
    return None


@dataclass
class Timeline:
    """A status that holds from each point on, with the times the monitor was not running."""

    points: list[tuple[datetime, str]] = field(default_factory=list)

    def shares(
        self, start: datetime, end: datetime, down: list[tuple[datetime, datetime]]
    ) -> dict[str, float]:
        """Each status's share of [start, end); the monitor's downtime is not_monitored."""
        spent: dict[str, float] = {}

        def add(status: str, a: datetime, b: datetime) -> None:
            off = sum(overlap(x, y, a, b) for x, y in down)
            spent[status] = spent.get(status, 0.0) + (b - a).total_seconds() - off
            spent[NOT_MONITORED] = spent.get(NOT_MONITORED, 0.0) + off

        status, cursor = NOT_MONITORED, start
        for at, new in sorted(self.points):
            if at <= start:
                status = new
                continue
            if at >= end:
                break
            add(status, cursor, at)
            status, cursor = new, at
        add(status, cursor, end)
        total = (end - start).total_seconds()
        return {k: round(v / total, 4) for k, v in sorted(spent.items()) if v > 0}


def overlap(a: datetime, b: datetime, start: datetime, end: datetime) -> float:
    return max(0.0, (min(b, end) - max(a, start)).total_seconds())


def period_report(state: Path, first: date, last: date, baseline: Path | None) -> dict[str, Any]:
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    if end <= start:
        raise UsageError(f"--from {first} is after --to {last}")
    indicators: dict[str, Timeline] = {}
    retention: dict[str, list[dict[str, Any]]] = {}
    outages: dict[str, list[dict[str, Any]]] = {}
    gaps: dict[tuple[str, str], dict[str, Any]] = {}
    event_gaps: dict[tuple[str, str], dict[str, Any]] = {}  # ONVIF event subscriptions lost
    alerts: dict[str, list[dict[str, Any]]] = {}  # device -> its outage_alert records
    linkage: dict[tuple[str, str], dict[str, Any]] = {}
    running: list[tuple[datetime, datetime]] = []
    monitor: dict[str, Any] = {}  # the last start's: its id, community, config digest and tool
    up_since: datetime | None = None
    last_seen: datetime | None = None
    for body in records(state):
        at = stamp(body)
        kind = body.get("kind")
        if kind == "monitor_start" and at is not None:
            monitor = {k: body.get(k) for k in ("run_id", "community", "config_sha256", "tool")}
            if up_since is not None:  # the service before was killed: it ran until its last record
                running.append((up_since, last_seen or up_since))
            up_since = at
        elif kind == "monitor_stop" and at is not None and up_since is not None:
            running.append((up_since, at))
            up_since = None
        elif kind == "indicator" and at is not None:
            indicators.setdefault(str(body["indicator"]), Timeline()).points.append((at, str(body["status"])))
        elif kind == "measure" and at is not None and start <= at < end:
            row = {k: body.get(k) for k in ("at", "observed_days", "required_days", "status")}
            retention.setdefault(str(body["device"]), []).append(row)
        elif kind == "finding" and at is not None:
            track_outage(outages, body, at)
        elif kind == "outage_alert":
            alerts.setdefault(str(body.get("device")), []).append(dict(body))
        elif kind in ("gap", "gap_end", "event_gap", "event_gap_end"):
            into = gaps if kind.startswith("gap") else event_gaps
            row = into.setdefault((str(body.get("device")), str(body.get("started_at"))), {})
            row |= {k: body[k] for k in GAP_FIELDS if k in body}
        facts = body.get("facts")
        if isinstance(facts, Mapping) and facts.get("trigger_at") and isinstance(facts.get("timeline"), list):
            track_linkage(linkage, body, facts)
        if at is not None:
            last_seen = at
    if up_since is not None and last_seen is not None:
        running.append((up_since, max(last_seen, up_since)))
    down = not_running(running, start, end)
    doc: dict[str, Any] = {
        "schema": "zhian.period/1",
        "state": str(state),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "monitored_share": round(
            1 - sum(overlap(a, b, start, end) for a, b in down) / (end - start).total_seconds(), 4
        ),
        "indicators": {i: t.shares(start, end, down) for i, t in sorted(indicators.items())},
        "retention": retention,
        "outages": [
            with_alert(o, alerts.get(o["device"], ()))
            for rows in outages.values()
            for o in rows
            if in_period(o, start, end)
        ],
        "broker_gaps": list(gaps.values()),
        "event_gaps": list(event_gaps.values()),
        "linkage_events": [
            e | {"effects": linkage_rows(e)}
            for e in sorted(linkage.values(), key=lambda e: str(e["at"]))
            if start <= datetime.fromisoformat(e["at"]) < end
        ],
    }
    doc |= {"monitor": monitor, "segments": segments_in(state, start, end)}
    if baseline is not None:
        doc["degraded_since_baseline"] = degraded(baseline, indicators, end)
    return doc


def segments_in(state: Path, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The segments that hold the period's evidence: each sealed one with its chain head and the sha256
    of its signed manifest (an open one, being written, has neither)."""
    out: list[dict[str, Any]] = []
    for segment in segment_dirs(state):
        meta = read_json(segment / SEGMENT_FILE)
        opened, closed = meta.get("opened_at"), meta.get("closed_at")
        if not isinstance(opened, str) or datetime.fromisoformat(opened) >= end:
            continue
        if isinstance(closed, str) and datetime.fromisoformat(closed) < start:
            continue
        sealed = (segment / MANIFEST).is_file()
        out.append(
            {
                "segment": segment.name,
                "opened_at": opened,
                "closed_at": closed,
                "recovered": bool(meta.get("recovered")),
                "chain_head": sealed_head(segment) if sealed else None,
                "manifest_sha256": file_sha256(segment / MANIFEST) if sealed else None,
            }
        )
    return out


def track_outage(outages: dict[str, list[dict[str, Any]]], body: Mapping[str, Any], at: datetime) -> None:
    probe, device = str(body.get("probe")), str(body.get("device"))
    if probe not in OUTAGE_PROBES and body.get("reason") != "unreachable":
        return
    rows = outages.setdefault(device, [])
    open_row = rows[-1] if rows and rows[-1]["end"] is None else None
    if body.get("status") in ("fail", "error") and open_row is None:
        rows.append({"device": device, "probe": probe, "reason": body.get("reason"), "start": at.isoformat(),
                     "end": None, "platform_alert": None})  # fmt: skip
    elif body.get("status") == "pass" and open_row is not None:
        open_row["end"] = at.isoformat()
        open_row["duration_s"] = round((at - datetime.fromisoformat(open_row["start"])).total_seconds(), 3)


def with_alert(outage: dict[str, Any], records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The outage with the platform's answer: the outage_alert record of the same device whose
    outage started closest to it (within ALERT_MATCH_S); None when none was recorded (no platform
    observer, or the monitor stopped before the alert window ended)."""
    began = datetime.fromisoformat(outage["start"])
    best: tuple[float, Mapping[str, Any]] | None = None
    for record in records:
        try:
            off = abs((datetime.fromisoformat(str(record["outage_started_at"])) - began).total_seconds())
        except (KeyError, ValueError):
            continue
        if off <= ALERT_MATCH_S and (best is None or off < best[0]):
            best = (off, record)
    if best is None:
        return outage
    record = best[1]
    keep = ("alert", "alert_id", "raised_at", "after_s", "raised_after_s", "window_s", "evidence")
    return outage | {"platform_alert": {k: record[k] for k in keep if k in record}}


def track_linkage(events: dict[tuple[str, str], dict[str, Any]], body: Mapping[str, Any],
                  facts: Mapping[str, Any]) -> None:  # fmt: skip
    """One event per trigger (its time and subject); each finding adds its effect's targets."""
    key = (str(facts["trigger_at"]), str(facts.get("subject") or facts.get("zone") or facts.get("area")))
    event = events.setdefault(
        key,
        {"at": str(facts["trigger_at"]), "trigger": facts.get("trigger"), "test": facts.get("test"),
         "subject": facts.get("subject"), "zone": facts.get("zone"), "area": facts.get("area"),
         "outcome": facts.get("outcome"), "effects": {}, "findings": []},
    )  # fmt: skip
    for row in facts["timeline"]:
        if isinstance(row, Mapping) and row.get("target"):
            effect = {k: row.get(k) for k in ("effect", "target", "status", "delay_s", "deadline_s")}
            event["effects"][f"{row.get('effect')}|{row.get('target')}"] = effect
    verdicts = body.get("verdicts")  # a monitor's `linkage` record (zhian/monitor/linkage.py)
    rows = (
        [{"probe": p, "device": body.get("device"), "status": v.get("status"), "reason": v.get("reason")}
         for p, v in verdicts.items() if isinstance(v, Mapping)]
        if isinstance(verdicts, Mapping)
        else [{k: body.get(k) for k in ("probe", "device", "status", "reason")}]
    )  # fmt: skip
    for finding in rows:
        if finding["probe"] and finding not in event["findings"]:
            event["findings"].append(finding)


def linkage_rows(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    return sorted(event["effects"].values(), key=lambda r: (str(r["effect"]), str(r["target"])))


def in_period(outage: Mapping[str, Any], start: datetime, end: datetime) -> bool:
    began = datetime.fromisoformat(outage["start"])
    ended = datetime.fromisoformat(outage["end"]) if outage["end"] else end
    return began < end and ended > start


def not_running(
    running: Iterable[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    for a, b in sorted(running):
        if a > cursor:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return [(a, b) for a, b in out if b > a]


def degraded(baseline: Path, indicators: Mapping[str, Timeline], end: datetime) -> list[dict[str, Any]]:
    """Indicators the graded run passed that do not pass at the period's end."""
    try:
        doc = yaml.safe_load((baseline / "verdicts.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--baseline {baseline}: no readable verdicts.yaml ({exc})") from None
    out: list[dict[str, Any]] = []
    for indicator, entry in sorted((doc.get("verdicts") or {}).items()):
        was = entry.get("status") if isinstance(entry, Mapping) else None
        points = sorted((at, s) for at, s in indicators.get(indicator, Timeline()).points if at < end)
        now = points[-1][1] if points else None
        if was == "pass" and now is not None and now != "pass":
            # since: the first point of the status it ends the period in
            since = next(at for at, s in reversed(points) if s == now)
            for at, s in reversed(points):
                if s != now:
                    break
                since = at
            out.append({"indicator": indicator, "baseline": was, "now": now, "since": since.isoformat()})
    return out
