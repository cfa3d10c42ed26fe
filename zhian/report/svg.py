"""The report's charts as hand-written inline SVG: no script, no fonts or images to fetch, prints as drawn.

Every element is made by `_el`, which escapes its text and attributes, so nothing from a device can
become markup. Colours carry meaning only beside a word or a number: a black-and-white print loses
nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from zhian.report.escape import esc
from zhian.report.messages import Messages
from zhian.report.model import HeartbeatChart, HeartbeatRow, LinkageChart, LinkageStep
from zhian.report.textwidth import width

WIDTH = 760
ROW = 22
COLOURS = {
    "pass": "#2e7d32",
    "on_time": "#2e7d32",
    "fail": "#c62828",
    "missing": "#c62828",
    "late": "#ef6c00",
    "partial": "#ef6c00",
}
GREY = "#8a8a8a"
CELL = 6.4  # px per display cell of text at font-size 11 (a CJK character is two cells)
MIN_PLOT = 260


def _room(labels: Sequence[str], left: int, least: int = 90) -> int:
    """The right margin that holds the widest right-hand label (the plot keeps MIN_PLOT)."""
    need = max([least, *(int(width(text) * CELL) + 14 for text in labels)])
    return min(need, WIDTH - left - MIN_PLOT)


def _el(tag: str, text: str | None = None, **attrs: object) -> str:
    """One element; attribute names take '-' for '_', numbers are rounded to 0.1."""
    parts = []
    for name, value in attrs.items():
        shown = f"{value:.1f}".removesuffix(".0") if isinstance(value, float) else str(value)
        parts.append(f' {name.rstrip("_").replace("_", "-")}="{esc(shown)}"')
    head = f"<{tag}{''.join(parts)}"
    return f"{head}/>" if text is None else f"{head}>{esc(text)}</{tag}>"


def _colour(status: str) -> str:
    return COLOURS.get(status, GREY)


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".rstrip("0").rstrip(".")


def _step(span: float) -> float:
    """A round axis step giving about 5 to 10 ticks."""
    raw = span / 6 if span > 0 else 1
    base = 10 ** math.floor(math.log10(raw))
    return float(next(m * base for m in (1, 2, 5, 10) if m * base >= raw))


def _frame(height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'font-size="11" font-family="sans-serif">{_el("title", title)}' + "".join(body) + "</svg>"
    )


def _axis(x0: float, width: float, y: float, span: float, unit: str) -> list[str]:
    out = [_el("line", x1=x0, y1=y, x2=x0 + width, y2=y, stroke="#444")]
    step = _step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = x0 + width * tick / span
        out.append(_el("line", x1=x, y1=y, x2=x, y2=y + 4, stroke="#444"))
        out.append(_el("text", f"{_fmt(tick)}{unit}", x=x, y=y + 15, text_anchor="middle"))
        tick += step
    return out


def _tick(x: float, y: float, height: float, colour: str = "#000", width: float = 2.5) -> str:
    return _el("line", x1=x, y1=y, x2=x, y2=y + height, stroke=colour, stroke_width=width)


def _at(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def heartbeat(chart: HeartbeatChart, t: Messages) -> str | None:
    """One row per device over the observation window: each heartbeat when all were kept, else the span
    from the first to the last live one; a ring at the last one seen. None without a window."""
    start, end = _at(chart.window_start), _at(chart.window_end)
    if start is None or end is None or end <= start:
        return None
    span = (end - start).total_seconds()

    def row_label(r: HeartbeatRow) -> str:
        if r.heartbeat_count:
            gap = "—" if r.max_gap_s is None else _fmt(r.max_gap_s)
            label = t("chart.heartbeat.row", count=r.heartbeat_count, gap=gap)
        else:
            label = t("chart.heartbeat.none")
        return f"{label} · {t('status.' + r.status)}"

    labels = [row_label(r) for r in chart.rows]
    left, top = 170, 14
    right = _room(labels, left)
    plot = WIDTH - left - right
    height = top + ROW * len(chart.rows) + 30

    def x(at: datetime) -> float:
        return left + plot * min(max((at - start).total_seconds(), 0.0), span) / span

    body: list[str] = []
    for i, r in enumerate(chart.rows):
        y = top + i * ROW
        colour = _colour(r.status)
        body.append(_el("text", r.device, x=left - 6, y=y + 11, text_anchor="end", fill=colour))
        body.append(_el("rect", x=left, y=y + 3, width=plot, height=10, fill="#eee"))
        beats = [b for b in (_at(s) for s in r.beats) if b is not None]
        first, last = _at(r.first_live_at), _at(r.last_live_at)
        if beats:
            body += [_tick(x(b), y + 1, 14, colour, 2.0) for b in beats]
        elif first is not None and last is not None:
            body.append(
                _el("line", x1=x(first), y1=y + 8, x2=x(last), y2=y + 8, stroke=colour, stroke_width=4)
            )
        seen = _at(r.last_seen)
        if seen is not None:
            body.append(
                _el("circle", cx=x(seen), cy=y + 8, r=4, fill="#fff", stroke="#000", stroke_width=1.5)
            )
        body.append(_el("text", labels[i], x=left + plot + 8, y=y + 11))
    body += _axis(left, plot, top + ROW * len(chart.rows) + 2, span, " s")
    return _frame(height, t("chart.heartbeat.title", gateway=chart.gateway), body)


def _word(t: Messages, prefix: str, code: str) -> str:
    return t(prefix + code) if t.has(prefix + code) else code


def linkage(chart: LinkageChart, t: Messages) -> str:
    """Seconds from the trigger: each effect's bar ends when zhian saw it; the black tick is its
    deadline; a missing effect is a dashed outline over the whole time watched."""

    def step_label(s: LinkageStep) -> str:
        delay = "—" if s.delay_s is None else f"{_fmt(s.delay_s, 2)} s"
        deadline = "—" if s.deadline_s is None else f"{_fmt(s.deadline_s)} s"
        return f"{delay} / {deadline} · {_word(t, 'watch.', s.status)}"

    labels = [step_label(s) for s in chart.steps]
    left, top = 230, 22
    right = _room(labels, left)
    plot = WIDTH - left - right
    values = [v for s in chart.steps for v in (s.delay_s, s.deadline_s) if v is not None]
    span = max([1.0, chart.observed_for_s or 0.0, *values]) * 1.1
    bottom = top + ROW * len(chart.steps)

    def x(seconds: float) -> float:
        return left + plot * min(max(seconds, 0.0), span) / span

    body = [
        _tick(left, top - 10, bottom - top + 10, width=2),
        _el("text", t("chart.linkage.trigger"), x=left + 4, y=top - 10),
    ]
    for i, s in enumerate(chart.steps):
        y = top + i * ROW
        colour = _colour(s.status)
        body.append(
            _el(
                "text",
                f"{_word(t, 'effect.', s.effect)} · {s.target}",
                x=left - 6,
                y=y + 11,
                text_anchor="end",
            )
        )
        if s.delay_s is not None:
            body.append(_el("rect", x=left, y=y + 3, width=x(s.delay_s) - left, height=10, fill=colour))
        elif s.status == "missing":
            watched = x(chart.observed_for_s or s.deadline_s or 0.0) - left
            dashed = {"fill": "none", "stroke": colour, "stroke_dasharray": "3 2"}
            body.append(_el("rect", x=left, y=y + 3, width=watched, height=10, **dashed))
        if s.deadline_s is not None:
            body.append(_tick(x(s.deadline_s), y, 16))
        body.append(_el("text", labels[i], x=left + plot + 8, y=y + 11))
    body += _axis(left, plot, bottom + 2, span, " s")
    return _frame(bottom + 30, t("chart.linkage.title", test=chart.test, subject=chart.subject), body)
