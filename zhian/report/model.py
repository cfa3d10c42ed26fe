"""zhian.report/1: everything a report shows, as one typed document.

`--format json` prints this model; html, md and junit render it and nothing else, so the JSON holds
all that the other formats show. `zhian report --schema` prints its JSON Schema (every field is
described here). Numbers are points and days as the tables print them (at most two decimals);
times are ISO 8601 in the site's time zone (`overview.community.timezone`) to the second; text
from devices is kept as it came (redacted by the run) and escaped by each renderer. `lang` says
which language the translated texts (indicator texts, remediation, opinion) are in; codes
(statuses, reasons, ids) never change with it.

Cross references: `IndicatorRow.findings`, `Problem*.finding` and the charts' `finding` are
indices `n` into `findings`; a finding's `evidence` lists exchange ids, each an entry of `evidence`
(the ledger record of that exchange).
"""

from __future__ import annotations

from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA: Final = "zhian.report/1"
Lang = Literal["zh", "en"]
Role = Literal["decides", "supports", "evaluator_only", "unruled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signer(_Model):
    algorithm: str
    public_key: str = Field(description="base64 of the Ed25519 public key that sealed the run")
    fingerprint: str


class RunInfo(_Model):
    run_id: str
    tool: str = Field(description="the zhian version that ran the evaluation")
    started_at: str | None
    finished_at: str | None
    interrupted: bool = Field(description="the run was stopped early; what it collected is kept")
    recovered: bool = Field(False, description="killed before its seal; sealed by `zhian seal --recover`")
    recovery_reason: str | None = None
    config_sha256: str | None
    threshold: Literal["gt", "ge"] = Field(description="gt: a level passes above 80 (9.1); ge: from 80 (9.2)")
    levels: list[str] = Field(description="the levels the run evaluated")
    sampling_mode: str | None = Field(description="inspection (7.4 samples) or monitoring (every device)")
    sampling_seed: int | None
    findings: int
    exchanges: int
    ledger_records: int
    chain_head: str = Field(description="hash of the ledger's last record")
    signed_by: Signer | None


class Community(_Model):
    name: str
    operator: str = Field(description="the property operator (registered entity) as configured")
    address: str
    target_level: str = Field(description="the grade the community applies for")
    timezone: str = Field(description="the site's IANA time zone: every time in this report is in it")


class DeviceGroup(_Model):
    kind: str
    area: str
    count: int
    tls: int = Field(description="how many of them the inventory declares with TLS")
    protocols: list[str]


class SampleGroup(_Model):
    group: str = Field(description="a homogeneous set (device kind, or kind:type of MQTT devices)")
    population: int
    size: int
    ratio: float
    rule: str = Field(description="the 7.4 rule applied")
    items: list[str]


class Reachability(_Model):
    kind: str
    probed: int = Field(description="devices of this kind some probe looked at")
    answered: int = Field(description="of those, devices with at least one finding that is not an error")
    unreadable: list[str] = Field(description="devices whose every finding is an error")


class Overview(_Model):
    community: Community
    devices_total: int
    by_kind: dict[str, int]
    by_area: dict[str, int]
    groups: list[DeviceGroup]
    samples: list[SampleGroup]
    reachability: list[Reachability]
    tls_versions: dict[str, int] = Field(description="TLS version seen per device checked ('none': plain)")


class FirstLevel(_Model):
    id: str
    name: str
    total: float
    max: float
    status: Literal["scored", "gated", "pending"]


class LevelSummary(_Model):
    level: str
    total: float
    max: float
    passed: bool
    meets_threshold: bool
    exactly_80: bool = Field(description="9.1 (> 80) and 9.2 (80 以上) disagree at exactly 80")
    basic_failed: list[str] = Field(description="6.2 gates: failed basic requirements")
    basic_pending: list[str] = Field(description="basic requirements not passed yet")
    gated: list[str] = Field(description="first-level indicators whose scored items were not evaluated (6.2)")
    open: list[str] = Field(description="scored items without a decisive result")
    first_levels: list[FirstLevel]
    machine_total: float | None = Field(description="the total of the run's own score.json")


class Eligibility(_Model):
    grade: str
    needs: list[str]
    eligible: bool
    failed: list[str] = Field(description="9.3: the failed basic requirements that cost the eligibility")


class Summary(_Model):
    threshold: Literal["gt", "ge"]
    grade: str | None = Field(description="the grade of the final verdicts (evaluator over machine)")
    machine_grade: str | None = Field(description="the grade in the run's score.json (machine only)")
    machine_score_matches_run: bool = Field(
        description="the machine verdicts rescored now give exactly the run's score.json"
    )
    evaluator_file: str | None = Field(description="the evaluator file's name (not its local path)")
    evaluator_sha256: str | None = Field(description="sha256 of the evaluator file as read")
    levels: list[LevelSummary]
    eligibility: list[Eligibility]


class Count(_Model):
    indicators: int
    points: float = Field(description="the points those indicators carry (basic items carry none)")


class Coverage(_Model):
    level: str
    total: Count
    machine_decided: Count = Field(description="final result pass/fail/partial from machine evidence")
    evaluator_decided: Count
    waiting: Count = Field(description="no decisive result yet: the evaluator's to judge")
    waiting_evaluator_only: Count = Field(description="of those, indicators no probe can judge")
    waiting_supported: Count = Field(description="of those, indicators the machine supplies facts for")
    waiting_undecided: Count = Field(description="of those, indicators the machine could not judge this run")


class ResultView(_Model):
    status: str
    source: str
    ratio: float | None
    note: str | None


class WaiverView(_Model):
    indicator: str
    justification: str
    approver: str
    expires: str
    judged_on: str
    state: Literal["applied", "expired", "superseded", "no_effect"]


class IndicatorRow(_Model):
    id: str
    level: str
    first_level: str
    first_level_name: str
    second_level: str
    second_level_name: str
    kind: Literal["basic", "scored"]
    points: float | None
    printed_label: str | None
    text: str
    text_lost: bool
    role: Role = Field(description="what the machine can do for it: decides, supports, evaluator_only")
    role_note: str = Field(description="the rule's probes, or why only the evaluator can judge it")
    machine: ResultView | None = Field(description="the machine's proposal as the run wrote it")
    evaluator: ResultView | None
    waiver: WaiverView | None
    final_status: str = Field(description="the result scored (after the evaluator and any waiver)")
    final_source: str | None
    decided_by: Literal["machine", "evaluator"] | None
    awarded: float
    gated: bool
    open: bool
    findings: list[int]


class FindingView(_Model):
    n: int
    probe: str
    device: str
    status: str
    reason: str
    detail: str
    ratio: float | None
    started_at: str | None
    finished_at: str | None
    indicators: list[str]
    evidence: list[str]
    facts: dict[str, Any]


class EvidenceView(_Model):
    id: str
    found: bool = Field(description="false: a finding cites it but the ledger has no such record")
    seq: int | None = None
    hash: str | None = None
    probe: str | None = None
    device: str | None = None
    protocol: str | None = None
    operation: str | None = None
    address: str | None = None
    started_at: str | None = None
    duration_s: float | None = None
    device_time: str | None = None
    ok: bool | None = None
    error: str | None = None
    library: str | None = None
    request: str = ""
    response: str = ""
    truncated: bool = Field(False, description="request/response cut for the report; the ledger has all")
    exchange_sha256: str | None = None
    raw_sha256: str | None = Field(None, description="the full reply, as artefacts/<sha256>")
    raw_size: int | None = None


class ProblemFinding(_Model):
    finding: int
    device: str
    status: str
    reason: str
    detail: str
    evidence: list[str]
    remediation: str


class Problem(_Model):
    indicator: str
    level: str
    kind: Literal["basic", "scored"]
    text: str
    status: str
    source: str
    ratio: float | None
    note: str | None
    waiver: WaiverView | None
    findings: list[ProblemFinding]
    remediation: str = Field(description="what would fix it, where no finding says more")


class UnreadDevice(_Model):
    device: str
    kind: str | None
    reasons: list[str]
    detail: str
    findings: list[int]
    remediation: str


class Fix(_Model):
    """One cause on one device to fix, with everything it costs: the unit of work of part 3."""

    rank: int = Field(description="1 = fix first: a failed basic requirement (6.2 gate, 9.3) before points")
    reason: str = Field(description="the reason code of the findings (the cause)")
    probe: str
    fix_on: str = Field(description="the device to fix (the platform for missing alerts, a linkage's target)")
    fix_kind: str | None
    seen_on: list[str] = Field(description="the devices whose findings show the cause")
    indicators: list[str] = Field(description="every indicator the cause touches")
    indicator_titles: dict[str, str] = Field(description="indicator id -> its text, in `lang`")
    gates: list[str] = Field(description="failed basic requirements among them (6.2: gate their first level)")
    points: float = Field(description="points at stake: the touched scored items, and a gated first level's")
    status: str = Field(description="fail, or partial when no finding of the cause failed outright")
    findings: list[int]
    remediation: str


class Problems(_Model):
    fixes: list[Fix] = Field(description="problems grouped by cause and device to fix, ranked by impact")
    items: list[Problem]
    unread: list[UnreadDevice] = Field(
        description="devices with error findings: checks that could not be completed"
    )


class Conclusion(_Model):
    grade: str | None
    target_level: str
    target_met: bool
    opinion: list[str] = Field(description="the opinion, one paragraph an item, in `lang`")


class SignOff(_Model):
    community: str
    registered_entity: str | None
    evaluation_body: str | None
    evaluators: list[str]
    issuer: str | None
    report_date: str
    date_from: Literal["evaluator_file", "today"]


class Label(_Model):
    """The label data of 8.2."""

    topic: str
    grade: str | None
    issuer: str | None
    valid_from: str | None
    valid_until: str | None = Field(description="4.10: results are valid for 5 years")
    number: str | None


class Span(_Model):
    start: str
    end: str | None
    hours: float | None


class RetentionBar(_Model):
    device: str
    probe: str
    status: str
    reason: str
    observed_days: float | None
    configured_days: float | None
    required_days: float | None
    as_of: str | None = Field(description="when the recording was searched: the timeline's right end")
    earliest: str | None = Field(description="the oldest video held")
    gaps: list[Span] = Field(description="spans with no recording")
    deletions: list[Span] = Field(description="spans whose recording was deleted")
    finding: int


class HeartbeatRow(_Model):
    device: str
    status: str
    reason: str
    heartbeat_count: int | None
    last_seen: str | None
    max_gap_s: float | None
    interval_s: float | None
    first_live_at: str | None
    last_live_at: str | None
    beats: list[str] = Field(description="each heartbeat's arrival, only when the evidence kept them all")
    finding: int


class HeartbeatChart(_Model):
    gateway: str
    window_start: str | None
    window_end: str | None
    window_exact: bool = Field(description="false: the window is placed from the finding's end time")
    rows: list[HeartbeatRow]
    more_alive: int = Field(description="alive devices left out of the chart to keep it readable")


class LinkageStep(_Model):
    effect: str
    target: str
    status: str
    delay_s: float | None
    deadline_s: float | None


class LinkageChart(_Model):
    test: str
    subject: str
    zone: str | None
    area: str | None
    trigger_at: str | None
    outcome: str | None
    observed_for_s: float | None
    steps: list[LinkageStep]
    findings: list[int]


class Charts(_Model):
    retention: list[RetentionBar]
    heartbeat: list[HeartbeatChart]
    linkage: list[LinkageChart]


class Report(_Model):
    schema_: Literal["zhian.report/1"] = Field(SCHEMA, alias="schema")
    lang: Lang
    generated_by: str
    report_date: str
    run: RunInfo
    overview: Overview
    summary: Summary
    coverage: list[Coverage]
    problems: Problems
    conclusion: Conclusion
    sign_off: SignOff
    label: Label
    indicators: list[IndicatorRow]
    waivers: list[WaiverView]
    charts: Charts
    findings: list[FindingView]
    evidence: list[EvidenceView]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


def report_schema() -> dict[str, Any]:
    return Report.model_json_schema(by_alias=True)
