"""Retention days per camera over a monitoring period: one line per camera, checks as points.

The x axis is the period, the y axis the days of video each check found; each camera's required
days is a dashed line. A camera that fell below its requirement at any check is drawn in red and
named at its last point (the first LABELS of them; the table under the chart has every camera), the
others in light grey, so that a site of a thousand cameras still shows the few that matter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from zhian.report.messages import Messages
from zhian.report.svg import WIDTH, _el, _fmt, _frame, _step

LEFT, RIGHT, TOP, HEIGHT = 56, 150, 24, 240
PLOT = WIDTH - LEFT - RIGHT
LABELS = 12
OK, LOW = "#9e9e9e", "#c62828"


def _days(row: Mapping[str, Any]) -> float | None:
    value = row.get("observed_days")
    return float(value) if isinstance(value, int | float) else None


def _required(rows: Sequence[Mapping[str, Any]]) -> float | None:
    values = [float(v) for r in rows if isinstance(v := r.get("required_days"), int | float)]
    return values[-1] if values else None


def below(rows: Sequence[Mapping[str, Any]]) -> bool:
    need = _required(rows)
    return need is not None and any((d := _days(r)) is not None and d < need for r in rows)


def retention_over_period(
    series: Mapping[str, Sequence[Mapping[str, Any]]], start: datetime, end: datetime, t: Messages
) -> str | None:
    """The chart, or None when no check found any days in the period."""
    points = {
        device: [(datetime.fromisoformat(str(r["at"])), d) for r in rows if (d := _days(r)) is not None]
        for device, rows in series.items()
    }
    points = {device: sorted(p) for device, p in points.items() if p}
    if not points:
        return None
    required = {device: _required(series[device]) for device in points}
    values = [d for p in points.values() for _, d in p] + [v for v in required.values() if v is not None]
    top = float(math.ceil(max([30.0, *values]) * 1.1 / 10) * 10)
    seconds = max((end - start).total_seconds(), 1.0)

    def x(at: datetime) -> float:
        return LEFT + PLOT * min(max((at - start).total_seconds() / seconds, 0.0), 1.0)

    def y(days: float) -> float:
        return TOP + HEIGHT * (1 - min(max(days, 0.0), top) / top)

    body: list[str] = []
    tick = 0.0
    while tick <= top + 1e-9:  # the days axis, with a light grid
        body.append(_el("line", x1=LEFT, y1=y(tick), x2=LEFT + PLOT, y2=y(tick), stroke="#e0e0e0"))
        body.append(_el("text", _fmt(tick), x=LEFT - 6, y=y(tick) + 4, text_anchor="end"))
        tick += _step(top)
    body.append(_el("line", x1=LEFT, y1=TOP + HEIGHT, x2=LEFT + PLOT, y2=TOP + HEIGHT, stroke="#444"))
    days_long = seconds / 86400
    step = max(1.0, _step(days_long))
    day = 0.0
    while day <= days_long + 1e-9:  # the time axis, in days from the period's start
        at_x = LEFT + PLOT * (day / days_long if days_long else 0.0)
        body.append(_el("line", x1=at_x, y1=TOP + HEIGHT, x2=at_x, y2=TOP + HEIGHT + 4, stroke="#444"))
        label = (start.timestamp() + day * 86400) if day else start.timestamp()
        body.append(
            _el("text", datetime.fromtimestamp(label, start.tzinfo).strftime("%m-%d"), x=at_x,
                y=TOP + HEIGHT + 16, text_anchor="middle")
        )  # fmt: skip
        day += step
    for need in sorted({v for v in required.values() if v is not None}):
        body.append(_el("line", x1=LEFT, y1=y(need), x2=LEFT + PLOT, y2=y(need), stroke="#000",
                        stroke_dasharray="6 4", stroke_width=1.5))  # fmt: skip
        words = t("period.chart.required", days=_fmt(need))
        body.append(_el("text", words, x=LEFT + PLOT + 4, y=y(need) + 4))
    low = [device for device in sorted(points) if below(series[device])]
    for device in [d for d in sorted(points) if d not in low] + low:  # the red ones on top
        colour = LOW if device in low else OK
        line = points[device]
        if len(line) > 1:
            path = " ".join(f"{x(at):.1f},{y(d):.1f}" for at, d in line)
            body.append(_el("polyline", points=path, fill="none", stroke=colour, stroke_width=1.5))
        for at, d in line:
            body.append(_el("circle", cx=x(at), cy=y(d), r=2.2, fill=colour))
    used: list[float] = []
    for device in low[:LABELS]:  # named at their last check, nudged apart
        at, d = points[device][-1]
        label_y = y(d) + 4
        while any(abs(label_y - u) < 12 for u in used):
            label_y += 12
        used.append(label_y)
        body.append(_el("text", device, x=LEFT + PLOT + 4, y=label_y, fill=LOW))
    bottom = TOP + HEIGHT + 34
    body.append(_el("text", t("period.chart.axis"), x=LEFT, y=bottom))
    more = len(low) - LABELS
    if more > 0:
        body.append(_el("text", t("period.chart.more", n=more), x=LEFT, y=bottom + 16))
        bottom += 16
    return _frame(int(bottom + 10), t("period.chart.title"), body)
