"""`zhian monitor`: the site watched for as long as the service runs, every device, passive only.

The scheduled checks are the probes `zhian run` plans for every indicator on every device (the
monitoring sample), run by the same engine (plan_jobs, prepared, execute, make_context) under the
same limits, each probe once at start and then every `monitor.schedule` interval with jitter; each
round gets a fresh fetch cache (ProbeContext.shared), so a round never reads the last one's
answers. MQTT liveness is not scheduled: one subscription per broker stays open (reconnecting with
backoff; a lost subscription is recorded as a gap) and feeds the heartbeat tracker. The other
observers: an ONVIF event subscription per camera and door (events.py), the platform's alert for
each outage (alerts.py), and the fire panels read for real alarms whose linkage is timed (linkage.py).

Evidence goes to the segmented ledger (zhian.evidence.segments): every exchange, every change of a
(probe, device) status, every change of an indicator, a still-holds record per indicator a day,
broker gaps, and the service's start and stop. SIGTERM or SIGINT stops cleanly: the open segment is
sealed. A kill leaves it open; the next start seals it as recovered and resumes the board from it.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mapping.catalog import load_catalog
from mapping.rules import load_rules
from probes.base import ProbeContext
from probes.finding import Finding
from probes.registry import PROBES
from probes.targets import Target
from scorer.results import merge_verdicts
from scorer.score import score
from zhian import __version__
from zhian.config import Config
from zhian.engine.inventory import area_kinds, build_site
from zhian.engine.run import (
    Job,
    config_digest,
    execute,
    judged_pairs,
    make_context,
    new_run_id,
    plan_jobs,
    prepared,
    settled,
)
from zhian.evidence.exchanges import ExchangeRecorder, finding_fields
from zhian.evidence.keys import SigningKey
from zhian.evidence.segments import SEGMENT_FILE, SegmentedLedger, read_json, segment_dirs
from zhian.monitor.alerts import OutageAlerts, is_outage
from zhian.monitor.board import Board, Indicator
from zhian.monitor.console import Console
from zhian.monitor.events import EventObserver
from zhian.monitor.heartbeats import MQTT_KINDS, Device, HeartbeatTracker, expectations
from zhian.monitor.linkage import RealAlarms
from zhian.monitor.live import LiveSide
from zhian.monitor.metrics import DeviceLines, LiveCollector, Metrics
from zhian.monitor.period import OUTAGE_PROBES

LIVE_PROBES = frozenset(MQTT_KINDS.values())  # judged by the heartbeat tracker, never scheduled
RETENTION_PROBES = frozenset({"retention", "isapi_retention"})
TICK_S = 1.0  # indicators re-judged, segments rolled, the console redrawn
HANDOVER_S = 0.1  # the live side's changes are recorded at most this late, together
HANDOVER_MAX = 1000  # changes recorded in one call on the main loop, one transaction
STOP_GRACE_S = 3.0  # per part of the service, on SIGTERM, before the segment is sealed regardless


def monitor_id_of(state_dir: Path) -> str:
    """The id the state directory already carries (a restart), or a new one."""
    segments = segment_dirs(state_dir)
    if segments and (segments[-1] / SEGMENT_FILE).is_file():
        return str(read_json(segments[-1] / SEGMENT_FILE).get("monitor_id") or new_run_id())
    return new_run_id()


class Monitor:
    def __init__(
        self,
        config: Config,
        config_path: Path,
        state_dir: Path,
        key: SigningKey,
        listen: tuple[str, int] | None,
    ) -> None:
        self.config, self.config_path = config, config_path
        self.site = build_site(config, config_path.parent)
        self.catalog, self.rules = load_catalog(), load_rules()
        kinds = area_kinds(config)
        indicators = [i.id for i in self.catalog]
        jobs, _ = plan_jobs(self.rules, indicators, self.site, PROBES, kinds, "monitoring", 0)
        scope = judged_pairs(self.rules, indicators, jobs, kinds)
        self.scheduled = [j for j in jobs if j.spec.mode == "passive" and j.spec.id not in LIVE_PROBES]
        t = config.thresholds
        devices, self.inventory_problems = expectations(self.site, t.heartbeat_interval_s, t.heartbeat_misses)
        self.board = Board(self.rules, self.catalog, scope)
        self.tracker = HeartbeatTracker(devices, self.live_change)
        self.monitor_id = monitor_id_of(state_dir)
        secrets = tuple(s for target in self.site.targets for s in target.secrets())
        max_bytes = int(config.monitor.segment_max_mb * (1 << 20))
        self.ledger = SegmentedLedger(
            state_dir, key, monitor_id=self.monitor_id, snapshot=self.board.snapshot, secrets=secrets,
            max_bytes=max_bytes, max_artefact_bytes=config.limits.max_reply_bytes,
        )  # fmt: skip
        self.exchanges = ExchangeRecorder(self.ledger, self.monitor_id, self.indicators_for)
        self.events = EventObserver(self)
        self.alerts = OutageAlerts(self)
        self.real_alarms = RealAlarms(self)
        sink = self.events.sink(self.exchanges)
        self.ctx: ProbeContext = make_context(self.site, config, sink, None, False)
        self.metrics = Metrics()
        self.reachable: dict[str, dict[str, bool]] = {}  # device -> probe -> last check reached it
        self.others_up: dict[str, bool] = {}
        self.metrics.registry.register(LiveCollector(self.tracker, lambda: self.ledger.records_total))
        self.metrics.devices = DeviceLines(self.site.targets, self.tracker, self.devices_up)
        # checks in flight: call-bound jobs, by default as many as connections (see Limits)
        self.gate = asyncio.Semaphore(config.limits.concurrency or config.limits.connections)
        self.gap_started: dict[str, datetime] = {}
        self._handed: deque[Finding] = deque()  # live changes on their way to the main loop
        self._handover_due = False
        self.first_rounds: set[str] = set()  # scheduled probes whose first round has ended
        self.console = Console(self)
        self.live = LiveSide(self, listen)
        self.started = time.monotonic()
        self.failure: str | None = None

    # -- findings -------------------------------------------------------------------------------
    def indicators_for(self, probe: str, device: str) -> list[str]:
        return self.board.indicators_of.get((probe, device), [])

    def keep(self, finding: Finding) -> None:
        """Every finding updates the board and the metrics; a change of status is recorded."""
        if finding.probe in RETENTION_PROBES:
            self.metrics.retention_facts(finding.device, finding.facts)
            # every check's days, changed or not: the period report charts retention over time
            days = {k: finding.facts.get(k) for k in ("observed_days", "required_days", "configured_days")}
            self.ledger.append(
                "measure",
                {"run_id": self.monitor_id, "probe": finding.probe, "device": finding.device,
                 "at": finding.finished_at.isoformat(), "status": finding.status, **days},
            )  # fmt: skip
        if finding.probe not in LIVE_PROBES:
            reached = self.reachable.setdefault(finding.device, {})
            reached[finding.probe] = finding.reason != "unreachable"
            # a new dict, not an update: the live side's /metrics reads it from its own thread
            self.others_up = {**self.others_up, finding.device: all(reached.values())}
        previous = self.board.observe(finding)
        if previous is None:
            return
        self.outage_change(finding)
        fields = finding_fields(finding, self.monitor_id, self.indicators_for(finding.probe, finding.device))
        self.ledger.append("finding", fields | {"change": {"from": previous, "to": finding.status}})
        self.console.change(finding, previous)

    def outage_change(self, finding: Finding) -> None:
        """A device gone down opens an outage the platform must alert; back up, it closes."""
        at = finding.finished_at
        if finding.status in ("fail", "error") and is_outage(finding.probe, finding.reason):
            seen = finding.facts.get("last_seen")
            last_seen = datetime.fromisoformat(seen) if isinstance(seen, str) else None
            self.alerts.opened(finding.device, at, finding.reason, last_seen)
        elif finding.status == "pass" and (
            finding.probe in OUTAGE_PROBES or all(self.reachable.get(finding.device, {}).values())
        ):
            self.alerts.closed(finding.device, at)

    def live_change(self, _device: Device, finding: Finding) -> None:
        """Called on the live side's thread: recorded on the main loop, in batches, so that a burst of
        changes is one callback there and not thousands queued ahead of everything else (a stop), and
        one transaction: what changes within HANDOVER_S of the first is taken together (the finding
        carries its own time; the metrics read the tracker, not the ledger)."""
        self._handed.append(finding)
        if not self._handover_due:
            self._handover_due = True
            self.live.post_later(HANDOVER_S, self.take_handed)

    def take_handed(self) -> None:
        """Record what the live side handed over, HANDOVER_MAX at most a call, each call's in one
        transaction (a site's first judgement is a finding per device at once: a commit each held
        the main loop for a minute at 25,000 devices, and taking them all in one call for as long)."""
        self._handover_due = False  # before taking: a change handed meanwhile posts another call
        count = min(len(self._handed), HANDOVER_MAX)
        if not count:
            return  # taken already (the stop takes what is left)
        with self.ledger.batch():
            for _ in range(count):
                self.keep(self._handed.popleft())
        if self._handed and not self._handover_due:
            self._handover_due = True
            asyncio.get_running_loop().call_soon(self.take_handed)

    def take_all_handed(self) -> None:
        while self._handed:
            self.take_handed()

    def devices_up(self) -> dict[str, bool]:
        """Devices the tracker does not follow: up unless their last check could not reach them."""
        reachable = dict(self.reachable)  # a copy: /metrics calls this from another thread
        return {d: all(probes.values()) for d, probes in reachable.items() if d not in self.tracker.devices}

    def judge_indicators(self) -> None:
        at = datetime.now(UTC)
        changes = self.board.judge_dirty(at)
        with self.ledger.batch():
            for indicator, previous, state in changes:
                self.record_indicator(indicator, state, "change", previous)
            for indicator, state in self.board.still_holding(at, self.config.monitor.still_holds_s):
                self.record_indicator(indicator, state, "still_holds", state.status)
        if changes:
            self.update_scores()

    def record_indicator(self, indicator: str, state: Indicator, record: str, previous: str) -> None:
        self.ledger.append(
            "indicator",
            {
                "run_id": self.monitor_id,
                "indicator": indicator,
                "record": record,
                "status": state.status,
                "from": previous,
                "ratio": state.ratio,
                "since": state.since,
                "at": state.held_at,
                "note": state.note,
            },
        )

    def update_scores(self) -> None:
        for indicator, state in self.board.indicators.items():
            self.metrics.indicator_status(indicator, self.catalog.get(indicator).level, state.status)
        entries = self.board.verdict_entries()
        report = score(self.catalog, merge_verdicts((i.id for i in self.catalog), [entries]))
        for level in report.levels:
            self.metrics.level_score.labels(level.level).set(float(level.total))

    # -- the service ----------------------------------------------------------------------------
    def resume(self) -> None:
        """Pick up where the state directory left off; seal what a kill left open."""
        resumed = self.ledger.resume()
        self.board.restore(resumed.state)
        self.board.replay(resumed.replay)
        for (probe, device), finding in self.board.latest.items():
            if probe in RETENTION_PROBES:
                self.metrics.retention_facts(device, finding.facts)
        recovered = self.ledger.start()
        for segment in recovered:
            self.ledger.append("recovered", {"run_id": self.monitor_id, "segment": segment.name})
        self.ledger.append(
            "monitor_start",
            {
                "run_id": self.monitor_id,
                "started_at": datetime.now(UTC).isoformat(),
                "tool": f"zhian {__version__}",
                "community": self.config.community.model_dump(),
                "config_sha256": config_digest(self.config_path),
                "scheduled_jobs": len(self.scheduled),
                "tracked_devices": len(self.tracker.devices),
                "inventory_problems": self.inventory_problems,
                "resumed_records": resumed.records,
            },
        )
        self.update_scores()

    async def run(self) -> None:
        self.resume()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        def fail(why: str) -> None:
            self.failure = why
            self.console.note(f"stopping: {why}")
            stop.set()

        tasks: list[asyncio.Task[None]] = []
        try:
            self.live.start(fail)
            tasks = [asyncio.create_task(self.tick_loop(), name="tick")]
            tasks[0].add_done_callback(lambda done: self.crashed(done, fail))
            # the heartbeats are followed meanwhile: only the HTTP devices wait for their transport
            settling = asyncio.create_task(self.settle_transports(), name="tls: auto")
            tasks.append(settling)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait([settling, stopping], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                return
            if settling.exception() is not None:
                fail(f"tls: auto: {settling.exception()}")
                return
            started = len(tasks)
            tasks.append(asyncio.create_task(self.events.run(), name="events"))
            tasks.append(asyncio.create_task(self.alerts.run(), name="platform alerts"))
            tasks.append(asyncio.create_task(self.real_alarms.run(), name="real alarms"))
            tasks += [
                asyncio.create_task(self.schedule(p, jobs), name=p) for p, jobs in self.by_probe().items()
            ]
            for task in tasks[started:]:
                task.add_done_callback(lambda done: self.crashed(done, fail))
            self.console.started(len(self.scheduled), len(self.tracker.devices), self.live.listen)
            await stop.wait()
        finally:
            await self.stop(loop, tasks)

    async def settle_transports(self) -> None:
        """`tls: auto` decided once per HTTP device, as `zhian run` does (the handshakes are evidence):
        a device serving plain HTTP is spoken to in plain HTTP by every check and observer."""
        self.scheduled = await settled(self.ctx, self.scheduled, self.gate)
        # the looks are in the ledger already; a round fetches on a context of its own, so the
        # service would only hold every certificate until it stops
        await self.ctx.close_shared()
        self.site = self.ctx.site
        decided = {t.id: t for t in self.site.targets}
        self.events.targets = [decided[t.id] for t in self.events.targets]
        if self.alerts.platform is not None:
            self.alerts.platform = decided[self.alerts.platform.id]

    async def stop(self, loop: asyncio.AbstractEventLoop, tasks: list[asyncio.Task[None]]) -> None:
        """Seal within seconds: checks in flight, the live side, the event subscriptions' Unsubscribe
        and the devices' clients each get STOP_GRACE_S to finish (a cancelled check or an
        unsubscribe that waits on a dead device does not hold the seal); what the live side handed
        over is recorded; then the segment is sealed."""
        phases: dict[str, float] = {}
        t0 = time.monotonic()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_GRACE_S)
        phases["checks"] = time.monotonic() - t0
        await asyncio.to_thread(self.live.stop, STOP_GRACE_S)
        phases["live"] = time.monotonic() - t0 - sum(phases.values())
        self.take_all_handed()  # what the live side handed over last is recorded too
        unsubscribed = await self.events.unsubscribe(STOP_GRACE_S)
        phases["unsubscribe"] = time.monotonic() - t0 - sum(phases.values())
        await asyncio.wait([asyncio.ensure_future(self.ctx.close())], timeout=STOP_GRACE_S)
        phases["clients"] = time.monotonic() - t0 - sum(phases.values())
        self.judge_indicators()
        gaps = {b: at.isoformat() for b, at in self.gap_started.items()}
        stop_at = datetime.now(UTC).isoformat()
        self.ledger.append(
            "monitor_stop",
            {
                "run_id": self.monitor_id,
                "at": stop_at,
                "open_gaps": gaps,
                "failure": self.failure,
                "unsubscribed": unsubscribed,
            },
        )
        self.ledger.close()
        phases["seal"] = time.monotonic() - t0 - sum(phases.values())
        self.console.stopped(self.ledger.records_total, {k: round(v, 2) for k, v in phases.items()})

    def crashed(self, task: asyncio.Task[None], fail: Callable[[str], None]) -> None:
        """A part of the service that ends by itself is a bug: say so, and stop cleanly (sealing)."""
        if task.cancelled():
            return
        error = task.exception()
        fail(f"{task.get_name()}: {type(error).__name__}: {error}" if error else f"{task.get_name()} ended")

    def health(self) -> tuple[bool, dict[str, Any]]:
        open_segment = self.ledger.segment
        doc = {
            "monitor_id": self.monitor_id,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "segment": open_segment.name if open_segment else None,
            "records": self.ledger.records_total,
            "brokers": dict(self.live.brokers),
            # the warm-up: every device judged, recorded, and every scheduled probe run once
            "devices": {
                "tracked": len(self.tracker.devices),
                "judged": self.tracker.judged,
                "changes_unrecorded": len(self._handed),
            },
            "scheduled_probes": {"total": len(self.by_probe()), "first_round_done": len(self.first_rounds)},
            "event_subscriptions": dict(self.events.state),
            "panels": dict(self.real_alarms.state),
        }
        return open_segment is not None, doc

    async def tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self.judge_indicators()
            self.ledger.roll_if_due()
            self.console.tick()

    # -- scheduled checks -----------------------------------------------------------------------
    def by_probe(self) -> dict[str, list[Job]]:
        groups: dict[str, list[Job]] = {}
        for job in self.scheduled:
            groups.setdefault(job.spec.id, []).append(job)
        return groups

    async def schedule(self, probe: str, jobs: Sequence[Job]) -> None:
        """Once at start, then every interval with jitter; each round with its own fetch cache, the
        devices' clients kept for the life of the service (the event subscriptions use them too)."""
        every, jitter = self.config.monitor.every(probe), self.config.monitor.jitter
        while True:
            await self.round(jobs)
            self.first_rounds.add(probe)
            await asyncio.sleep(every * (1 + random.uniform(-jitter, jitter)))

    async def round(self, jobs: Sequence[Job]) -> None:
        """One round, its fetches let go when it ends (not held through the interval after it: the
        offline alert's window over every broker is 100 MB at 25,000 devices)."""
        ctx = replace(self.ctx, _shared={})
        try:
            async with asyncio.TaskGroup() as tg:
                for job in jobs:
                    tg.create_task(self.check(ctx, job))
        finally:
            await ctx.close_shared()

    async def check(self, ctx: ProbeContext, job: Job) -> None:
        async with self.gate:
            timed, params = prepared(job, self.site, self.config)
            t0 = time.monotonic()
            finding = await execute(ctx, timed, params, timed.spec.timeout_s)
            self.metrics.duration.labels(job.spec.id).observe(time.monotonic() - t0)
        if finding.status == "error":
            self.metrics.errors.labels(job.spec.id, finding.reason).inc()
        self.keep(finding)

    # -- brokers ----------------------------------------------------------------------------------
    def broker_filters(self) -> list[tuple[Target, list[str]]]:
        filters: dict[str, set[str]] = {}
        for device in self.tracker.devices.values():
            filters.setdefault(device.broker, set()).update(device.matcher.filters)
        for broker, topics in self.real_alarms.relay_brokers.items():
            filters.setdefault(broker, set()).update(topics)
        out: list[tuple[Target, list[str]]] = []
        for broker_id, wanted in sorted(filters.items()):
            try:
                out.append((self.site.get(broker_id), sorted(wanted)))
            except KeyError:
                self.inventory_problems.append(f"broker {broker_id!r} is not in the inventory")
        return out

    def open_gap(self, broker: str, at: datetime, error: str, evidence: str | None) -> None:
        if broker in self.gap_started:
            return
        self.gap_started[broker] = at
        self.ledger.append(
            "gap",
            {"run_id": self.monitor_id, "device": broker, "started_at": at.isoformat(), "error": error,
             "evidence": [evidence] if evidence else []},
        )  # fmt: skip
        self.console.note(f"broker {broker}: subscription lost ({error}); a gap until it is back")

    def close_gap(self, broker: str, at: datetime, exchange_id: str) -> None:
        began = self.gap_started.pop(broker, None)
        if began is None:
            return
        seconds = round((at - began).total_seconds(), 3)
        self.ledger.append(
            "gap_end",
            {"run_id": self.monitor_id, "device": broker, "started_at": began.isoformat(),
             "ended_at": at.isoformat(), "duration_s": seconds, "evidence": [exchange_id]},
        )  # fmt: skip
        self.console.note(f"broker {broker}: subscribed again after {seconds:g} s")
