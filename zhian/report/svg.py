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
from zhian.report.model import HeartbeatChart, LinkageChart, RetentionBar

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


def _diamond(x: float, y: float, half: float) -> str:
    return _el("path", d=f"M{x:.1f} {y} l5 {half} l-5 {half} l-5 -{half} z", fill="#fff", stroke="#000")


def retention(bars: Sequence[RetentionBar], t: Messages) -> str:
    """Observed days per camera (bar), configured days (hollow diamond), required days (black tick),
    against lines at 30 and 90 days."""
    left, right, top = 160, 120, 34
    plot = WIDTH - left - right
    values = [v for b in bars for v in (b.observed_days, b.configured_days, b.required_days) if v is not None]
    span = math.ceil(max([100.0, *values]) * 1.05 / 10) * 10
    bottom = top + ROW * len(bars)
    height = bottom + 58

    def x(days: float) -> float:
        return left + plot * min(days, span) / span

    body: list[str] = []
    for line in (30, 90):
        body.append(
            _el("line", x1=x(line), y1=top - 8, x2=x(line), y2=bottom, stroke="#555", stroke_dasharray="4 3")
        )
        body.append(_el("text", f"{line} {t('unit.days')}", x=x(line), y=top - 12, text_anchor="middle"))
    for i, b in enumerate(bars):
        y = top + i * ROW
        body.append(_el("text", b.device, x=left - 6, y=y + 11, text_anchor="end"))
        if b.observed_days is not None:
            width = x(b.observed_days) - left
            body.append(_el("rect", x=left, y=y + 2, width=width, height=12, fill=_colour(b.status)))
        if b.configured_days is not None:
            body.append(_diamond(x(b.configured_days), y + 1, 7))
        if b.required_days is not None:
            body.append(_tick(x(b.required_days), y, 16))
        observed = "—" if b.observed_days is None else _fmt(b.observed_days)
        required = "—" if b.required_days is None else _fmt(b.required_days)
        label = f"{observed} / {required} {t('unit.days')} · {t('status.' + b.status)}"
        body.append(_el("text", label, x=left + plot + 8, y=y + 11))
    body += _axis(left, plot, bottom + 4, span, "")
    legend = height - 10
    body += [
        _el("rect", x=left, y=legend - 9, width=14, height=9, fill=COLOURS["pass"]),
        _el("text", t("chart.retention.observed"), x=left + 18, y=legend),
        _diamond(left + 200, legend - 10, 6),
        _el("text", t("chart.retention.configured"), x=left + 210, y=legend),
        _tick(left + 380, legend - 10, 12),
        _el("text", t("chart.retention.required"), x=left + 388, y=legend),
    ]
    return _frame(height, t("chart.retention.title"), body)


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
    left, right, top = 170, 190, 14
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
        if r.heartbeat_count:
            gap = "—" if r.max_gap_s is None else _fmt(r.max_gap_s)
            label = t("chart.heartbeat.row", count=r.heartbeat_count, gap=gap)
        else:
            label = t("chart.heartbeat.none")
        body.append(_el("text", f"{label} · {t('status.' + r.status)}", x=left + plot + 8, y=y + 11))
    body += _axis(left, plot, top + ROW * len(chart.rows) + 2, span, " s")
    return _frame(height, t("chart.heartbeat.title", gateway=chart.gateway), body)


def _word(t: Messages, prefix: str, code: str) -> str:
    return t(prefix + code) if t.has(prefix + code) else code


def linkage(chart: LinkageChart, t: Messages) -> str:
    """Seconds from the trigger: each effect's bar ends when zhian saw it; the black tick is its
    deadline; a missing effect is a dashed outline over the whole time watched."""
    left, right, top = 230, 150, 22
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
        delay = "—" if s.delay_s is None else f"{_fmt(s.delay_s, 2)} s"
        deadline = "—" if s.deadline_s is None else f"{_fmt(s.deadline_s)} s"
        label = f"{delay} / {deadline} · {_word(t, 'watch.', s.status)}"
        body.append(_el("text", label, x=left + plot + 8, y=y + 11))
    body += _axis(left, plot, bottom + 2, span, " s")
    return _frame(bottom + 30, t("chart.linkage.title", test=chart.test, subject=chart.subject), body)
