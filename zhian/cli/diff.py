"""`zhian diff RUN_A RUN_B`: what changed between two runs of one site, indicator by indicator and
device by device, so an operator sees what a fix mended and a CI job sees what regressed.

Reads each run's run.json, score.json and findings.jsonl (never writes). A change is `improved`
or `regressed` when both results are ordered (fail < partial < pass), else `changed`; a device
check present in only one run is `added` or `removed`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhian.cli.help import EXIT_FAIL_ON, EXIT_OK, EXIT_USAGE, SubParsers, command
from zhian.report.rundir import RunFiles, read_run

SCHEMA = "zhian.diff/1"
ORDER = {"fail": 0, "partial": 1, "pass": 2}


@dataclass(frozen=True)
class Side:
    run_id: str
    started_at: str | None
    community: str
    grade: str | None
    totals: dict[str, float]
    indicators: dict[str, dict[str, Any]]
    checks: dict[tuple[str, str], str]


def _side(files: RunFiles) -> Side:
    levels: dict[str, Any] = files.score.get("levels") or {}
    checks: dict[tuple[str, str], list[str]] = {}
    for f in files.findings:
        checks.setdefault((f.device, f.probe), []).append(f"{f.status}:{f.reason}" if f.reason else f.status)
    return Side(
        files.run.run_id,
        files.run.started_at,
        files.run.community.name,
        files.score.get("grade"),
        {lv: data.get("total", 0) for lv, data in levels.items()},
        {
            ind: {"status": d.get("status"), "awarded": d.get("awarded")}
            for data in levels.values()
            for ind, d in (data.get("indicators") or {}).items()
        },
        {key: ", ".join(sorted(set(v))) for key, v in checks.items()},
    )


def _worst(summary: str | None) -> str | None:
    """The worst status among a check's findings ('fail:no_tls, pass' -> fail)."""
    if summary is None:
        return None
    statuses = [part.split(":")[0].strip() for part in summary.split(",")]
    ordered = [s for s in statuses if s in ORDER]
    return min(ordered, key=ORDER.__getitem__) if len(ordered) == len(statuses) else "unknown"


def change(a: str | None, b: str | None) -> str:
    if a is None:
        return "added"
    if b is None:
        return "removed"
    if a in ORDER and b in ORDER:
        return "improved" if ORDER[b] > ORDER[a] else "regressed" if ORDER[b] < ORDER[a] else "changed"
    return "changed"


def diff(a: Side, b: Side) -> dict[str, Any]:
    indicators = []
    for i in sorted(set(a.indicators) | set(b.indicators)):
        ra, rb = a.indicators.get(i), b.indicators.get(i)
        if ra != rb:
            kind = change(ra["status"] if ra else None, rb["status"] if rb else None)
            indicators.append({"indicator": i, "a": ra, "b": rb, "change": kind})
    devices = []
    for device, probe in sorted(set(a.checks) | set(b.checks)):
        ca, cb = a.checks.get((device, probe)), b.checks.get((device, probe))
        if ca != cb:
            kind = change(_worst(ca), _worst(cb)) if ca and cb else change(ca, cb)
            devices.append({"device": device, "probe": probe, "a": ca, "b": cb, "change": kind})
    return {
        "schema": SCHEMA,
        "a": {"run_id": a.run_id, "started_at": a.started_at, "community": a.community},
        "b": {"run_id": b.run_id, "started_at": b.started_at, "community": b.community},
        "grade": {"a": a.grade, "b": b.grade},
        "levels": [
            {"level": lv, "a": a.totals.get(lv), "b": b.totals.get(lv)}
            for lv in sorted(set(a.totals) | set(b.totals))
        ],
        "indicators": indicators,
        "devices": devices,
    }


def render_text(d: dict[str, Any]) -> str:
    a, b = d["a"], d["b"]
    lines = [
        f"A: {a['run_id']} ({a['started_at'] or 'start not recorded'})  {a['community']}",
        f"B: {b['run_id']} ({b['started_at'] or 'start not recorded'})  {b['community']}",
        f"grade: {d['grade']['a'] or 'none'} -> {d['grade']['b'] or 'none'}",
    ]
    for lv in d["levels"]:
        delta = (lv["b"] or 0) - (lv["a"] or 0)
        lines.append(f"level {lv['level']}: {lv['a'] or 0:g} -> {lv['b'] or 0:g} ({delta:+g})")
    lines.append(f"indicators changed: {len(d['indicators'])}")
    for row in d["indicators"]:
        ra, rb = row["a"] or {}, row["b"] or {}
        lines.append(
            f"  {row['indicator']:<8} {ra.get('status', '-')} -> {rb.get('status', '-')}  "
            f"points {ra.get('awarded', '-')} -> {rb.get('awarded', '-')}  {row['change']}"
        )
    lines.append(f"device checks changed: {len(d['devices'])}")
    for row in d["devices"]:
        was, now = row["a"] or "-", row["b"] or "-"
        lines.append(f"  {row['device']:<18} {row['probe']:<20} {was} -> {now}  {row['change']}")
    return "\n".join(lines) + "\n"


def cmd_diff(args: argparse.Namespace) -> int:
    a, b = _side(read_run(args.run_a)), _side(read_run(args.run_b))
    if a.community != b.community:
        print(
            f"zhian: note: the runs are of different communities ({a.community}, {b.community})",
            file=sys.stderr,
        )
    d = diff(a, b)
    if args.format == "json":
        sys.stdout.write(json.dumps(d, ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(d))
    if args.fail_on == "regression":
        regressed = [r for r in d["indicators"] + d["devices"] if r["change"] == "regressed"]
        for row in regressed:
            print(
                f"zhian: fail-on regression: {row.get('indicator') or row['device']} regressed",
                file=sys.stderr,
            )
        return EXIT_FAIL_ON if regressed else EXIT_OK
    return EXIT_OK


def add_parser(sub: SubParsers) -> None:
    p = command(
        sub,
        "diff",
        "what changed between two runs of one site, indicator by indicator and device by device",
        [
            ("zhian diff runs/2026-11 runs/2026-12", "last month against this month"),
            ("zhian diff OLD NEW --format json", "as data (zhian.diff/1)"),
            ("zhian diff OLD NEW --fail-on regression", "for CI: exit 3 when something got worse"),
        ],
        (EXIT_OK, EXIT_USAGE, EXIT_FAIL_ON),
    )
    p.add_argument("run_a", type=Path, metavar="RUN_A", help="the earlier run directory")
    p.add_argument("run_b", type=Path, metavar="RUN_B", help="the later run directory")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or json")
    p.add_argument(
        "--fail-on",
        choices=("regression",),
        help="exit 3 when an indicator or a device check got worse (fail < partial < pass)",
    )
    p.set_defaults(func=cmd_diff)
