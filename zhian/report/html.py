"""The report as one self-contained HTML file: inline CSS and SVG, no script, nothing fetched, prints on A4.

Every value goes through `esc` (text and attributes alike), so a device reply cannot become markup.
Links stay inside the file: indicators (#ind-…), findings (#f-…) and ledger records (#ex-…).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from zhian.report import svg, svg_retention
from zhian.report.escape import esc
from zhian.report.html_first import first_screen, fixes_table
from zhian.report.messages import Messages, messages
from zhian.report.model import (
    Coverage,
    EvidenceView,
    FindingView,
    IndicatorRow,
    LevelSummary,
    Problem,
    Report,
    ResultView,
    WaiverView,
)
from zhian.report.times import shown

CSS = """
:root { --pass: #2e7d32; --fail: #c62828; --partial: #ef6c00; --open: #616161; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", sans-serif;
  margin: 2em auto; max-width: 1100px; padding: 0 1em; color: #111; line-height: 1.5; font-size: 14px; }
h1 { font-size: 1.6em; margin-bottom: .2em; } h2 { border-bottom: 2px solid #333; margin-top: 2em; }
h3 { margin-top: 1.4em; } .sub { color: #555; }
table { border-collapse: collapse; width: 100%; margin: .5em 0 1em; }
th, td { border: 1px solid #bbb; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num, th.num { text-align: right; white-space: nowrap; }
tr { break-inside: avoid; } .st { font-weight: bold; white-space: nowrap; }
.st-pass, .st-on_time { color: var(--pass); } .st-fail, .st-missing { color: var(--fail); }
.st-partial, .st-late { color: var(--partial); } .st-error, .st-not_assessed { color: var(--open); }
.label { border: 3px double #333; padding: .6em 1em; display: inline-block; margin: 1em 0; }
.label table { width: auto; }
.note { background: #fff8e1; border-left: 4px solid #f9a825; padding: .4em .8em; }
.warn { background: #ffebee; border-left: 4px solid var(--fail); padding: .4em .8em; }
pre { white-space: pre-wrap; word-break: break-all; background: #f7f7f7; padding: .4em; margin: .2em 0;
  font-size: 12px; max-height: 24em; overflow: auto; }
.chart { max-width: 100%; height: auto; display: block; margin: .5em 0 1.2em; }
.sign td { height: 2.4em; } .mono { font-family: monospace; overflow-wrap: anywhere; }
nav ol { columns: 2; list-style: none; padding-left: 0; } a { color: #0b5394; }
@page { size: A4; margin: 14mm; }
.first { border: 2px solid #333; padding: .2em 1em .6em; margin: 1em 0; } .first h2 { margin-top: .4em; }
.big { font-size: 1.3em; font-weight: bold; margin: .3em 0; }
.prov { background: #fff3cd; border: 1px solid #f9a825; border-radius: 3px; padding: 0 .4em;
  font-size: .8em; }
.fixtable td:nth-child(5) { min-width: 16em; } .print-only { display: none; }
@media print { body { margin: 0; max-width: none; font-size: 11px; } nav { display: none; }
  #a5 { display: none; } .print-only { display: block; }
  .appendix { break-before: page; } pre { max-height: none; overflow: visible; } a { color: inherit; } }
"""


def _status(t: Messages, status: str) -> str:
    return f'<span class="st st-{esc(status)}">{esc(t("status." + status))}</span>'


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()) -> str:
    """Cells are HTML already (escaped by the caller); `num` marks right-aligned columns."""
    return "".join(_table_parts(head, rows, num))


def _table_parts(
    head: Sequence[str], rows: Iterable[Sequence[str]], num: Sequence[int] = ()
) -> Iterator[str]:
    """The table a row at a time, for the long ones (every finding of a run)."""
    th = "".join(f"<th{' class=num' if i in num else ''}>{h}</th>" for i, h in enumerate(head))
    yield f"<table><thead><tr>{th}</tr></thead><tbody>"
    for row in rows:
        yield (
            "<tr>"
            + "".join(f"<td{' class=num' if i in num else ''}>{c}</td>" for i, c in enumerate(row))
            + "</tr>"
        )
    yield "</tbody></table>"


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _kind(t: Messages, kind: str) -> str:
    return esc(t("kind." + kind) if t.has("kind." + kind) else kind)


def _or_dash(value: object) -> str:
    return "—" if value is None or value == "" else esc(value)


def _num(value: float | None) -> str:
    return "—" if value is None else esc(f"{value:g}")


def _ind_link(indicator: str) -> str:
    return f'<a href="#ind-{esc(indicator)}">{esc(indicator)}</a>'


def _f_link(n: int) -> str:
    return f'<a href="#f-{n}">F{n}</a>'


def _ex_link(ex: str) -> str:
    return f'<a class="mono" href="#ex-{esc(ex)}">{esc(ex[:12])}</a>'


def _result(t: Messages, r: ResultView | None) -> str:
    if r is None:
        return "—"
    ratio = f" ({r.ratio:g})" if r.ratio is not None else ""
    note = f'<br><span class="sub">{esc(r.note)}</span>' if r.note else ""
    return _status(t, r.status) + esc(ratio) + note


def _waiver_state(t: Messages, w: WaiverView) -> str:
    return esc(t("waiver." + w.state, expires=w.expires, on=w.judged_on))


def _header(r: Report, t: Messages) -> str:
    c = r.overview.community
    warn = "" if r.summary.machine_score_matches_run else f'<p class="warn">{esc(t("summary.mismatch"))}</p>'
    interrupted = f'<p class="warn">{esc(t("run.interrupted"))}</p>' if r.run.interrupted else ""
    if r.run.recovered:
        interrupted += f'<p class="warn">{esc(t("run.recovered", reason=r.run.recovery_reason or "—"))}</p>'
    return (
        f"<header><h1>{esc(t('title'))}</h1>"
        f"<p class=sub>{esc(c.name)} · {esc(t('sign.date'))} {esc(r.report_date)} · "
        f"{esc(t('run.id'))} <span class=mono>{esc(r.run.run_id)}</span></p>"
        f'<p class="note">{esc(t("intro"))}</p>{interrupted}{warn}</header>'
    )


def _label(r: Report, t: Messages) -> str:
    lb = r.label
    validity = f"{lb.valid_from} — {lb.valid_until}" if lb.valid_from else None
    grade = t("grade.value", grade=lb.grade) if lb.grade else t("grade.none")
    rows = [
        (t("label.topic"), esc(lb.topic)),
        (t("label.grade"), esc(grade)),
        (t("label.issuer"), _or_dash(lb.issuer)),
        (t("label.validity"), _or_dash(validity)),
        (t("label.number"), _or_dash(lb.number)),
    ]
    return f'<section class="label" id="label"><h3>{esc(t("label.title"))}</h3>{_kv(rows)}</section>'


def _nav(t: Messages) -> str:
    keys = ["s1", "s2", "s3", "s4", "s5", "a1", "a2", "a3", "a4", "a5"]
    items = "".join(f'<li><a href="#{k}">{esc(t("section." + k))}</a></li>' for k in keys)
    return f"<nav><ol>{items}</ol></nav>"


def _overview(r: Report, t: Messages) -> str:
    o, run = r.overview, r.run
    c = o.community
    facts = [
        (t("community.name"), esc(c.name)),
        (t("community.operator"), _or_dash(c.operator)),
        (t("community.address"), _or_dash(c.address)),
        (t("community.target"), esc(t("grade.value", grade=c.target_level))),
        (t("run.period"), esc(f"{shown(run.started_at)} — {shown(run.finished_at)} ({c.timezone})")),
        (t("run.sampling"), esc(t("sampling." + (run.sampling_mode or "unknown"), seed=run.sampling_seed))),
        (t("run.devices"), esc(o.devices_total)),
    ]
    kinds = _table(
        [esc(t("col.kind")), esc(t("col.count"))],
        ([_kind(t, k), esc(n)] for k, n in o.by_kind.items()),
        num=(1,),
    )
    groups = _table(
        [esc(t(k)) for k in ("col.kind", "col.area", "col.count", "col.tls", "col.protocols")],
        (
            [
                _kind(t, g.kind),
                esc(g.area),
                esc(g.count),
                esc(g.tls),
                esc(", ".join(g.protocols)),
            ]
            for g in o.groups
        ),
        num=(2, 3),
    )
    reach = _table(
        [esc(t(k)) for k in ("col.kind", "col.probed", "col.answered", "col.unreadable")],
        (
            [
                _kind(t, x.kind),
                esc(x.probed),
                esc(x.answered),
                esc(", ".join(x.unreadable)) or "—",
            ]
            for x in o.reachability
        ),
        num=(1, 2),
    )
    tls = ", ".join(f"{esc(v)}: {n}" for v, n in o.tls_versions.items()) or "—"
    samples = _table(
        [esc(t(k)) for k in ("col.group", "col.population", "col.sample", "col.rule", "col.items")],
        (
            [esc(s.group), esc(s.population), esc(s.size), esc(s.rule), esc(", ".join(s.items))]
            for s in o.samples
        ),
        num=(1, 2),
    )
    return (
        f'<section id="s1"><h2>{esc(t("section.s1"))}</h2>{_kv(facts)}'
        f"<h3>{esc(t('overview.by_kind'))}</h3>{kinds}<h3>{esc(t('overview.groups'))}</h3>{groups}"
        f"<h3>{esc(t('overview.discovered'))}</h3>{reach}<p>{esc(t('overview.tls'))} {tls}</p>"
        f"<h3>{esc(t('overview.samples'))}</h3>{samples if o.samples else '<p>—</p>'}</section>"
    )


def _level_row(t: Messages, s: LevelSummary) -> list[str]:
    state = "passed" if s.passed else "pending" if s.meets_threshold else "not_passed"
    flag = f" ⚑ {esc(t('summary.exactly_80'))}" if s.exactly_80 else ""
    firsts = "<br>".join(
        f"{esc(f.id)} {esc(f.name)}: {_num(f.total)} / {_num(f.max)} ({esc(t('first.' + f.status))})"
        for f in s.first_levels
    )
    return [
        esc(s.level),
        f"<b>{_num(s.total)}</b> / {_num(s.max)}{flag}",
        _num(s.machine_total),
        esc(t("level." + state)),
        firsts,
        ", ".join(_ind_link(i) for i in s.basic_failed) or "—",
        esc(len(s.basic_pending)),
    ]


def _coverage_row(t: Messages, c: Coverage) -> list[str]:
    def cell(n: int, points: float) -> str:
        return esc(t("coverage.cell", n=n, points=f"{points:g}"))

    return [
        esc(c.level),
        cell(c.total.indicators, c.total.points),
        cell(c.machine_decided.indicators, c.machine_decided.points),
        cell(c.evaluator_decided.indicators, c.evaluator_decided.points),
        cell(c.waiting.indicators, c.waiting.points),
        cell(c.waiting_evaluator_only.indicators, c.waiting_evaluator_only.points),
        cell(c.waiting_supported.indicators, c.waiting_supported.points),
        cell(c.waiting_undecided.indicators, c.waiting_undecided.points),
    ]


def _summary(r: Report, t: Messages) -> str:
    s = r.summary
    mode = t("threshold." + s.threshold)
    grade = t("grade.value", grade=s.grade) if s.grade else t("grade.none")
    levels = _table(
        [esc(t(k)) for k in ("col.level", "col.total", "col.machine_total", "col.state", "col.first_levels")]
        + [esc(t("col.basic_failed")), esc(t("col.basic_pending"))],
        (_level_row(t, lv) for lv in s.levels),
        num=(1, 2, 6),
    )
    elig = _table(
        [esc(t(k)) for k in ("col.grade", "col.needs", "col.eligible", "col.reasons")],
        (
            [
                esc(e.grade),
                esc("+".join(e.needs)),
                esc(t("answer.yes" if e.eligible else "answer.no")),
                ", ".join(_ind_link(i) for i in e.failed) or "—",
            ]
            for e in s.eligibility
        ),
    )
    coverage = _table(
        [
            esc(t("coverage." + k))
            for k in ("level", "total", "machine", "evaluator", "waiting", "only", "supported")
        ]
        + [esc(t("coverage.undecided"))],
        (_coverage_row(t, c) for c in r.coverage),
    )
    source = esc(t("summary.no_evaluator"))
    if s.evaluator_file:
        source = f"{esc(s.evaluator_file)} (sha256 <span class=mono>{esc(s.evaluator_sha256)}</span>)"
    return (
        f'<section id="s2"><h2>{esc(t("section.s2"))}</h2>'
        f"<p>{esc(t('summary.grade'))} <b>{esc(grade)}</b> · {esc(t('summary.threshold'))} {esc(mode)} · "
        f"{esc(t('summary.evaluator_file'))} {source}</p>{levels}"
        f"<h3>{esc(t('summary.eligibility'))}</h3>{elig}"
        f"<h3>{esc(t('summary.coverage'))}</h3><p>{esc(t('coverage.explain'))}</p>{coverage}</section>"
    )


def _problem(t: Messages, p: Problem) -> str:
    kind = t("kind.basic_item") if p.kind == "basic" else t("kind.scored_item")
    waiver = f'<p class="note">{esc(t("waiver.title"))}: {_waiver_state(t, p.waiver)}</p>' if p.waiver else ""
    head = (
        f"<h3>{_ind_link(p.indicator)} {esc(p.text)}</h3>"
        f"<p>{_status(t, p.status)} · {esc(t('source.' + p.source))} · {esc(kind)}"
        + (f" · {esc(p.note)}" if p.note else "")
        + f"</p>{waiver}"
    )
    if not p.findings:
        return head + f"<p><b>{esc(t('problem.fix'))}</b> {esc(p.remediation)}</p>"
    rows = (
        [
            esc(f.device),
            _status(t, f.status) + f"<br>{esc(t.reason(f.reason))}",
            esc(f.detail),
            _f_link(f.finding) + "<br>" + " ".join(_ex_link(e) for e in f.evidence),
            esc(f.remediation),
        ]
        for f in p.findings
    )
    return head + _table(
        [esc(t(k)) for k in ("col.device", "col.status", "col.detail", "col.evidence", "col.fix")], rows
    )


def _problems(r: Report, t: Messages) -> str:
    items = "".join(_problem(t, p) for p in r.problems.items) or f"<p>{esc(t('problem.none'))}</p>"
    unread = _table(
        [
            esc(t(k))
            for k in ("col.device", "col.kind", "col.reason", "col.detail", "col.findings", "col.fix")
        ],
        (
            [
                esc(u.device),
                _kind(t, u.kind) if u.kind else "—",
                esc(", ".join(t.reason(r) for r in u.reasons)),
                esc(u.detail),
                " ".join(_f_link(n) for n in u.findings),
                esc(u.remediation),
            ]
            for u in r.problems.unread
        ),
    )
    return (
        f'<section id="s3"><h2>{esc(t("section.s3"))}</h2>{fixes_table(r, t)}'
        f"<p>{esc(t('problem.explain'))}</p>{items}"
        f"<h3>{esc(t('problem.unread'))}</h3><p>{esc(t('problem.unread_explain'))}</p>"
        + (unread if r.problems.unread else "<p>—</p>")
        + "</section>"
    )


def _conclusion(r: Report, t: Messages) -> str:
    paras = "".join(f"<p>{esc(p)}</p>" for p in r.conclusion.opinion)
    return f'<section id="s4"><h2>{esc(t("section.s4"))}</h2>{paras}</section>'


def _sign_off(r: Report, t: Messages) -> str:
    s = r.sign_off
    date_note = (
        "" if s.date_from == "evaluator_file" else f' <span class="sub">({esc(t("sign.date_today"))})</span>'
    )
    rows = [
        (t("community.name"), esc(s.community)),
        (t("sign.entity"), _or_dash(s.registered_entity)),
        (t("sign.body"), _or_dash(s.evaluation_body)),
        (t("sign.evaluators"), _or_dash(", ".join(s.evaluators))),
        (t("sign.date"), esc(s.report_date) + date_note),
        (t("sign.issuer"), _or_dash(s.issuer)),
        (t("sign.signature"), ""),
        (t("sign.seal"), ""),
    ]
    return f'<section id="s5" class="sign"><h2>{esc(t("section.s5"))}</h2>{_kv(rows)}</section>'


def _indicator_row(t: Messages, i: IndicatorRow) -> list[str]:
    points = t("kind.basic_item") if i.kind == "basic" else f"{i.points:g}"
    text = esc(i.text) if i.text else esc(t("indicator.text_lost"))
    label = (
        f'<br><span class="sub">{esc(t("indicator.printed", label=i.printed_label))}</span>'
        if (i.printed_label != i.id)
        else ""
    )
    role = f'{esc(t("role." + i.role))}<br><span class="sub">{esc(i.role_note)}</span>'
    waiver = f"<br>{esc(t('waiver.title'))}: {_waiver_state(t, i.waiver)}" if i.waiver else ""
    final = _status(t, i.final_status) + (f"<br>{esc(t('indicator.gated'))}" if i.gated else "")
    return [
        f'<span id="ind-{esc(i.id)}">{esc(i.id)}</span>',
        text + label,
        esc(points),
        role,
        _result(t, i.machine),
        _result(t, i.evaluator) + waiver,
        final,
        "—" if i.kind == "basic" else f"{i.awarded:g}",
        " ".join(_f_link(n) for n in i.findings) or "—",
    ]


def _indicators(r: Report, t: Messages) -> str:
    out = [f'<section id="a1" class="appendix"><h2>{esc(t("section.a1"))}</h2>']
    head = [
        esc(t("col." + k))
        for k in ("id", "text", "points", "role", "machine", "evaluator", "final", "awarded")
    ]
    head.append(esc(t("col.findings")))
    for level in r.run.levels:
        rows = [i for i in r.indicators if i.level == level]
        if rows:
            out.append(f"<h3>{esc(t('indicator.level', level=level))}</h3>")
            out.append(_table(head, (_indicator_row(t, i) for i in rows), num=(2, 7)))
    return "".join(out) + "</section>"


def _waivers(r: Report, t: Messages) -> str:
    body = _table(
        [esc(t(k)) for k in ("col.id", "col.justification", "col.approver", "col.expires", "col.state")],
        (
            [
                _ind_link(w.indicator),
                esc(w.justification),
                esc(w.approver),
                esc(w.expires),
                _waiver_state(t, w),
            ]
            for w in r.waivers
        ),
    )
    content = body if r.waivers else f"<p>{esc(t('waiver.none'))}</p>"
    head = f"<h2>{esc(t('section.a2'))}</h2><p>{esc(t('waiver.explain'))}</p>"
    return f'<section id="a2">{head}{content}</section>'


def _charts(r: Report, t: Messages) -> str:
    c = r.charts
    out = [f'<section id="a3" class="appendix"><h2>{esc(t("section.a3"))}</h2>']
    out.append(f"<h3>{esc(t('chart.retention.title'))}</h3>")
    out.append(
        svg_retention.retention(c.retention, t) if c.retention else f"<p>{esc(t('chart.no_data'))}</p>"
    )
    out.append(f"<h3>{esc(t('chart.heartbeat.section'))}</h3>")
    for h in c.heartbeat:
        drawn = svg.heartbeat(h, t)
        exact = "" if h.window_exact else " " + t("chart.heartbeat.approx")
        more = " " + t("chart.heartbeat.more", n=h.more_alive) if h.more_alive else ""
        caption = t("chart.heartbeat.caption", gateway=h.gateway, start=h.window_start or "—") + exact + more
        out.append(f"<p>{esc(caption)}</p>" + (drawn or f"<p>{esc(t('chart.no_data'))}</p>"))
    if not c.heartbeat:
        out.append(f"<p>{esc(t('chart.no_data'))}</p>")
    out.append(f"<h3>{esc(t('chart.linkage.section'))}</h3>")
    for chart in c.linkage:
        zone = f" · {t('chart.linkage.zone', zone=chart.zone)}" if chart.zone else ""
        caption = (
            t("chart.linkage.caption", test=chart.test, subject=chart.subject, at=chart.trigger_at or "—")
            + zone
            + (f" · {chart.area}" if chart.area else "")
        )
        links = " ".join(_f_link(n) for n in chart.findings)
        out.append(f"<p>{esc(caption)} · {links}</p>{svg.linkage(chart, t)}")
    if not c.linkage:
        out.append(f"<p>{esc(t('chart.no_data'))}</p>")
    return "".join(out) + "</section>"


def _finding(t: Messages, f: FindingView) -> list[str]:
    return [
        f'<span id="f-{f.n}">F{f.n}</span>',
        esc(f.probe),
        esc(f.device),
        _status(t, f.status) + f"<br>{esc(t.reason(f.reason))}",
        esc(f.detail),
        " ".join(_ind_link(i) for i in f.indicators) or "—",
        " ".join(_ex_link(e) for e in f.evidence) or "—",
    ]


def _findings(findings: Iterable[FindingView], t: Messages) -> Iterator[str]:
    head = [
        esc(t("col." + k))
        for k in ("finding", "probe", "device", "status", "detail", "indicators", "evidence")
    ]
    yield f'<section id="a4" class="appendix"><h2>{esc(t("section.a4"))}</h2>'
    yield from _table_parts(head, (_finding(t, f) for f in findings))
    yield "</section>"


def _exchange(t: Messages, e: EvidenceView) -> str:
    if not e.found:
        missing = f'<p class="warn">{esc(t("evidence.missing"))}</p>'
        return f'<div id="ex-{esc(e.id)}"><h3 class=mono>{esc(e.id)}</h3>{missing}</div>'
    state = esc(t("answer.yes" if e.ok else "answer.no"))
    rows = [
        (t("evidence.record"), f"#{e.seq} <span class=mono>{esc(e.hash)}</span>"),
        (t("evidence.method"), esc(f"{e.protocol} · {e.operation} · {e.address}")),
        (t("evidence.who"), esc(f"{e.probe} · {e.device} · {e.library}")),
        (
            t("evidence.when"),
            esc(f"{shown(e.started_at)} · {e.duration_s} s")
            + esc(f" · {t('evidence.device_time')} {shown(e.device_time)}"),
        ),
        (t("evidence.ok"), state + (f" · {esc(e.error)}" if e.error else "")),
        (t("evidence.sha"), f"<span class=mono>{esc(e.exchange_sha256)}</span>"),
        (t("evidence.raw"), f"<span class=mono>{_or_dash(e.raw_sha256)}</span> {_or_dash(e.raw_size)}"),
    ]
    cut = f'<p class="sub">{esc(t("evidence.truncated"))}</p>' if e.truncated else ""
    return (
        f'<div id="ex-{esc(e.id)}"><h3 class=mono>{esc(e.id)}</h3>{_kv(rows)}'
        f"<b>{esc(t('evidence.request'))}</b><pre>{esc(e.request)}</pre>"
        f"<b>{esc(t('evidence.response'))}</b><pre>{esc(e.response)}</pre>{cut}</div>"
    )


def _evidence(r: Report, evidence: Iterable[EvidenceView], t: Messages) -> Iterator[str]:
    run = r.run
    signer = run.signed_by
    seal = [
        (t("seal.tool"), esc(f"{run.tool} / {r.generated_by}")),
        (t("seal.config"), f"<span class=mono>{_or_dash(run.config_sha256)}</span>"),
        (t("seal.ledger"), esc(t("seal.ledger_value", records=run.ledger_records, exchanges=run.exchanges))),
        (t("seal.head"), f"<span class=mono>{esc(run.chain_head)}</span>"),
        (t("seal.signer"), f"<span class=mono>{esc(signer.fingerprint)}</span>" if signer else "—"),
        (
            t("seal.key"),
            f"<span class=mono>{esc(signer.algorithm)} {esc(signer.public_key)}</span>" if signer else "—",
        ),
    ]
    yield (
        f'<section id="a5" class="appendix"><h2>{esc(t("section.a5"))}</h2><p>{esc(t("seal.explain"))}</p>'
        f"{_kv(seal)}"
    )
    yield from (_exchange(t, e) for e in evidence)
    yield "</section>"


def render_html(r: Report) -> str:
    return "".join(html_parts(r, r.findings, r.evidence))


def html_parts(r: Report, findings: Iterable[FindingView], evidence: Iterable[EvidenceView]) -> Iterator[str]:
    """The page in pieces, in order: `r` for all but the findings and the ledger records, which come
    from `findings` and `evidence` as they are written (see build.ReportParts)."""
    t = messages(r.lang)
    lang = "zh-CN" if r.lang == "zh" else "en"
    title = f"{t('title')} · {r.overview.community.name}"
    yield (
        f'<!DOCTYPE html>\n<html lang="{lang}">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
    )
    yield (
        _header(r, t)
        + first_screen(r, t)
        + _nav(t)
        + _overview(r, t)
        + _summary(r, t)
        + _problems(r, t)
        + _conclusion(r, t)
        + _sign_off(r, t)
        + _label(r, t)
        + _indicators(r, t)
        + _waivers(r, t)
        + _charts(r, t)
    )
    yield from _findings(findings, t)
    yield f'<p class="print-only note">{esc(t("print.evidence_left_out"))}</p>'
    yield from _evidence(r, evidence, t)
    yield "\n</body>\n</html>\n"
