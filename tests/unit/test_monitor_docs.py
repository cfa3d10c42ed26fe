"""The monitor's metric names are the issue's, and docs/ (alert rules, Grafana dashboard) use only them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from zhian.monitor.heartbeats import HeartbeatTracker
from zhian.monitor.metrics import DeviceLines, LiveCollector, Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
NAMES = {
    "zhian_device_up",
    "zhian_heartbeat_age_seconds",
    "zhian_retention_days",
    "zhian_retention_required_days",
    "zhian_indicator_status",
    "zhian_level_score",
    "zhian_check_duration_seconds",
    "zhian_check_errors_total",
    "zhian_ledger_records_total",
    # beyond the list: the event subscriptions (zhian/monitor/events.py)
    "zhian_event_subscription_up",
    "zhian_event_subscription_lost_total",
    # and how far silence judgements wait on reading (zhian/monitor/heartbeats.py)
    "zhian_subscription_behind_seconds",
}


def exposed() -> set[str]:
    metrics = Metrics()
    tracker = HeartbeatTracker((), lambda *_: None)
    metrics.registry.register(LiveCollector(tracker, lambda: 0))
    metrics.devices = DeviceLines((), tracker, dict)
    text = metrics.exposition().decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def used(text: str) -> set[str]:
    return {re.sub(r"_(bucket|sum|count)$", "", name) for name in re.findall(r"\bzhian_[a-z_]+", text)}


def test_the_monitor_exposes_exactly_the_named_metrics() -> None:
    assert exposed() == NAMES


@pytest.mark.parametrize("doc", ["prometheus-rules.yml", "grafana-dashboard.json"])
def test_docs_use_only_the_named_metrics(doc: str) -> None:
    names = used((DOCS / doc).read_text(encoding="utf-8"))
    assert names and names <= NAMES, names - NAMES


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed"
)
def test_promtool_accepts_the_alert_rules() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", str(DOCS / "prometheus-rules.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
