"""Assemble the report of a run directory: read, merge with the evaluator's file, score, cross-reference.

The machine's proposals come from RUN_DIR/verdicts.yaml and the evaluator's file is merged with them
exactly as `zhian score RUN_DIR/verdicts.yaml FILE` does (same parser, same waivers), so the report
and `zhian score` never disagree. Without an evaluator file, the rescored machine verdicts must
equal the run's score.json; the report says so, or says that they differ.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from mapping.catalog import Catalog, Indicator, load_catalog
from mapping.rules import RuleSet, load_rules
from scorer.results import Result, Verdict, merge_verdicts
from scorer.score import GRADE_NEEDS, ScoreReport, number, score
from scorer.validity import valid_until
from scorer.waivers import WaiverOutcome
from zhian import __version__
from zhian.evidence.chain import Record
from zhian.report import chartdata, times, words
from zhian.report.fixes import build_fixes, targets_in
from zhian.report.messages import Messages, messages
from zhian.report.model import (
    Community,
    Conclusion,
    Count,
    Coverage,
    DeviceGroup,
    Eligibility,
    EvidenceView,
    FindingView,
    FirstLevel,
    IndicatorRow,
    Label,
    Lang,
    LevelSummary,
    Overview,
    Problem,
    ProblemFinding,
    Problems,
    Reachability,
    Report,
    ResultView,
    Role,
    RunInfo,
    SampleGroup,
    Signer,
    SignOff,
    Summary,
    UnreadDevice,
    WaiverView,
)
from zhian.report.remediation import Remedies, load_remedies
from zhian.report.rundir import FindingIn, RunFiles, ledger, read_run
from zhian.verdicts import Evaluation, Header, load_evaluation

EXCERPT = 1200  # characters of a request or reply shown; the ledger keeps the whole redacted excerpt
DECISIVE = ("pass", "fail", "partial")
EVIDENCE_BATCH = 1000  # cited records read from the ledger at a time while the report is written


@cache
def _standard() -> tuple[Catalog, RuleSet]:
    """The shipped catalog and rules: read-only data, parsed once per process (the YAML is large)."""
    return load_catalog(), load_rules()


@dataclass(frozen=True)
class ReportParts:
    """A report as written: everything but its two long appendices, which are read as they are
    written out (a large site's run cites some 17,000 findings and as many ledger records: held
    whole, with the page they make, they were most of the run's memory)."""

    head: Report  # `findings` and `evidence` empty
    run_dir: Path
    findings: tuple[FindingIn, ...]  # in the report's language
    cited: tuple[str, ...]  # exchange ids, in the order the findings first cite them
    tz: ZoneInfo

    def finding_views(self) -> Iterator[FindingView]:
        for n, f in enumerate(self.findings, 1):
            yield FindingView.model_validate(times.localise({"n": n, **f.model_dump(mode="json")}, self.tz))

    def evidence_views(self) -> Iterator[EvidenceView]:
        """Each cited record, looked up in the ledger as it is shown."""
        with ledger(self.run_dir) as reader:
            for at in range(0, len(self.cited), EVIDENCE_BATCH):
                batch = self.cited[at : at + EVIDENCE_BATCH]
                records = reader.get_many(batch)
                for record_id in batch:
                    fields = _evidence(record_id, records.get(record_id))
                    yield EvidenceView.model_validate(times.localise(fields, self.tz))

    def whole(self) -> Report:
        return self.head.model_copy(
            update={"findings": list(self.finding_views()), "evidence": list(self.evidence_views())}
        )


def build_report(run_dir: Path, lang: Lang, evaluator: Path | None, today: date | None = None) -> Report:
    return build_parts(run_dir, lang, evaluator, today).whole()


def build_parts(run_dir: Path, lang: Lang, evaluator: Path | None, today: date | None = None) -> ReportParts:
    files = read_run(run_dir)
    (catalog, rules), t = _standard(), messages(lang)
    evaluation = load_evaluation(catalog, [files.verdicts, *([evaluator] if evaluator else [])], today)
    header = evaluation.files[-1].header if evaluator else Header()
    report_date = header.date or today or date.today()
    threshold = files.run.threshold
    final = score(catalog, evaluation.scored, threshold)
    machine = score(
        catalog, merge_verdicts((i.id for i in catalog), [evaluation.files[0].verdicts]), threshold
    )
    matches = json.loads(json.dumps(machine.as_dict())) == files.score
    levels = [lv for lv in files.run.levels if catalog.level(lv)]
    findings = words.localised(t, lang, files.findings)
    files = replace(files, findings=findings)
    cited = tuple(dict.fromkeys(e for f in findings for e in f.evidence))
    with ledger(run_dir) as reader:
        last = reader.last()
        count, head = (last.seq, last.hash) if last else (0, "")
        charts = chartdata.charts(findings, reader.get, run_dir)
    waivers = {o.waiver.indicator: _waiver(o) for o in evaluation.waivers}
    by_indicator: dict[str, list[int]] = {}
    for n, f in enumerate(findings, 1):
        for ind in f.indicators:
            by_indicator.setdefault(ind, []).append(n)
    rows = [
        _indicator(ind, evaluation, final, rules, waivers, by_indicator, lang, findings, t)
        for lv in levels
        for ind in catalog.level(lv)
    ]
    remedies = load_remedies()
    report = Report(
        lang=lang,
        generated_by=f"zhian {__version__}",
        report_date=report_date.isoformat(),
        run=_run_info(files, count, head),
        overview=_overview(files),
        summary=_summary(final, matches, files.score, levels, catalog, evaluator, lang),
        coverage=[_coverage(lv, [r for r in rows if r.level == lv]) for lv in levels],
        problems=Problems(
            fixes=build_fixes(files, findings, rows, _first_level_max(catalog, levels), remedies, lang),
            items=_problems(rows, findings, remedies, lang),
            unread=_unread(files, remedies, lang),
        ),
        conclusion=_conclusion(final, files.run.community.target_level, rows, levels, evaluator, t),
        sign_off=SignOff(
            community=files.run.community.name,
            registered_entity=files.run.community.operator or None,
            evaluation_body=header.evaluator,
            evaluators=list(header.evaluators),
            issuer=header.issuer,
            report_date=report_date.isoformat(),
            date_from="evaluator_file" if header.date else "today",
        ),
        label=_label(final.grade, header, report_date, t),
        indicators=rows,
        waivers=list(waivers.values()),
        charts=charts,
        findings=[],
        evidence=[],
    )
    tz = times.zone(files.run.community.timezone)
    head_doc = Report.model_validate(times.localise(report.as_dict(), tz))
    return ReportParts(head_doc, run_dir, findings, cited, tz)


def _first_level_max(catalog: Catalog, levels: Sequence[str]) -> dict[str, float]:
    return {
        ind.first_level.id: float(ind.first_level.points)
        for lv in levels
        for ind in catalog.level(lv)
        if ind.first_level.points is not None
    }


def _run_info(files: RunFiles, records: int, head: str) -> RunInfo:
    run, signer = files.run, files.run.signed_by
    return RunInfo(
        run_id=run.run_id,
        tool=run.tool,
        started_at=run.started_at,
        finished_at=run.finished_at,
        interrupted=run.interrupted,
        recovered=run.recovered,
        recovery_reason=run.recovery_reason,
        config_sha256=run.config_sha256,
        threshold=run.threshold,
        levels=run.levels,
        sampling_mode=run.sampling.mode,
        sampling_seed=run.sampling.seed,
        findings=len(files.findings),
        exchanges=run.exchanges,
        ledger_records=records,
        chain_head=head,
        signed_by=Signer(**signer.model_dump()) if signer else None,
    )


def _overview(files: RunFiles) -> Overview:
    run = files.run
    groups: dict[tuple[str, str], list[Any]] = {}
    for d in run.inventory:
        groups.setdefault((d.kind, d.area), []).append(d)
    samples = [SampleGroup(group=name, **g.model_dump()) for name, g in run.sampling.groups.items()]
    kind_of = {d.id: d.kind for d in run.inventory}
    per_device: dict[str, list[FindingIn]] = {}
    for f in files.findings:
        per_device.setdefault(f.device, []).append(f)
    reach: dict[str, tuple[int, int, list[str]]] = {}
    for device, found in sorted(per_device.items()):
        probed, answered, unreadable = reach.get(kind_of.get(device, "?"), (0, 0, []))
        ok = any(f.status != "error" for f in found)
        reach[kind_of.get(device, "?")] = (probed + 1, answered + ok, unreadable + ([] if ok else [device]))
    tls: dict[str, int] = {}
    for f in files.findings:
        if f.probe == "transport_security" and "tls" in f.facts:
            version = str(f.facts.get("version") or "none") if f.facts.get("tls") else "none"
            tls[version] = tls.get(version, 0) + 1
    return Overview(
        community=Community(**run.community.model_dump()),
        devices_total=len(run.inventory),
        by_kind=_tally(d.kind for d in run.inventory),
        by_area=_tally(d.area for d in run.inventory),
        groups=[
            DeviceGroup(
                kind=kind,
                area=area,
                count=len(ds),
                tls=sum(1 for d in ds if d.tls),
                protocols=sorted({d.protocol for d in ds if d.protocol}),
            )
            for (kind, area), ds in groups.items()
        ],
        samples=samples,
        reachability=[
            Reachability(kind=k, probed=p, answered=a, unreadable=u) for k, (p, a, u) in reach.items()
        ],
        tls_versions=dict(sorted(tls.items())),
    )


def _tally(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def _summary(
    final: ScoreReport,
    matches: bool,
    recorded: Mapping[str, Any],
    levels: Sequence[str],
    catalog: Catalog,
    evaluator: Path | None,
    lang: Lang,
) -> Summary:
    groups = [g for lv in levels for g in catalog.first_levels(lv)]
    names = {g.id: g.name_zh if lang == "zh" else g.name_en for g in groups}
    recorded_levels = recorded.get("levels") if isinstance(recorded.get("levels"), dict) else {}
    assert isinstance(recorded_levels, dict)

    def level(lv: str) -> LevelSummary:
        s = final.level(lv)
        entry = recorded_levels.get(lv)
        run_total = entry.get("total") if isinstance(entry, dict) else None
        return LevelSummary(
            level=lv,
            total=number(s.total),
            max=number(s.max),
            passed=s.passed,
            meets_threshold=s.meets_threshold,
            exactly_80=s.exactly_80,
            basic_failed=list(s.basic_failed),
            basic_pending=list(s.basic_pending),
            gated=list(s.gated),
            open=list(s.open),
            first_levels=[
                FirstLevel(
                    id=f.id, name=names[f.id], total=number(f.total), max=number(f.max), status=f.status
                )
                for f in s.first_levels
            ],
            machine_total=run_total if isinstance(run_total, int | float) else None,
        )

    return Summary(
        threshold=final.threshold,
        grade=final.grade,
        machine_grade=recorded.get("grade") if isinstance(recorded.get("grade"), str) else None,
        machine_score_matches_run=matches,
        evaluator_file=evaluator.name if evaluator else None,
        evaluator_sha256=hashlib.sha256(evaluator.read_bytes()).hexdigest() if evaluator else None,
        levels=[level(lv) for lv in levels],
        eligibility=[
            Eligibility(
                grade=e.grade,
                needs=list(GRADE_NEEDS[e.grade]),
                eligible=e.eligible,
                failed=[i for lv in GRADE_NEEDS[e.grade] for i in final.level(lv).basic_failed],
            )
            for e in final.eligibility
            if set(GRADE_NEEDS[e.grade]) <= set(levels)
        ],
    )


def _view(result: Result | None) -> ResultView | None:
    if result is None:
        return None
    ratio = float(result.ratio) if result.ratio is not None else None
    return ResultView(status=result.status, source=result.source, ratio=ratio, note=result.note)


def _waiver(o: WaiverOutcome) -> WaiverView:
    w = o.waiver
    return WaiverView(
        indicator=w.indicator,
        justification=w.justification,
        approver=w.approver,
        expires=w.expires.isoformat(),
        judged_on=o.on.isoformat(),
        state=o.state,
    )


def _role(ind: Indicator, rules: RuleSet) -> tuple[Role, str]:
    rule = rules.for_indicator(ind.id)
    if rule is not None:
        return rule.strength, ", ".join(rule.probes)
    if ind.id in rules.evaluator_only:
        return "evaluator_only", " ".join(rules.evaluator_only[ind.id].split())
    return "unruled", ""


def _indicator(
    ind: Indicator,
    evaluation: Evaluation,
    final: ScoreReport,
    rules: RuleSet,
    waivers: Mapping[str, WaiverView],
    by_indicator: Mapping[str, list[int]],
    lang: Lang,
    findings: Sequence[FindingIn],
    t: Messages,
) -> IndicatorRow:
    written = evaluation.verdicts.get(ind.id, Verdict())
    scored = next(s for s in final.level(ind.level).indicators if s.indicator.id == ind.id)
    result = scored.verdict.final
    decided: Literal["machine", "evaluator"] | None = (
        result.source if result is not None and result.status in DECISIVE else None
    )
    role, note = _role(ind, rules)
    machine = _view(written.machine)
    if machine is not None and written.machine is not None and written.machine.source == "machine":
        mine = [findings[n - 1] for n in by_indicator.get(ind.id, [])]
        machine = machine.model_copy(update={"note": words.verdict_line(t, mine, role == "supports")})
    return IndicatorRow(
        id=ind.id,
        level=ind.level,
        first_level=ind.first_level.id,
        first_level_name=ind.first_level.name_zh if lang == "zh" else ind.first_level.name_en,
        second_level=ind.second_level.id,
        second_level_name=ind.second_level.name_zh if lang == "zh" else ind.second_level.name_en,
        kind=ind.kind,
        points=None if ind.points is None else number(ind.points),
        printed_label=ind.printed_label,
        text=(ind.text_zh if lang == "zh" else ind.text_en) or ind.text_en or ind.text_zh,
        text_lost=ind.text_lost,
        role=role,
        role_note=note,
        machine=machine,
        evaluator=_view(written.evaluator),
        waiver=waivers.get(ind.id),
        final_status=result.status if result else "not_assessed",
        final_source=result.source if result else None,
        decided_by=decided,
        awarded=number(scored.awarded),
        gated=scored.gated,
        open=scored.open,
        findings=by_indicator.get(ind.id, []),
    )


def _count(rows: Sequence[IndicatorRow]) -> Count:
    return Count(
        indicators=len(rows), points=number(sum((Decimal(str(r.points or 0)) for r in rows), Decimal(0)))
    )


def _coverage(level: str, rows: Sequence[IndicatorRow]) -> Coverage:
    waiting = [r for r in rows if r.decided_by is None]
    return Coverage(
        level=level,
        total=_count(rows),
        machine_decided=_count([r for r in rows if r.decided_by == "machine"]),
        evaluator_decided=_count([r for r in rows if r.decided_by == "evaluator"]),
        waiting=_count(waiting),
        waiting_evaluator_only=_count([r for r in waiting if r.role in ("evaluator_only", "unruled")]),
        waiting_supported=_count([r for r in waiting if r.role == "supports"]),
        waiting_undecided=_count([r for r in waiting if r.role == "decides"]),
    )


def _problems(
    rows: Sequence[IndicatorRow], findings: Sequence[FindingIn], remedies: Remedies, lang: Lang
) -> list[Problem]:
    """Each indicator whose written result (evaluator over machine) is fail or partial."""
    out: list[Problem] = []
    for row in rows:
        shown = row.evaluator or row.machine
        if shown is None or shown.status not in ("fail", "partial"):
            continue
        items = [
            ProblemFinding(
                finding=n,
                device=f.device,
                status=f.status,
                reason=f.reason,
                detail=f.detail,
                evidence=f.evidence,
                remediation=remedies.text(f.probe, f.reason, lang),
            )
            for n in row.findings
            if (f := findings[n - 1]).status in ("fail", "partial")
        ]
        out.append(
            Problem(
                indicator=row.id,
                level=row.level,
                kind=row.kind,
                text=row.text,
                status=shown.status,
                source=shown.source,
                ratio=shown.ratio,
                note=shown.note,
                waiver=row.waiver,
                findings=items,
                remediation=remedies.generic[lang],
            )
        )
    return out


def failed_targets(finding: FindingIn) -> list[str]:
    """The devices a linkage finding could not observe: the check stalled on them."""
    return targets_in(finding, ("error",))


def _unread(files: RunFiles, remedies: Remedies, lang: Lang) -> list[UnreadDevice]:
    kind_of = {d.id: d.kind for d in files.run.inventory}
    errors: dict[str, list[tuple[int, FindingIn]]] = {}
    for n, f in enumerate(files.findings, 1):
        if f.status == "error":
            for device in failed_targets(f) or [f.device]:
                errors.setdefault(device, []).append((n, f))
    return [
        UnreadDevice(
            device=device,
            kind=kind_of.get(device),
            reasons=sorted({f.reason for _, f in found}),
            detail=found[0][1].detail,
            findings=[n for n, _ in found],
            remediation=remedies.text(found[0][1].probe, found[0][1].reason, lang),
        )
        for device, found in sorted(errors.items())
    ]


def _conclusion(
    final: ScoreReport,
    target: str,
    rows: Sequence[IndicatorRow],
    levels: Sequence[str],
    evaluator: Path | None,
    t: Messages,
) -> Conclusion:
    paras = [t("opinion.grade", grade=final.grade) if final.grade else t("opinion.no_grade")]
    for lv in levels:
        s = final.level(lv)
        state = "passed" if s.passed else "pending" if s.meets_threshold else "not_passed"
        line = t("opinion.level", level=lv, total=number(s.total), state=t(f"level.{state}"))
        if s.basic_failed:
            line += t("opinion.basic_failed", items=", ".join(s.basic_failed))
        if s.basic_pending:
            line += t("opinion.basic_pending", n=len(s.basic_pending))
        if s.exactly_80:
            line += t("opinion.exactly_80")
        paras.append(line)
    for e in final.eligibility:
        if not e.eligible and set(GRADE_NEEDS[e.grade]) <= set(levels):
            failed = [i for lv in GRADE_NEEDS[e.grade] for i in final.level(lv).basic_failed]
            paras.append(t("opinion.ineligible", grade=e.grade, items=", ".join(failed)))
    met = final.grade is not None and final.grade <= target  # A is the highest grade
    paras.append(t("opinion.target_met" if met else "opinion.target_not_met", target=target))
    waiting = [r for r in rows if r.decided_by is None]
    points = _count(waiting).points
    paras.append(t("opinion.waiting", n=len(waiting), points=points))
    if evaluator is None:
        paras.append(t("opinion.machine_only"))
    paras.append(t("opinion.auxiliary"))
    return Conclusion(grade=final.grade, target_level=target, target_met=met, opinion=paras)


def _label(grade: str | None, header: Header, on: date, t: Messages) -> Label:
    until = valid_until(on) if grade else None
    return Label(
        topic=t("label.topic_value"),
        grade=grade,
        issuer=header.evaluator,
        valid_from=on.isoformat() if grade else None,
        valid_until=until.isoformat() if until else None,
        number=header.label_number,
    )


def _excerpt(value: object) -> tuple[str, bool]:
    text = value if isinstance(value, str) else "" if value is None else json.dumps(value, ensure_ascii=False)
    return (text[:EXCERPT], True) if len(text) > EXCERPT else (text, False)


def _evidence(record_id: str, record: Record | None) -> dict[str, Any]:
    """An EvidenceView's fields (times as recorded)."""
    if record is None:
        return {"id": record_id, "found": False}
    body = record.body
    method: dict[str, Any] = body["method"] if isinstance(body.get("method"), dict) else {}
    request, cut_request = _excerpt(body.get("request"))
    response, cut_response = _excerpt(body.get("response"))
    duration = body.get("duration_s")
    raw_size = body.get("raw_size")
    return dict(
        id=record_id,
        found=True,
        seq=record.seq,
        hash=record.hash,
        probe=body.get("probe"),
        device=body.get("device"),
        protocol=method.get("protocol"),
        operation=method.get("operation"),
        address=method.get("address"),
        started_at=body.get("started_at"),
        duration_s=float(duration) if isinstance(duration, int | float) else None,
        device_time=body.get("device_time"),
        ok=body.get("ok") if isinstance(body.get("ok"), bool) else None,
        error=body.get("error"),
        library=body.get("library"),
        request=request,
        response=response,
        truncated=cut_request or cut_response,
        exchange_sha256=body.get("exchange_sha256"),
        raw_sha256=body.get("raw_sha256"),
        raw_size=raw_size if isinstance(raw_size, int) else None,
    )
