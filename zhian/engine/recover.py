"""`zhian seal --recover RUN_DIR`: seal what a killed run kept, saying so.

A run killed at any moment (SIGKILL, power, a full disk) leaves a ledger whose every committed record
holds, but no outputs and no seal. Recovery closes the chain with a `run_end` record marked
`recovered`, rebuilds findings.jsonl from the ledger's finding records (the file may end in a torn
line), judges and scores those findings with the same rules a run uses (an indicator's findings are
the ones recorded for it), writes run.json, verdicts.yaml, score.json and the report, and seals the
directory with `recovered: true` and the reason in the manifest, run.json and the report. It never
seals a directory whose chain is broken or that is sealed already.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from mapping.catalog import LEVELS, load_catalog
from mapping.rules import MachineVerdict, judge, load_rules
from probes.finding import Finding
from scorer.results import merge_verdicts
from scorer.score import score
from zhian import __version__
from zhian.errors import UsageError
from zhian.evidence.chain import Record
from zhian.evidence.keys import default_key_dir, load_or_create
from zhian.evidence.ledger import open_ledger
from zhian.evidence.manifest import seal
from zhian.evidence.reader import LedgerReader
from zhian.evidence.verify import Verification, verify
from zhian.report.write import write_report

REASON = "the run was killed before its seal; sealed afterwards by `zhian seal --recover`"
LEDGER_ONLY = ("id", "kind", "seq", "prev_hash", "run_id")


@dataclass(frozen=True)
class Recovered:
    run_dir: Path
    records: int  # in the ledger once closed
    findings: int
    exchanges: int
    report: Path | None
    report_problem: str | None
    signer: str


def finding_of(body: dict[str, Any]) -> Finding:
    return Finding(
        probe=body["probe"],
        device=body["device"],
        status=body["status"],
        reason=body["reason"],
        detail=body["detail"],
        facts=body.get("facts") or {},
        evidence=tuple(body.get("evidence") or ()),
        ratio=body.get("ratio"),
        started_at=datetime.fromisoformat(body["started_at"]),
        finished_at=datetime.fromisoformat(body["finished_at"]),
    )


def refusal(result: Verification) -> str | None:
    """Why this directory cannot be recovered, or None."""
    if result.sealed:
        return "it is sealed already (`zhian verify` says whether it holds)"
    if result.problems:
        return f"its chain does not hold: {result.problems[0]}"
    return None


def verdicts_of(levels: list[str], findings: list[tuple[Finding, list[str]]]) -> dict[str, MachineVerdict]:
    """Each ruled indicator judged on the findings recorded for it, as the run would have."""
    catalog, rules = load_catalog(), load_rules()
    out: dict[str, MachineVerdict] = {}
    for level in levels:
        for indicator in catalog.level(level):
            rule = rules.for_indicator(indicator.id)
            if rule is not None:
                mine = [f for f, inds in findings if indicator.id in inds]
                out[indicator.id] = judge(rule, mine, basic=indicator.kind == "basic")
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def recover(
    run_dir: Path, *, key_dir: Path | None = None, reason: str = REASON, lang: Literal["zh", "en"] = "zh"
) -> Recovered:
    if why := refusal(verify(run_dir)):
        raise UsageError(f"{run_dir}: will not recover: {why}")
    key = load_or_create(key_dir or default_key_dir(), not_inside=run_dir)
    reader = LedgerReader(run_dir)
    try:
        records: list[Record] = list(reader.records())
    finally:
        reader.close()
    start = next((r.body for r in records if r.kind == "run_start"), {})
    run_id = str(start.get("run_id") or run_dir.name)
    findings = [
        (finding_of(r.body), list(r.body.get("indicators") or ())) for r in records if r.kind == "finding"
    ]
    exchanges = sum(1 for r in records if r.kind == "exchange")
    ledger = open_ledger(run_dir, run_id=run_id)  # closing folds a killed writer's WAL into the file
    if not any(r.kind == "run_end" for r in records):
        counts: dict[str, int] = {}
        for r in records:
            counts[r.kind] = counts.get(r.kind, 0) + 1
        ledger.append(
            "run_end",
            {
                "run_id": run_id,
                "finished_at": None,
                "recovered_at": datetime.now(UTC).isoformat(),
                "interrupted": True,
                "ending": "recovered",
                "recovered": True,
                "reason": reason,
                "counts": counts,
            },
        )
    total = ledger.counts.get("run_end", 0) + len(records)
    ledger.close()

    lines = [
        json.dumps({k: v for k, v in r.body.items() if k not in LEDGER_ONLY}, ensure_ascii=False)
        for r in records
        if r.kind == "finding"
    ]
    (run_dir / "findings.jsonl").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    earlier = _read_json(run_dir / "run.json") or {}
    levels = [lv for lv in (earlier.get("levels") or start.get("levels") or LEVELS) if lv in LEVELS]
    threshold: Literal["gt", "ge"] = "ge" if earlier.get("threshold") == "ge" else "gt"
    verdicts = verdicts_of(levels, findings)
    entries = {k: v.as_entry() for k, v in verdicts.items()}
    catalog = load_catalog()
    report = score(catalog, merge_verdicts((i.id for i in catalog), [entries]), threshold)
    community = start.get("community") or earlier.get("community") or {"name": ""}
    started = str(start.get("started_at") or "")
    doc = {
        "community": community.get("name", ""),
        "date": started[:10],
        "verdicts": dict(sorted(entries.items())),
    }
    (run_dir / "verdicts.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=200), encoding="utf-8"
    )
    (run_dir / "score.json").write_text(
        json.dumps(report.as_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    meta: dict[str, Any] = {
        "schema": "zhian.engine.run/1",
        "run_id": run_id,
        "tool": start.get("tool") or f"zhian {__version__}",
        "community": community,
        "config_sha256": start.get("config_sha256"),
        "started_at": start.get("started_at"),
        "finished_at": None,
        "sampling": start.get("sampling") or {},
        "levels": levels,
        "threshold": threshold,
        "inventory": [],
        **earlier,
        "interrupted": True,
        "recovered": True,
        "recovery_reason": reason,
        "findings": len(findings),
        "exchanges": exchanges,
        "signed_by": key.describe(),
    }
    (run_dir / "run.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    report_path: Path | None = None
    problem: str | None = None
    try:
        report_path = write_report(run_dir, "html", lang, None, None)
    except Exception as exc:  # the evidence is sealed whether or not a report can be made of it
        problem = f"{type(exc).__name__}: {exc}"
    for tmp in run_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
    seal(run_dir, key, meta)
    return Recovered(
        run_dir, total, len(findings), exchanges, report_path, problem, key.describe()["fingerprint"]
    )
