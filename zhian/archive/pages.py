"""The portfolio's HTML pages: server-rendered, no script, one stylesheet, every value escaped."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from html import escape

from zhian.archive.portfolio import CommunityDetail, CommunityRow, Label

STYLE = """
body { font: 15px/1.45 system-ui, "Noto Sans CJK SC", sans-serif; margin: 2rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1d2330; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #d8dde6; vertical-align: top; }
th { background: #f2f4f8; }
.bad { color: #a4161a; font-weight: 600; }
.note { color: #5b6475; }
a { color: #1a56a6; }
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="zh"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<link rel="stylesheet" href="/style.css"></head>\n'
        f"<body>\n<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], cls: str) -> str:
    """`rows` hold HTML already escaped by the caller."""
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>\n" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>\n{trs}</tbody></table>'


def _label(lb: Label | None) -> list[str]:
    if lb is None:
        return ["—", '<span class="note">no graded run</span>', "—"]
    by = "" if lb.graded_by == "evaluator" else ' <span class="note">(machine proposal)</span>'
    grade = f"{escape(lb.grade)}{by} <span class='note'>awarded {lb.awarded_on}</span>"
    if lb.expired:
        return [grade, f'<span class="bad">expired {lb.valid_until}</span>', "—"]
    recheck = str(lb.next_recheck) if lb.next_recheck else "renewal due"
    if lb.recheck_overdue:
        recheck += f' <span class="bad">overdue since {lb.recheck_overdue}</span>'
    return [grade, str(lb.valid_until), recheck]


def portfolio_page(rows: Sequence[CommunityRow], today: date) -> str:
    body = _table(
        (
            "community",
            "operator",
            "runs",
            "latest",
            "grade",
            "label valid until",
            "next re-check",
            "degraded",
        ),
        (
            [
                f'<a href="/community/{r.id}">{escape(r.name)}</a>',
                escape(r.operator),
                str(r.runs),
                f"{escape(r.latest_kind)} {r.latest_sealed_at:%Y-%m-%d}"
                f" <span class='note'>{escape(r.latest_grade or 'no grade')}</span>",
                *_label(r.label),
                f'<span class="bad">{r.degraded} indicators</span>' if r.degraded else "none",
            ]
            for r in rows
        ),
        "portfolio",
    )
    note = f'<p class="note">{len(rows)} communities, as of {today}. Read-only.</p>'
    return _page("zhian evidence archive — portfolio", note + body)


def community_page(detail: CommunityDetail, today: date) -> str:
    c = detail.community
    grade, until, recheck = _label(c.label)
    parts = [
        '<p><a href="/">portfolio</a></p>',
        f"<p>{escape(c.operator)} · label: {grade} · valid until {until} · next re-check {recheck}</p>",
        "<h2>Runs</h2>",
        _table(
            ("#", "run", "kind", "sealed", "level applied", "grade", "records", "evidence pack"),
            (
                [
                    str(r.id),
                    escape(r.run_id) + (' <span class="bad">interrupted</span>' if r.interrupted else ""),
                    escape(r.kind),
                    f"{r.sealed_at:%Y-%m-%d %H:%M}Z",
                    escape(r.level_applied or "—"),
                    escape(f"{r.grade} ({r.graded_by})" if r.grade else "—"),
                    str(r.records),
                    f'<a class="pack" href="/run/{r.id}/pack.zip">download</a>',
                ]
                for r in detail.runs
            ),
            "runs",
        ),
        (
            f'<p class="note">and {detail.older_segments} older monitor segments, each by its number with'
            " <code>zhian archive verify</code> or <code>export</code></p>"
            if detail.older_segments
            else ""
        ),
        "<h2>Grade history</h2>",
        _table(
            ("awarded", "grade", "by", "run"),
            (
                [str(r.awarded_on), escape(r.grade or ""), escape(r.graded_by or ""), str(r.id)]
                for r in detail.grade_history
            ),
            "grades",
        ),
        f"<h2>Open problems (latest {escape(c.latest_kind)} #{c.latest})</h2>",
        _table(
            ("indicator", "level", "status", "devices", "reasons"),
            (
                [
                    escape(p.indicator),
                    escape(p.level),
                    f'<span class="bad">{escape(p.status)}</span>',
                    escape(", ".join(p.devices)),
                    escape(", ".join(p.reasons)),
                ]
                for p in detail.problems
            ),
            "problems",
        ),
        f"<h2>Degraded since the graded run (by the latest {escape(c.latest_kind)} #{c.latest})</h2>",
        _table(
            ("indicator", "graded run", "now", "since"),
            (
                [
                    escape(d.indicator),
                    escape(d.before),
                    f'<span class="bad">{escape(d.now)}</span>',
                    f"{d.since:%Y-%m-%d %H:%M}Z" if d.since else "—",
                ]
                for d in detail.degraded
            ),
            "degraded",
        ),
        f'<p class="note">As of {today}. Read-only.</p>',
    ]
    return _page(c.name, "\n".join(parts))
