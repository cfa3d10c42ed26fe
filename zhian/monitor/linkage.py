"""Linkage from real alarms, observed by the linkage probes' passive mode (probes/linkage/passive*.py):
- fire: every fire panel read every `linkage_poll_s`; a zone that turns to alarm is a trigger;
- intrusion: a perimeter camera (one the intrusion_linkage probes are planned on) whose event
  subscription hears its analytics report an intruder (a RuleEngine event) is a trigger; while an
  area's intrusion is observed, further reports in that area are part of it.
The effects come from the cameras' and doors' event subscriptions, the relays' state messages the
broker subscriptions receive, and what the passive mode polls.

Each trigger gives one `linkage` record (the trigger, the whole timeline of effects with their delays
and deadlines, and each linkage probe's verdict), and the probes' findings go to the board like any
other (a change of status is recorded as a finding). Quiet readings are routine: held, not written,
unless an alarm's record cites the last one. A zone already in alarm, or an intruder already inside,
when the monitor starts cannot be timed and is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from collectors.errors import CollectorError
from collectors.modbus.client import ModbusClient
from collectors.modbus.readings import PanelReading
from probes.finding import Finding
from probes.linkage.judge import timeline_facts
from probes.linkage.params import INTRUSION, FireParams, IntrusionParams
from probes.linkage.passive import RelayHeard
from probes.linkage.passive_fire import FIRE_PROBES, RealAlarm, observe_real_fire
from probes.linkage.passive_intrusion import INTRUSION_PROBES, RealIntrusion, observe_real_intrusion
from probes.linkage.reading import Heard, intrusion_onset, relay_body_on
from probes.linkage.site import relay_topics, zone_areas
from probes.linkage.watches import LinkageRun
from probes.panel_common import panel_site
from probes.registry import PROBES
from probes.targets import Target
from zhian.engine.run import probe_params
from zhian.monitor.events import following

if TYPE_CHECKING:
    from zhian.monitor.service import Monitor

RELAY_KEPT = 100  # state messages kept per relay


class RealAlarms:
    def __init__(self, monitor: Monitor) -> None:
        self.m = monitor
        self.panels = [t for t in monitor.site.targets if t.kind == "panel"]
        # the lighting relays' state topics, followed by the live side's broker subscriptions
        self.relay_topics: dict[str, str] = {}  # topic -> relay
        self.relay_brokers: dict[str, list[str]] = {}  # broker -> topics
        self.relay_broker: dict[str, str] = {}  # relay -> broker
        for relay in monitor.site.of_kind("mqtt_device"):
            if relay.params.get("type") != "lighting_relay":
                continue
            with contextlib.suppress(ValueError):  # the passive run says what the inventory lacks
                state_topic, _ = relay_topics(relay)
                self.relay_topics[state_topic] = relay.id
                broker = str(relay.params.get("broker"))
                self.relay_brokers.setdefault(broker, []).append(state_topic)
                self.relay_broker[relay.id] = broker
        self.relays: dict[str, deque[RelayHeard]] = {
            r: deque(maxlen=RELAY_KEPT) for r in self.relay_topics.values()
        }
        params = probe_params(PROBES[FIRE_PROBES["doors"]], monitor.config)
        assert isinstance(params, FireParams)
        self.params = params
        intrusion = probe_params(PROBES[INTRUSION_PROBES["video"]], monitor.config)
        assert isinstance(intrusion, IntrusionParams)
        self.intrusion_params = intrusion
        # the perimeter cameras: those the intrusion_linkage probes are planned on (the rules' choice)
        planned = {d for p, d in monitor.board.indicators_of if PROBES[p].active_test == INTRUSION}
        self.perimeter = frozenset(planned)
        self.intruded: set[str] = set()  # areas whose intrusion is being observed
        monitor.events.listeners.append(self.heard)
        self.tg: asyncio.TaskGroup | None = None
        self.state: dict[str, str] = {}  # panel -> read | unreadable (its last reading)

    def relay_message(self, topic: str, payload: bytes, retain: bool, at: datetime) -> None:
        """On the main loop: a relay's state message the live side received at `at`."""
        relay = self.relay_topics[topic]
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        on = relay_body_on(body if isinstance(body, dict) else None)
        self.relays[relay].append(RelayHeard(at, on, retain))

    def relay_heard(self, relay: str) -> Sequence[RelayHeard] | None:
        broker = self.relay_broker.get(relay)
        if broker is None or self.m.live.brokers.get(broker) != "subscribed":
            return None
        return self.relays[relay]

    def heard_by(self, device: str) -> Sequence[Heard] | None:
        return self.m.events.heard_by(device)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            self.tg = tg  # the observations too: they end with the service
            for panel in self.panels:
                tg.create_task(self.follow(panel), name=f"alarms {panel.id}")
            await asyncio.Event().wait()  # ends with the service

    async def follow(self, panel: Target) -> None:
        following.set("poller")
        try:
            site, areas = panel_site(panel), zone_areas(panel)
        except ValueError as exc:
            self.m.console.note(f"{panel.id}: real alarms not followed ({exc})")
            return
        quiet: dict[int, tuple[datetime, PanelReading]] = {}  # zone -> its last quiet reading
        alarmed: set[int] = set()
        while True:
            asked = self.m.ctx.clock()
            try:
                async with ModbusClient(self.m.ctx.connection(panel)) as modbus:
                    reading = await modbus.read_panel(site.profile, site.unit_id, site.zones)
            except CollectorError:
                reading = None  # the scheduled panel_liveness check records the panel's troubles
            self.state[panel.id] = "unreadable" if reading is None else "read"
            for zone in site.zones if reading is not None else ():
                assert reading is not None
                state = reading.zones.get(zone)
                if state is None or not state.alarm:
                    quiet[zone] = (asked, reading)
                    alarmed.discard(zone)
                elif zone not in alarmed:
                    alarmed.add(zone)
                    if zone in quiet and zone in areas:
                        at, before = quiet[zone]
                        alarm = RealAlarm(panel, areas[zone], zone, at, reading.read_at,
                                          (*before.exchanges, *reading.exchanges), site, before)  # fmt: skip
                        self.start(alarm)
            await asyncio.sleep(self.m.config.monitor.linkage_poll_s)

    def start(self, alarm: RealAlarm) -> None:
        assert self.tg is not None
        panel = alarm.subject.id
        self.m.events.flush(panel, alarm.evidence)
        self.m.console.note(f"{panel}: fire alarm in zone {alarm.zone} ({alarm.area}), timing its linkage")
        self.tg.create_task(self.observe(alarm), name=f"linkage {panel} {alarm.zone}")

    async def observe(self, alarm: RealAlarm) -> None:
        following.set(None)  # the observation's exchanges are its evidence: all recorded
        self.record(alarm.seen_at, *await observe_real_fire(self.m.ctx, self.params, alarm, self))

    def heard(self, camera: Target, new: Sequence[Heard]) -> None:
        """On the main loop, what a subscription just heard: a perimeter camera's intruder starts the
        observation of its area's linkage, unless one is under way there."""
        if camera.id not in self.perimeter or camera.area in self.intruded or self.tg is None:
            return
        onset = intrusion_onset(new, new[0].at)
        if onset is None:
            return
        when = onset.message.utc_time
        intrusion = RealIntrusion(
            camera, camera.area, None, onset.after or onset.at, onset.at, (onset.exchange_id,),
            onset.message.topic, when.isoformat() if when else None,
        )  # fmt: skip
        self.intruded.add(camera.area)
        self.m.console.note(
            f"{camera.id}: intrusion in {camera.area} ({onset.message.topic}), timing its linkage"
        )
        self.tg.create_task(self.observe_intrusion(intrusion), name=f"linkage {camera.id}")

    async def observe_intrusion(self, intrusion: RealIntrusion) -> None:
        following.set(None)
        try:
            run, findings = await observe_real_intrusion(self.m.ctx, self.intrusion_params, intrusion, self)
        finally:
            self.intruded.discard(intrusion.area)
        self.record(intrusion.seen_at, run, findings)

    def record(self, seen_at: datetime, run: LinkageRun, findings: list[Finding]) -> None:
        """The trigger's `linkage` record; its findings to the board."""
        self.m.ledger.append(
            "linkage",
            {
                "run_id": self.m.monitor_id,
                "device": run.subject,
                "at": seen_at.isoformat(),
                "facts": timeline_facts(run),
                "verdicts": {
                    f.probe: {"status": f.status, "reason": f.reason, "detail": f.detail} for f in findings
                },
                "evidence": sorted({e for f in findings for e in f.evidence}),
            },
        )
        for finding in findings:
            self.m.keep(finding)
