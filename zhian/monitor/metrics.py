"""The monitor's Prometheus metrics (names fixed: dashboards and docs/prometheus-rules.yml rely on them)
and its HTTP endpoint, `/metrics` and `/healthz`.

Values that change with every heartbeat (a device's up and heartbeat age) are read from the live
state when Prometheus scrapes, so a device's `zhian_device_up` turns 0 the moment the tracker
judges it down, with no copy to fall behind; the rest are set as checks end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from probes.targets import Target
from zhian.monitor.heartbeats import HeartbeatTracker

go_float: Callable[[float], str] = floatToGoString  # as prometheus_client writes a value

STATUSES = ("pass", "fail", "partial", "not_assessed", "error")
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


def _label(value: str) -> str:
    """A label value escaped as the exposition format wants it (as prometheus_client does)."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class DeviceLines:
    """zhian_device_up and zhian_heartbeat_age_seconds, read from the live state at scrape and written
    as exposition text directly: a sample per device and family, each device's label set escaped
    once. prometheus_client's generic path (a Sample per value, labels escaped on every scrape) cost
    seconds a scrape at 25,000 devices."""

    UP = "zhian_device_up"
    AGE = "zhian_heartbeat_age_seconds"

    def __init__(
        self, targets: Iterable[Target], tracker: HeartbeatTracker, other_up: Callable[[], Mapping[str, bool]]
    ) -> None:
        self.tracker, self.other_up = tracker, other_up
        self._up = {
            t.id: f'{self.UP}{{device="{_label(t.id)}",kind="{_label(t.kind)}",area="{_label(t.area)}"}} '
            for t in targets
        }
        self._age = {t.id: f'{self.AGE}{{device="{_label(t.id)}"}} ' for t in targets}

    def text(self) -> str:
        up = [f"# HELP {self.UP} 1 while the device is up, 0 when down\n# TYPE {self.UP} gauge\n"]
        age = [f"# HELP {self.AGE} seconds since the device's last heartbeat\n# TYPE {self.AGE} gauge\n"]
        now = time.monotonic()
        for device in self.tracker.devices.values():
            is_up, beat = device.up, device.last_beat  # one read each: the live side writes them
            if is_up is not None:
                up.append(self._up[device.target.id] + ("1.0\n" if is_up else "0.0\n"))
            if beat is not None:
                age.append(self._age[device.target.id] + go_float(now - beat) + "\n")
        for device_id, is_up in self.other_up().items():
            up.append(self._up[device_id] + ("1.0\n" if is_up else "0.0\n"))
        return "".join(up) + "".join(age)


class LiveCollector(Collector):
    """zhian_subscription_behind_seconds and zhian_ledger_records_total, read at scrape."""

    def __init__(self, tracker: HeartbeatTracker, records: Callable[[], int]) -> None:
        self.tracker, self.records = tracker, records

    def collect(self) -> Iterator[Metric]:
        behind = GaugeMetricFamily(
            "zhian_subscription_behind_seconds",
            "seconds since the broker's subscription last had nothing unread (silence is judged up to then)",
            labels=("broker",),
        )
        for broker, seconds in sorted(self.tracker.behind_s(time.monotonic()).items()):
            behind.add_metric([broker], seconds)
        yield behind
        total = CounterMetricFamily("zhian_ledger_records", "records in the monitor's evidence chain")
        total.add_metric([], float(self.records()))
        yield total


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.devices: DeviceLines | None = None
        r = self.registry
        self.retention = Gauge(
            "zhian_retention_days", "days of video the device keeps", ("device",), registry=r
        )
        self.retention_required = Gauge(
            "zhian_retention_required_days", "days of video the standard requires", ("device",), registry=r
        )
        self.indicator = Gauge(
            "zhian_indicator_status",
            "1 for the indicator's current status, else 0",
            ("indicator", "level", "status"),
            registry=r,
        )
        self.level_score = Gauge(
            "zhian_level_score", "the level's auxiliary score now", ("level",), registry=r
        )
        self.duration = Histogram(
            "zhian_check_duration_seconds",
            "scheduled check durations",
            ("probe",),
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "zhian_check_errors_total",
            "scheduled checks that could not judge",
            ("probe", "reason"),
            registry=r,
        )

        self.event_up = Gauge(
            "zhian_event_subscription_up",
            "1 while the device's ONVIF event subscription is alive, 0 while it is being re-created",
            ("device",),
            registry=r,
        )
        self.event_lost = Counter(
            "zhian_event_subscription_lost_total",
            "ONVIF event subscriptions found dead (lost, unreachable, past_termination, silent, refused)",
            ("device", "reason"),
            registry=r,
        )

    def exposition(self) -> bytes:
        """The whole /metrics body."""
        text = generate_latest(self.registry)
        return text + self.devices.text().encode() if self.devices is not None else text

    def indicator_status(self, indicator: str, level: str, status: str) -> None:
        for each in STATUSES:
            self.indicator.labels(indicator, level, each).set(1.0 if each == status else 0.0)

    def retention_facts(self, device: str, facts: Mapping[str, Any]) -> None:
        observed, required = facts.get("observed_days"), facts.get("required_days")
        if isinstance(observed, int | float):
            self.retention.labels(device).set(observed)
        if isinstance(required, int | float):
            self.retention_required.labels(device).set(required)


def web_app(metrics: Metrics, health: Callable[[], tuple[bool, dict[str, Any]]]) -> web.Application:
    async def scrape(_: web.Request) -> web.Response:
        # in a thread: the live side's loop reads the brokers meanwhile (a scrape of 50,000 devices
        # is a fraction of a second of CPU, all of it once a reading delay)
        body = await asyncio.to_thread(metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        ok, doc = health()
        return web.json_response(doc | {"ok": ok}, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    return app
