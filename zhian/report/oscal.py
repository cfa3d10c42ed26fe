"""The report as an OSCAL assessment-results document (OSCAL 1.2), for evaluation bodies whose tools
read OSCAL.

One result for the run: every finding is an observation (method TEST, its device as a prop) citing
the ledger records it rests on as relevant evidence; every indicator with a decisive final status is
a finding on that indicator (satisfied on pass, not-satisfied on fail or partial) naming its
observations; indicators still open are counted in the result's remarks, since OSCAL's finding states
cannot say "pending". The ledger records cited, the run's plan (run.json) and the seal are back-matter
resources, each record with its sha256. UUIDs are version-5 UUIDs derived from the run's chain head,
so the same run always gives the same document.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from zhian.report.model import EvidenceView, FindingView, IndicatorRow, Report

OSCAL_VERSION = "1.2.1"
NS = "urn:zhian:oscal"  # zhian's own property names live in this namespace
_ROOT = uuid.UUID("6f1c2a0e-7d3b-5e4a-9c8f-2b1d0a9e8c71")
_STATES = {"pass": "satisfied", "fail": "not-satisfied", "partial": "not-satisfied"}


def _uuid(report: Report, *key: object) -> str:
    return str(uuid.uuid5(_ROOT, "/".join([report.run.run_id, report.run.chain_head, *map(str, key)])))


def _prop(name: str, value: object) -> dict[str, str]:
    return {"name": name, "ns": NS, "value": str(value)}


def _when(text: str | None, fallback: datetime) -> str:
    """An OSCAL date-time (with its offset); a missing or zone-less time falls back."""
    if text:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            return at.isoformat()
    return fallback.isoformat()


def _line(text: str) -> str:
    """A title: one line, never empty."""
    return " ".join(text.split()) or "—"


def _evidence(report: Report, record: EvidenceView) -> dict[str, Any]:
    what = f"{record.protocol or ''} {record.operation or ''} {record.address or ''}".strip()
    return {
        "href": f"#{_uuid(report, 'record', record.id)}",
        "description": f"ledger record {record.seq} ({what or record.id}), sha256 {record.hash}",
    }


def _observation(
    report: Report, f: FindingView, records: dict[str, EvidenceView], start: datetime
) -> dict[str, Any]:
    props = [_prop("probe", f.probe), _prop("device", f.device), _prop("status", f.status)]
    if f.reason:
        props.append(_prop("reason", f.reason))
    observation: dict[str, Any] = {
        "uuid": _uuid(report, "finding", f.n),
        "title": _line(f"{f.probe} on {f.device}: {f.status}"),
        "description": f.detail or f.reason or f.status,
        "props": props,
        "methods": ["TEST"],
        "types": ["finding"],
        "collected": _when(f.finished_at or f.started_at, start),
    }
    cited = [records[e] for e in f.evidence if e in records and records[e].found]
    if cited:
        observation["relevant-evidence"] = [_evidence(report, r) for r in cited]
    return observation


def _finding(report: Report, ind: IndicatorRow) -> dict[str, Any]:
    props = [_prop("level", ind.level), _prop("kind", ind.kind), _prop("final-status", ind.final_status)]
    props += [_prop("decided-by", ind.decided_by)] if ind.decided_by else []
    props += [_prop("points", ind.points), _prop("awarded", ind.awarded)] if ind.points is not None else []
    finding: dict[str, Any] = {
        "uuid": _uuid(report, "indicator", ind.id),
        "title": _line(f"{ind.id} {ind.text}")[:200],
        "description": ind.text or ind.id,
        "props": props,
        "target": {
            "type": "objective-id",
            "target-id": ind.id,
            "status": {"state": _STATES[ind.final_status]},
        },
    }
    if ind.findings:
        finding["related-observations"] = [
            {"observation-uuid": _uuid(report, "finding", n)} for n in ind.findings
        ]
    return finding


def _resources(report: Report, records: list[EvidenceView]) -> list[dict[str, Any]]:
    run = report.run
    resources: list[dict[str, Any]] = [
        {
            "uuid": _uuid(report, "plan"),
            "title": "the run's plan: run.json (inventory, 7.4 sampling plan and seed)",
            "rlinks": [{"href": "run.json"}],
        },
        {
            "uuid": _uuid(report, "seal"),
            "title": "the run's seal: manifest.json signed in manifest.sig (Ed25519)",
            "props": [_prop("ledger-records", run.ledger_records), _prop("chain-head", run.chain_head)]
            + ([_prop("signer", run.signed_by.fingerprint)] if run.signed_by else []),
            "rlinks": [{"href": "manifest.json"}, {"href": "manifest.sig"}],
        },
    ]
    for r in records:
        resources.append(
            {
                "uuid": _uuid(report, "record", r.id),
                "title": _line(f"ledger record {r.seq}: {r.operation or r.id} on {r.device or '—'}"),
                "props": [_prop("record-id", r.id)],
                "rlinks": [
                    {
                        "href": f"ledger.sqlite#record-{r.seq}",
                        "hashes": [{"algorithm": "SHA-256", "value": r.hash}],
                    }
                ],
            }
        )
    return resources


def oscal_document(report: Report) -> dict[str, Any]:
    run, community = report.run, report.overview.community
    start = datetime.fromisoformat(_when(run.started_at, datetime(1970, 1, 1, tzinfo=UTC)))
    end = _when(run.finished_at, start)
    records = {r.id: r for r in report.evidence}
    cited = sorted({r.id: r for r in report.evidence if r.found and r.seq is not None and r.hash}.values(),
                   key=lambda r: r.seq or 0)  # fmt: skip
    decided = [i for i in report.indicators if i.final_status in _STATES]
    waiting = [i.id for i in report.indicators if i.final_status not in _STATES]
    parties = [{"uuid": _uuid(report, "party", "community"), "type": "organization", "name": community.name}]
    if report.sign_off.evaluation_body:
        parties.append(
            {
                "uuid": _uuid(report, "party", "body"),
                "type": "organization",
                "name": report.sign_off.evaluation_body,
            }
        )
    result: dict[str, Any] = {
        "uuid": _uuid(report, "result"),
        "title": _line(f"zhian machine evidence for {community.name}, run {run.run_id}"),
        "description": (
            "Objective technical detection (T/CREA 智慧居住小区安全防范安全评价标准, clause 7.2):"
            " the machine's evidence and the final verdict per indicator, the evaluator's over the machine's."
        ),
        "start": start.isoformat(),
        "end": end,
        "props": [
            _prop("grade", report.summary.grade or "none"),
            _prop("target-level", community.target_level),
            _prop("threshold", run.threshold),
            _prop("interrupted", str(run.interrupted).lower()),
            _prop("recovered", str(run.recovered).lower()),
        ],
        "reviewed-controls": {
            "control-selections": [{"include-controls": [{"control-id": i.id} for i in report.indicators]}]
        },
        "remarks": f"{len(waiting)} indicators have no decisive result yet (the evaluator's to judge): "
        + (", ".join(waiting) or "none"),
    }
    if report.findings:
        result["observations"] = [_observation(report, f, records, start) for f in report.findings]
    if decided:
        result["findings"] = [_finding(report, i) for i in decided]
    return {
        "assessment-results": {
            "uuid": _uuid(report, "document"),
            "metadata": {
                "title": _line(f"{community.name}: assessment results ({report.report_date})"),
                "last-modified": end,
                "version": run.tool or "zhian",
                "oscal-version": OSCAL_VERSION,
                "parties": parties,
            },
            "import-ap": {"href": f"#{_uuid(report, 'plan')}"},
            "results": [result],
            "back-matter": {"resources": _resources(report, cited)},
        }
    }


def render_oscal(report: Report) -> str:
    return json.dumps(oscal_document(report), ensure_ascii=False, indent=2) + "\n"
