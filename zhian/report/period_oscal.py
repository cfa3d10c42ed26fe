"""The period report as an OSCAL assessment-results document (OSCAL 1.2), as the run's report is
(zhian/report/oscal.py), for evaluation bodies whose tools read OSCAL.

One result for the period: every indicator's time in each status is an observation (method TEST),
and so is every outage (with the platform's alert or its absence), every linkage event observed and
every camera's retention over the period; each observation cites the sealed segments the period's
evidence is in. An indicator is a finding when the period decides it: not-satisfied when it spent
any of the period failing (or degraded since the baseline), satisfied when it passed whenever the
monitor ran; the others are counted in the result's remarks. The segments are back-matter resources,
each with the sha256 of its signed manifest. UUIDs are version-5 UUIDs of the monitor, the period and
the segments' chain heads, so the same evidence always gives the same document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from zhian.monitor.period import FAILING, NOT_MONITORED
from zhian.report.messages import Messages
from zhian.report.oscal import OSCAL_VERSION, _line, _prop

_ROOT = uuid.UUID("0b6f4d52-3c1e-5a7b-8e29-61f0c4d7a913")


def period_oscal(doc: Mapping[str, Any], _t: Messages) -> str:
    return json.dumps(period_document(doc), ensure_ascii=False, indent=2) + "\n"


def period_document(doc: Mapping[str, Any]) -> dict[str, Any]:
    monitor = doc.get("monitor") or {}
    segments = doc.get("segments") or []
    heads = [str(s.get("chain_head")) for s in segments]
    seed = "/".join([str(monitor.get("run_id")), doc["from"], doc["to"], *heads])

    def uid(*key: object) -> str:
        return str(uuid.uuid5(_ROOT, "/".join([seed, *map(str, key)])))

    start = datetime.combine(date.fromisoformat(doc["from"]), time(), UTC)
    end = datetime.combine(date.fromisoformat(doc["to"]) + timedelta(days=1), time(), UTC)
    written = [datetime.fromisoformat(s["closed_at"] or s["opened_at"]) for s in segments]
    last = min(max(written, default=end), end)
    community = str((monitor.get("community") or {}).get("name") or doc["state"])
    evidence = [
        {"href": f"#{uid('segment', s['segment'])}", "description": _segment_title(s)} for s in segments
    ]
    observations: list[dict[str, Any]] = []

    def observe(key: tuple[object, ...], title: str, description: str, props: list[dict[str, str]]) -> str:
        observation: dict[str, Any] = {
            "uuid": uid(*key),
            "title": _line(title)[:200],
            "description": description or title,
            "props": props,
            "methods": ["TEST"],
            "types": ["finding"],
            "collected": last.isoformat(),
        }
        if evidence:
            observation["relevant-evidence"] = evidence
        observations.append(observation)
        return str(observation["uuid"])

    degraded = {d["indicator"]: d for d in doc.get("degraded_since_baseline", ())}
    findings: list[dict[str, Any]] = []
    waiting: list[str] = []
    for indicator, shares in doc["indicators"].items():
        said = ", ".join(f"{k} {v:.1%}" for k, v in shares.items())
        props = [_prop(f"share-{k}", v) for k, v in shares.items()]
        observed = observe(("indicator", indicator), f"{indicator} over the period: {said}", said, props)
        state = _state(shares, indicator in degraded)
        if state is None:
            waiting.append(indicator)
            continue
        finding: dict[str, Any] = {
            "uuid": uid("finding", indicator),
            "title": _line(f"{indicator}: {state} over {doc['from']} .. {doc['to']}"),
            "description": said,
            "props": props
            + ([_prop("degraded-since", degraded[indicator]["since"])] if indicator in degraded else []),
            "target": {"type": "objective-id", "target-id": indicator, "status": {"state": state}},
            "related-observations": [{"observation-uuid": observed}],
        }
        findings.append(finding)
    for n, outage in enumerate(doc["outages"]):
        alert = outage.get("platform_alert") or {}
        words = "not recorded" if not alert else "raised" if alert.get("alert") else "not raised"
        title = f"outage of {outage['device']} ({outage.get('reason')}) from {outage['start']}"
        props = [_prop("device", outage["device"]), _prop("start", outage["start"])]
        props += [_prop("end", outage["end"])] if outage.get("end") else []
        props += [_prop("platform-alert", words)]
        observe(("outage", n), title, f"{title} until {outage.get('end') or 'the end'}: alert {words}", props)
    for n, event in enumerate(doc["linkage_events"]):
        effects = "; ".join(
            f"{e['effect']} {e['target']} {e['status']} ({e.get('delay_s')} s of {e.get('deadline_s')} s)"
            for e in event["effects"]
        )
        subject = event.get("subject") or event.get("zone") or event.get("area")
        title = f"{event.get('test') or 'linkage'} ({event.get('trigger')}) at {subject}, {event['at']}"
        props = [_prop("trigger-at", event["at"]), _prop("subject", subject)]
        props += [
            _prop(
                "effects-late-or-missing", sum(e["status"] in ("late", "missing") for e in event["effects"])
            )
        ]
        observe(("linkage", n), title, effects or title, props)
    for device, checks in sorted(doc["retention"].items()):
        days = [r["observed_days"] for r in checks if isinstance(r.get("observed_days"), int | float)]
        if days:
            need = checks[-1].get("required_days")
            props = [_prop("device", device), _prop("min-days", min(days)), _prop("last-days", days[-1])]
            props += [_prop("required-days", need)] if need is not None else []
            title = f"retention of {device}: {min(days):g} to {max(days):g} days over {len(checks)} checks"
            observe(("retention", device), title, title, props)
    result: dict[str, Any] = {
        "uuid": uid("result"),
        "title": _line(f"zhian monitoring of {community}, {doc['from']} .. {doc['to']}"),
        "description": (
            "Continuous objective technical detection (T/CREA 智慧居住小区安全防范安全评价标准, clauses"
            " 7.2 and 4.10): the share of the period each indicator spent in each status while the monitor"
            " ran, its outages, linkage events and retention."
        ),
        "start": start.isoformat(),
        "end": end.isoformat(),
        "props": [
            _prop("monitored-share", doc["monitored_share"]),
            _prop("monitor-id", monitor.get("run_id") or "unknown"),
        ],
        "reviewed-controls": {
            "control-selections": [{"include-controls": [{"control-id": i} for i in doc["indicators"]]}]
        },
        "remarks": f"{len(waiting)} indicators are not decided by the period (the evaluator's to judge): "
        + (", ".join(waiting) or "none"),
    }
    if observations:
        result["observations"] = observations
    if findings:
        result["findings"] = findings
    plan: dict[str, Any] = {
        "uuid": uid("plan"),
        "title": "the monitor's plan: the config it ran (zhian monitor --config)",
        "props": [_prop("config-sha256", monitor.get("config_sha256") or "unknown")],
    }
    return {
        "assessment-results": {
            "uuid": uid("document"),
            "metadata": {
                "title": _line(f"{community}: monitoring results ({doc['from']} .. {doc['to']})"),
                "last-modified": last.isoformat(),
                "version": str(monitor.get("tool") or "zhian"),
                "oscal-version": OSCAL_VERSION,
                "parties": [{"uuid": uid("party"), "type": "organization", "name": community}],
            },
            "import-ap": {"href": f"#{plan['uuid']}"},
            "results": [result],
            "back-matter": {"resources": [plan, *(_resource(uid, s) for s in segments)]},
        }
    }


def _state(shares: Mapping[str, float], degraded: bool) -> str | None:
    if degraded or any(shares.get(s, 0) > 0 for s in FAILING):
        return "not-satisfied"
    held = {k for k, v in shares.items() if v > 0 and k != NOT_MONITORED}
    return "satisfied" if held == {"pass"} else None


def _segment_title(segment: Mapping[str, Any]) -> str:
    sealed = "sealed and signed" if segment.get("manifest_sha256") else "open (not sealed yet)"
    return f"segment {segment['segment']}, {sealed}" + (", recovered" if segment.get("recovered") else "")


def _resource(uid: Any, segment: Mapping[str, Any]) -> dict[str, Any]:
    name = segment["segment"]
    link: dict[str, Any] = {"href": f"segments/{name}/manifest.json"}
    if segment.get("manifest_sha256"):
        link["hashes"] = [{"algorithm": "SHA-256", "value": segment["manifest_sha256"]}]
    else:
        link["href"] = f"segments/{name}/ledger.sqlite"
    props = [_prop("opened-at", segment["opened_at"])]
    props += [_prop("chain-head", segment["chain_head"])] if segment.get("chain_head") else []
    return {"uuid": uid("segment", name), "title": _segment_title(segment), "props": props, "rlinks": [link]}
