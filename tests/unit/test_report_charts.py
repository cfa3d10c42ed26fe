"""The report's inline SVG charts: drawn when the run has the data, from what it measured, and absent
(with a word saying so) when it has none. Both shapes of the fire linkage facts are read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from probes.finding import Finding
from zhian.report.build import build_report
from zhian.report.html import render_html
from zhian.report.messages import messages
from zhian.report.svg import heartbeat

from .fixtures.report.runs import Spec, default_specs, write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("charts") / "run")


def svgs(html: str) -> list[ET.Element]:
    """Each inline chart, parsed as XML (so each is well formed)."""
    return [ET.fromstring(s) for s in re.findall(r"<svg .*?</svg>", html, re.S)]


def test_retention_timeline_per_camera(run: Path) -> None:
    report = build_report(run, "en", None)
    bars = {b.device: b for b in report.charts.retention}
    gate = bars["cam-gate"]
    assert (gate.observed_days, gate.required_days, gate.status, gate.reason) == (
        12,
        90,
        "fail",
        "retention_short",
    )
    assert bars["cam-lobby"].configured_days == 60 and gate.as_of and gate.as_of.endswith("+08:00")
    chart = svgs(render_html(report))[0]
    texts = [t.text or "" for t in chart.iter("text")]
    assert chart.findtext("title") == "Recording timeline per camera (back from the search)"
    assert "30 days ago" in texts and "90 days ago" in texts and "cam-gate" in texts
    assert "fail · retention too short; 12 days held, 90 required" in texts


def test_the_timeline_marks_gaps_and_deleted_spans_with_their_dates() -> None:
    from zhian.report.model import RetentionBar, Span
    from zhian.report.svg_retention import LEFT, PLOT, retention

    bar = RetentionBar(
        device="cam-pump-01", probe="retention", status="fail", reason="data_deleted", observed_days=95,
        configured_days=100, required_days=90, as_of="2026-12-07T21:43:39+08:00",
        earliest="2026-09-03T21:43:35+08:00", gaps=[],
        deletions=[Span(start="2026-11-17T21:43:03+08:00", end="2026-11-18T09:43:03+08:00", hours=12)],
        finding=1,
    )  # fmt: skip
    for lang, words in (
        ("en", "fail · recorded video deleted; 95 days held, 90 required; deleted from 11-17 21:43, 12 h"),
        ("zh", "不符合 · 录像被删除；保存 95 天，要求 90 天；11-17 21:43 起 12 小时被删除"),
    ):
        drawn = ET.fromstring(retention([bar], messages(lang)))
        assert words in [t.text for t in drawn.iter("text")], lang
        deleted = [r for r in drawn.iter("rect") if r.get("fill") == "#000" and r.get("height") == "16"]
        assert len(deleted) == 1  # 20 days before the search, on a 100-day axis
        span = 100.0
        assert abs(float(deleted[0].get("x", 0)) - (LEFT + PLOT * (1 - 20 / span))) < 1.5
        window = [ln for ln in drawn.iter("line") if ln.get("stroke-width") == "2"]
        assert any(abs(float(ln.get("x1", 0)) - (LEFT + PLOT * (1 - 90 / span))) < 1 for ln in window)


def test_heartbeat_timeline_per_gateway_from_the_evidence(run: Path) -> None:
    (chart,) = build_report(run, "en", None).charts.heartbeat
    assert chart.gateway == "gw-01" and chart.window_exact
    gw, smoke = chart.rows
    assert (gw.device, len(gw.beats), gw.last_seen) == (
        "gw-01",
        4,
        "2026-11-25T20:01:16+08:00",
    )  # the site's zone
    assert (smoke.device, smoke.status, smoke.beats, smoke.last_seen) == ("smoke-01", "fail", [], None)
    drawn = ET.fromstring(heartbeat(chart, messages("en")) or "")
    assert (
        len([ln for ln in drawn.iter("line") if ln.get("stroke-width") == "2"]) == 4
    )  # one tick a heartbeat
    assert "no heartbeat · fail" in [t.text for t in drawn.iter("text")]


def test_without_the_artefact_the_window_is_placed_from_the_finding(tmp_path: Path) -> None:
    specs = [Spec(s.finding) for s in default_specs() if s.finding.probe in ("gateway_status", "heartbeat")]
    (chart,) = build_report(write_run(tmp_path / "run", specs), "en", None).charts.heartbeat
    assert not chart.window_exact and chart.window_start is not None
    assert all(r.beats == [] and r.first_live_at is None for r in chart.rows)
    assert heartbeat(chart, messages("en")) is not None


def test_linkage_timelines_read_one_timeline_or_one_per_zone(run: Path) -> None:
    charts = build_report(run, "en", None).charts.linkage
    assert [(c.subject, c.zone) for c in charts] == [("panel-1", "1"), ("panel-2", "1"), ("panel-2", "2")]
    first = charts[0]
    assert len(first.findings) == 2  # doors and alert share one test
    assert [(s.effect, s.status, s.delay_s) for s in first.steps] == [
        ("doors", "missing", None),
        ("alert", "on_time", 1.3),
    ]
    assert charts[2].steps[0].status == "late" and charts[2].steps[0].delay_s == 12.5
    html = render_html(build_report(run, "en", None))
    titles = [s.findtext("title") for s in svgs(html)]
    assert titles.count("fire_linkage: panel-2") == 2 and "fire_linkage: panel-1" in titles


def test_no_chart_without_data(tmp_path: Path) -> None:
    only = [
        Spec(Finding("transport_security", "cam-lobby", "pass", "tls_ok", "TLSv1.3", {"tls": True}, ("x",)))
    ]
    report = build_report(write_run(tmp_path / "run", only), "zh", None)
    assert report.charts.retention == [] and report.charts.heartbeat == [] and report.charts.linkage == []
    html = render_html(report)
    assert "<svg" not in html and html.count("本次检测无此项数据。") == 3
