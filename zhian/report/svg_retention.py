"""Retention as a timeline per camera: what video is held, back from the moment it was searched.

Each camera gets a bar from its oldest video to the search (colour and word give the result), its
gaps (white, dashed outline) and deleted spans (black) where they fall, the required window drawn
under it, and a line of text that says why, with the dates. Text is wrapped by its estimated width
so that no label is cut off in Chinese or English.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from zhian.report.messages import Messages
from zhian.report.model import RetentionBar, Span
from zhian.report.svg import CELL, COLOURS, WIDTH, _el, _fmt, _frame, _step
from zhian.report.textwidth import width, wrap

LEFT, RIGHT, TOP = 150, 16, 40
PLOT = WIDTH - LEFT - RIGHT
LIGHT = {"pass": "#c8e6c9", "fail": "#ffcdd2", "partial": "#ffe0b2"}
MIN_SPAN_PX = 3.0


def _at(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _days_ago(as_of: datetime | None, text: str | None) -> float | None:
    at = _at(text)
    if as_of is None or at is None:
        return None
    return max(0.0, (as_of - at).total_seconds() / 86400)


def _when(text: str) -> str:
    """A localised time as the chart prints it: month-day hour:minute."""
    return text[5:16].replace("T", " ")


def _span_words(t: Messages, key: str, spans: Sequence[Span]) -> list[str]:
    return [t(key, start=_when(s.start), hours=_fmt(s.hours) if s.hours is not None else "—") for s in spans]


def explain(t: Messages, b: RetentionBar) -> str:
    observed = "—" if b.observed_days is None else _fmt(b.observed_days)
    required = "—" if b.required_days is None else _fmt(b.required_days)
    parts = [
        f"{t('status.' + b.status)} · {t.reason(b.reason)}",
        t("chart.retention.held", observed=observed, required=required),
        *_span_words(t, "chart.retention.gap_at", b.gaps),
        *_span_words(t, "chart.retention.deleted_at", b.deletions),
    ]
    return t("chart.retention.sep").join(parts)


def _legend(items: list[tuple[str, str]], y: float) -> tuple[list[str], float]:
    """Swatches and words laid left to right by their estimated width, wrapping to a new line."""
    out: list[str] = []
    x = float(LEFT)
    for swatch, text in items:
        need = 18 + width(text) * CELL + 18
        if x + need > WIDTH - RIGHT and x > LEFT:
            x, y = float(LEFT), y + 18
        out.append(swatch.format(x=x, y=y - 9))
        out.append(_el("text", text, x=x + 18, y=y))
        x += need
    return out, y


def retention(bars: Sequence[RetentionBar], t: Messages) -> str:
    values = [v for b in bars for v in (b.observed_days, b.required_days) if v is not None]
    span = float(math.ceil(max([30.0, *values]) * 1.05 / 10) * 10)

    def x(days_ago: float) -> float:
        return LEFT + PLOT * (1 - min(days_ago, span) / span)

    body: list[str] = []
    lines_per_row = [wrap(explain(t, b), int(PLOT / CELL)) for b in bars]
    y = float(TOP)
    for b, lines in zip(bars, lines_per_row, strict=True):
        as_of = _at(b.as_of)
        colour = COLOURS.get(b.status, "#8a8a8a")
        body.append(_el("text", b.device, x=LEFT - 6, y=y + 10, text_anchor="end"))
        if b.observed_days is not None:
            start = x(b.observed_days)
            body.append(
                _el("rect", x=start, y=y, width=x(0) - start, height=12, fill=LIGHT.get(b.status, "#e0e0e0"),
                    stroke=colour)
            )  # fmt: skip
        for spans, fill, dash in ((b.gaps, "#fff", "3 2"), (b.deletions, "#000", "")):
            for s in spans:
                begin, end = _days_ago(as_of, s.start), _days_ago(as_of, s.end) or 0.0
                if begin is None:
                    continue
                x0, x1 = x(begin), x(end)
                w = max(x1 - x0, MIN_SPAN_PX)
                extra = {"stroke_dasharray": dash} if dash else {}
                body.append(
                    _el("rect", x=x0, y=y - 2, width=w, height=16, fill=fill, stroke="#c62828", **extra)
                )
        if b.required_days is not None:
            body.append(_el("line", x1=x(b.required_days), y1=y + 16, x2=x(0), y2=y + 16, stroke="#000",
                            stroke_width=2))  # fmt: skip
            body.append(_el("line", x1=x(b.required_days), y1=y + 12, x2=x(b.required_days), y2=y + 20,
                            stroke="#000", stroke_width=2))  # fmt: skip
        for k, line in enumerate(lines):
            body.append(_el("text", line, x=LEFT, y=y + 32 + 14 * k, fill="#222"))
        y += 30 + 14 * len(lines) + 8
    grid: list[str] = []  # drawn first, under the bars and words
    for days in (30, 90):
        if days <= span:
            grid.append(_el("line", x1=x(days), y1=TOP - 10, x2=x(days), y2=y - 8, stroke="#999",
                            stroke_dasharray="4 3"))  # fmt: skip
            grid.append(_el("text", t("chart.retention.ago", days=days), x=x(days), y=TOP - 14,
                            text_anchor="middle"))  # fmt: skip
    body = grid + body
    body.append(_el("line", x1=LEFT, y1=y, x2=LEFT + PLOT, y2=y, stroke="#444"))
    step = _step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        label = t("chart.retention.now") if tick == 0 else _fmt(tick)
        body.append(_el("line", x1=x(tick), y1=y, x2=x(tick), y2=y + 4, stroke="#444"))
        anchor = "end" if tick == 0 else "middle"
        body.append(_el("text", label, x=x(tick), y=y + 15, text_anchor=anchor))
        tick += step
    body.append(_el("text", t("chart.retention.axis"), x=LEFT, y=y + 30))
    legend, bottom = _legend(
        [
            (
                '<rect x="{x:.1f}" y="{y:.1f}" width="14" height="9" fill="#c8e6c9" stroke="#2e7d32"/>',
                t("chart.retention.observed"),
            ),
            (
                '<rect x="{x:.1f}" y="{y:.1f}" width="14" height="9" fill="#fff" stroke="#c62828" '
                'stroke-dasharray="3 2"/>',
                t("chart.retention.gap"),
            ),
            (
                '<rect x="{x:.1f}" y="{y:.1f}" width="14" height="9" fill="#000"/>',
                t("chart.retention.deleted"),
            ),
            (
                '<rect x="{x:.1f}" y="{y:.1f}" width="14" height="3" fill="#000"/>',
                t("chart.retention.required"),
            ),
        ],
        y + 50,
    )
    body += legend
    return _frame(int(bottom + 12), t("chart.retention.title"), body)
