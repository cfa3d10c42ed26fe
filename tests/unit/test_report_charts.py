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


def test_retention_bars_against_the_30_and_90_day_lines(run: Path) -> None:
    report = build_report(run, "en", None)
    bars = {b.device: b for b in report.charts.retention}
    assert (bars["cam-gate"].observed_days, bars["cam-gate"].required_days, bars["cam-gate"].status) == (
        12,
        90,
        "fail",
    )
    assert bars["cam-lobby"].configured_days == 60
    chart = svgs(render_html(report))[0]
    texts = [t.text or "" for t in chart.iter("text")]
    assert chart.findtext("title") == "Days of video kept per camera (30 / 90 days required)"
    assert "30 d" in texts and "90 d" in texts and "cam-gate" in texts and "12 / 90 d · fail" in texts


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
