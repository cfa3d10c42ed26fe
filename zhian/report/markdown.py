"""The report as Markdown: the same sections as the HTML, charts as their data in tables.

Text from devices is HTML-escaped and its Markdown specials backslashed, so no renderer turns a
device reply into markup or a table break; request and reply excerpts sit in fences longer than any
backtick run inside them.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from zhian.report.escape import clean
from zhian.report.messages import Messages, messages
from zhian.report.model import EvidenceView, IndicatorRow, Problem, Report, ResultView
from zhian.report.svg_retention import explain
from zhian.report.times import shown

_SPECIAL = re.compile(r"([\\`*_\[\]|])")
_LINE_START = re.compile(r"^(?:[#>]|[-+] |\d+(?=\. ))")


def md(text: object) -> str:
    """Text as literal Markdown: no HTML, no emphasis, links, code or table breaks, no heading or list."""
    out = _SPECIAL.sub(r"\\\1", html.escape(clean(text), quote=False))
    out = _LINE_START.sub(lambda m: m.group() + "\\" if m.group()[0].isdigit() else "\\" + m.group(), out)
    return out.replace("\r\n", "\n").replace("\n", "<br>")


def _dash(value: object) -> str:
    return "—" if value is None or value == "" else md(value)


def _table(head: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [*out, ""]


def _fence(text: str) -> list[str]:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, clean(text), fence]


def _status(t: Messages, status: str) -> str:
    return f"**{md(t('status.' + status))}**"


def _result(t: Messages, r: ResultView | None) -> str:
    if r is None:
        return "—"
    ratio = f" ({r.ratio:g})" if r.ratio is not None else ""
    return _status(t, r.status) + ratio + (f"<br>{md(r.note)}" if r.note else "")


def _kind(t: Messages, kind: str) -> str:
    return md(t("kind." + kind) if t.has("kind." + kind) else kind)


def _f(n: int) -> str:
    return f"[F{n}](#f-{n})"


def _ex(ex: str) -> str:
    return f"[{md(ex[:12])}](#ex-{md(ex)})"


def _problem(t: Messages, p: Problem) -> list[str]:
    kind = t("kind.basic_item") if p.kind == "basic" else t("kind.scored_item")
    out = [f"### [{md(p.indicator)}](#ind-{md(p.indicator)}) {md(p.text)}", ""]
    line = f"{_status(t, p.status)} · {md(t('source.' + p.source))} · {md(kind)}"
    out += [line + (f" · {md(p.note)}" if p.note else ""), ""]
    if p.waiver:
        w = p.waiver
        out += [
            f"> {md(t('waiver.title'))}: {md(t('waiver.' + w.state, expires=w.expires, on=w.judged_on))}",
            "",
        ]
    if not p.findings:
        return [*out, f"**{md(t('problem.fix'))}** {md(p.remediation)}", ""]
    head = [md(t(k)) for k in ("col.device", "col.status", "col.detail", "col.evidence", "col.fix")]
    rows = (
        [
            md(f.device),
            f"{_status(t, f.status)} {md(t.reason(f.reason))}",
            md(f.detail),
            " ".join([_f(f.finding), *(_ex(e) for e in f.evidence)]),
            md(f.remediation),
        ]
        for f in p.findings
    )
    return out + _table(head, rows)


def _indicator(t: Messages, i: IndicatorRow) -> list[str]:
    waiver = ""
    if i.waiver:
        w = i.waiver
        waiver = (
            f"<br>{md(t('waiver.title'))}: {md(t('waiver.' + w.state, expires=w.expires, on=w.judged_on))}"
        )
    return [
        f'<a id="ind-{md(i.id)}"></a>{md(i.id)}',
        md(i.text) if i.text else md(t("indicator.text_lost")),
        md(t("kind.basic_item")) if i.kind == "basic" else f"{i.points:g}",
        md(t("role." + i.role)),
        _result(t, i.machine),
        _result(t, i.evaluator) + waiver,
        _status(t, i.final_status) + (f"<br>{md(t('indicator.gated'))}" if i.gated else ""),
        "—" if i.kind == "basic" else f"{i.awarded:g}",
        " ".join(_f(n) for n in i.findings) or "—",
    ]


def _exchange(t: Messages, e: EvidenceView) -> list[str]:
    out = [f'<a id="ex-{md(e.id)}"></a>', f"#### {md(e.id)}", ""]
    if not e.found:
        return [*out, f"**{md(t('evidence.missing'))}**", ""]
    out += [
        f"- {md(t('evidence.record'))}: #{e.seq} `{e.hash}`",
        f"- {md(t('evidence.method'))}: {md(f'{e.protocol} · {e.operation} · {e.address}')}",
        f"- {md(t('evidence.who'))}: {md(f'{e.probe} · {e.device} · {e.library}')}",
        f"- {md(t('evidence.when'))}: {md(f'{shown(e.started_at)} · {e.duration_s} s')}",
        f"- {md(t('evidence.ok'))}: {md(t('answer.yes' if e.ok else 'answer.no'))}"
        + (f" · {md(e.error)}" if e.error else ""),
        f"- {md(t('evidence.sha'))}: `{e.exchange_sha256}`"
        + (f" · raw `{e.raw_sha256}`" if e.raw_sha256 else ""),
        "",
        f"{md(t('evidence.request'))}:",
        *_fence(e.request),
        f"{md(t('evidence.response'))}:",
        *_fence(e.response),
    ]
    return out + ([md(t("evidence.truncated"))] if e.truncated else []) + [""]


def render_markdown(r: Report) -> str:
    t = messages(r.lang)
    o, s, run, c = r.overview, r.summary, r.run, r.overview.community
    out = [
        f"# {md(t('title'))}",
        "",
        f"{md(c.name)} · {md(t('sign.date'))} {r.report_date} · {md(run.run_id)}",
        "",
    ]
    out += [f"> {md(t('intro'))}", ""]
    if run.interrupted:
        out += [f"> **{md(t('run.interrupted'))}**", ""]
    if run.recovered:
        out += [f"> **{md(t('run.recovered', reason=run.recovery_reason or '—'))}**", ""]
    if not s.machine_score_matches_run:
        out += [f"> **{md(t('summary.mismatch'))}**", ""]
    lb = r.label
    validity = f"{lb.valid_from} — {lb.valid_until}" if lb.valid_from else None
    out += [f"## {md(t('label.title'))}", ""]
    out += _table(
        [md(t("col.item")), md(t("col.value"))],
        [
            [md(t("label.topic")), md(lb.topic)],
            [md(t("label.grade")), md(t("grade.value", grade=lb.grade) if lb.grade else t("grade.none"))],
            [md(t("label.issuer")), _dash(lb.issuer)],
            [md(t("label.validity")), _dash(validity)],
            [md(t("label.number")), _dash(lb.number)],
        ],
    )
    # 1
    out += [f"## {md(t('section.s1'))}", ""]
    out += _table(
        [md(t("col.item")), md(t("col.value"))],
        [
            [md(t("community.name")), md(c.name)],
            [md(t("community.operator")), _dash(c.operator)],
            [md(t("community.address")), _dash(c.address)],
            [md(t("community.target")), md(t("grade.value", grade=c.target_level))],
            [md(t("run.period")), md(f"{shown(run.started_at)} — {shown(run.finished_at)} ({c.timezone})")],
            [
                md(t("run.sampling")),
                md(t("sampling." + (run.sampling_mode or "unknown"), seed=run.sampling_seed)),
            ],
            [md(t("run.devices")), str(o.devices_total)],
        ],
    )
    out += [f"### {md(t('overview.groups'))}", ""]
    out += _table(
        [md(t(k)) for k in ("col.kind", "col.area", "col.count", "col.tls", "col.protocols")],
        (
            [_kind(t, g.kind), md(g.area), str(g.count), str(g.tls), md(", ".join(g.protocols))]
            for g in o.groups
        ),
    )
    out += [f"### {md(t('overview.discovered'))}", ""]
    out += _table(
        [md(t(k)) for k in ("col.kind", "col.probed", "col.answered", "col.unreadable")],
        (
            [_kind(t, x.kind), str(x.probed), str(x.answered), _dash(", ".join(x.unreadable))]
            for x in o.reachability
        ),
    )
    tls = ", ".join(f"{md(v)}: {n}" for v, n in o.tls_versions.items()) or "—"
    out += [f"{md(t('overview.tls'))} {tls}", "", f"### {md(t('overview.samples'))}", ""]
    out += (
        _table(
            [md(t(k)) for k in ("col.group", "col.population", "col.sample", "col.rule", "col.items")],
            (
                [md(x.group), str(x.population), str(x.size), md(x.rule), md(", ".join(x.items))]
                for x in o.samples
            ),
        )
        if o.samples
        else ["—", ""]
    )
    # 2
    grade = t("grade.value", grade=s.grade) if s.grade else t("grade.none")
    out += [f"## {md(t('section.s2'))}", ""]
    source = md(t("summary.no_evaluator"))
    if s.evaluator_file:
        source = f"{md(s.evaluator_file)} (sha256 `{s.evaluator_sha256}`)"
    out += [
        f"{md(t('summary.grade'))} **{md(grade)}** · "
        f"{md(t('summary.threshold'))} {md(t('threshold.' + s.threshold))}"
        f" · {md(t('summary.evaluator_file'))} {source}",
        "",
    ]
    level_rows = []
    for lv in s.levels:
        state = "passed" if lv.passed else "pending" if lv.meets_threshold else "not_passed"
        flag = f" ⚑ {md(t('summary.exactly_80'))}" if lv.exactly_80 else ""
        firsts = "<br>".join(
            f"{f.id} {md(f.name)}: {f.total:g} / {f.max:g} ({md(t('first.' + f.status))})"
            for f in lv.first_levels
        )
        machine = "—" if lv.machine_total is None else f"{lv.machine_total:g}"
        level_rows.append(
            [
                lv.level,
                f"**{lv.total:g}** / {lv.max:g}{flag}",
                machine,
                md(t("level." + state)),
                firsts,
                md(", ".join(lv.basic_failed)) or "—",
                str(len(lv.basic_pending)),
            ]
        )
    out += _table(
        [md(t(k)) for k in ("col.level", "col.total", "col.machine_total", "col.state", "col.first_levels")]
        + [md(t("col.basic_failed")), md(t("col.basic_pending"))],
        level_rows,
    )
    out += [f"### {md(t('summary.eligibility'))}", ""]
    out += _table(
        [md(t(k)) for k in ("col.grade", "col.needs", "col.eligible", "col.reasons")],
        (
            [
                e.grade,
                "+".join(e.needs),
                md(t("answer.yes" if e.eligible else "answer.no")),
                md(", ".join(e.failed)) or "—",
            ]
            for e in s.eligibility
        ),
    )
    out += [f"### {md(t('summary.coverage'))}", "", md(t("coverage.explain")), ""]

    def cell(n: int, points: float) -> str:
        return md(t("coverage.cell", n=n, points=f"{points:g}"))

    out += _table(
        [
            md(t("coverage." + k))
            for k in ("level", "total", "machine", "evaluator", "waiting", "only", "supported")
        ]
        + [md(t("coverage.undecided"))],
        (
            [cv.level]
            + [
                cell(x.indicators, x.points)
                for x in (
                    cv.total,
                    cv.machine_decided,
                    cv.evaluator_decided,
                    cv.waiting,
                    cv.waiting_evaluator_only,
                    cv.waiting_supported,
                    cv.waiting_undecided,
                )
            ]
            for cv in r.coverage
        ),
    )
    # 3
    out += [f"## {md(t('section.s3'))}", "", md(t("problem.explain")), ""]
    for p in r.problems.items:
        out += _problem(t, p)
    if not r.problems.items:
        out += [md(t("problem.none")), ""]
    out += [f"### {md(t('problem.unread'))}", "", md(t("problem.unread_explain")), ""]
    out += _table(
        [md(t(k)) for k in ("col.device", "col.kind", "col.reason", "col.detail", "col.findings", "col.fix")],
        (
            [
                md(u.device),
                _kind(t, u.kind) if u.kind else "—",
                md(", ".join(t.reason(r) for r in u.reasons)),
                md(u.detail),
                " ".join(_f(n) for n in u.findings),
                md(u.remediation),
            ]
            for u in r.problems.unread
        ),
    )
    # 4, 5
    out += [f"## {md(t('section.s4'))}", ""]
    for para in r.conclusion.opinion:
        out += [md(para), ""]
    so = r.sign_off
    date = so.report_date + ("" if so.date_from == "evaluator_file" else f" ({md(t('sign.date_today'))})")
    out += [f"## {md(t('section.s5'))}", ""]
    out += _table(
        [md(t("col.item")), md(t("col.value"))],
        [
            [md(t("community.name")), md(so.community)],
            [md(t("sign.entity")), _dash(so.registered_entity)],
            [md(t("sign.body")), _dash(so.evaluation_body)],
            [md(t("sign.evaluators")), _dash(", ".join(so.evaluators))],
            [md(t("sign.date")), date],
            [md(t("sign.issuer")), _dash(so.issuer)],
            [md(t("sign.signature")), " "],
            [md(t("sign.seal")), " "],
        ],
    )
    # appendices
    out += [f"## {md(t('section.a1'))}", ""]
    head = [
        md(t("col." + k))
        for k in ("id", "text", "points", "role", "machine", "evaluator", "final", "awarded")
    ]
    head.append(md(t("col.findings")))
    for level in run.levels:
        rows = [i for i in r.indicators if i.level == level]
        if rows:
            out += [f"### {md(t('indicator.level', level=level))}", ""]
            out += _table(head, (_indicator(t, i) for i in rows))
    out += [f"## {md(t('section.a2'))}", "", md(t("waiver.explain")), ""]
    out += _table(
        [md(t(k)) for k in ("col.id", "col.justification", "col.approver", "col.expires", "col.state")],
        (
            [
                md(w.indicator),
                md(w.justification),
                md(w.approver),
                w.expires,
                md(t("waiver." + w.state, expires=w.expires, on=w.judged_on)),
            ]
            for w in r.waivers
        ),
    )
    out += _charts(r, t)
    out += [f"## {md(t('section.a4'))}", ""]
    out += _table(
        [
            md(t("col." + k))
            for k in ("finding", "probe", "device", "status", "detail", "indicators", "evidence")
        ],
        (
            [
                f'<a id="f-{f.n}"></a>F{f.n}',
                md(f.probe),
                md(f.device),
                f"{_status(t, f.status)} {md(t.reason(f.reason))}",
                md(f.detail),
                md(", ".join(f.indicators)) or "—",
                " ".join(_ex(e) for e in f.evidence) or "—",
            ]
            for f in r.findings
        ),
    )
    signer = run.signed_by
    out += [f"## {md(t('section.a5'))}", "", md(t("seal.explain")), ""]
    out += [
        f"- {md(t('seal.tool'))}: {md(run.tool)} / {md(r.generated_by)}",
        f"- {md(t('seal.config'))}: `{run.config_sha256 or '—'}`",
        f"- {md(t('seal.ledger'))}: "
        + md(t("seal.ledger_value", records=run.ledger_records, exchanges=run.exchanges)),
        f"- {md(t('seal.head'))}: `{run.chain_head}`",
        f"- {md(t('seal.signer'))}: " + (f"`{md(signer.fingerprint)}`" if signer else "—"),
        f"- {md(t('seal.key'))}: " + (f"{md(signer.algorithm)} `{md(signer.public_key)}`" if signer else "—"),
        "",
    ]
    for e in r.evidence:
        out += _exchange(t, e)
    return "\n".join(out).rstrip() + "\n"


def _charts(r: Report, t: Messages) -> list[str]:
    c = r.charts
    out = [f"## {md(t('section.a3'))}", "", f"### {md(t('chart.retention.title'))}", ""]
    out += _table(
        [md(t(k)) for k in ("col.device", "col.observed", "col.configured", "col.required", "col.status")],
        (
            [
                md(b.device),
                _dash(b.observed_days),
                _dash(b.configured_days),
                _dash(b.required_days),
                f"{md(explain(t, b))} [F{b.finding}](#f-{b.finding})",
            ]
            for b in c.retention
        ),
    )
    out += [f"### {md(t('chart.heartbeat.section'))}", ""]
    for h in c.heartbeat:
        caption = t("chart.heartbeat.caption", gateway=h.gateway, start=h.window_start or "—")
        caption += "" if h.window_exact else " " + t("chart.heartbeat.approx")
        caption += " " + t("chart.heartbeat.more", n=h.more_alive) if h.more_alive else ""
        out += [md(caption), ""]
        out += _table(
            [
                md(t(k))
                for k in ("col.device", "col.status", "col.heartbeats", "col.last_seen", "col.max_gap")
            ],
            (
                [
                    md(x.device),
                    f"{_status(t, x.status)} {md(t.reason(x.reason))}",
                    _dash(x.heartbeat_count),
                    _dash(x.last_seen),
                    _dash(x.max_gap_s),
                ]
                for x in h.rows
            ),
        )
    out += [f"### {md(t('chart.linkage.section'))}", ""]
    for chart in c.linkage:
        caption = t(
            "chart.linkage.caption", test=chart.test, subject=chart.subject, at=chart.trigger_at or "—"
        )
        if chart.zone:
            caption += " · " + t("chart.linkage.zone", zone=chart.zone)
        out += [md(caption) + " · " + " ".join(_f(n) for n in chart.findings), ""]
        out += _table(
            [md(t(k)) for k in ("col.effect", "col.target", "col.delay", "col.deadline", "col.status")],
            (
                [
                    md(t("effect." + s.effect) if t.has("effect." + s.effect) else s.effect),
                    md(s.target),
                    _dash(s.delay_s),
                    _dash(s.deadline_s),
                    md(t("watch." + s.status) if t.has("watch." + s.status) else s.status),
                ]
                for s in chart.steps
            ),
        )
    return out
