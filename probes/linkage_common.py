"""Active linkage tests: set off a trigger (a fire alarm in a panel zone, an intruder before a
perimeter camera), time every effect the site's integration must produce, then put everything back.

One test serves several probes (fetch once, judge many): the five fire_linkage probes of a panel
share one PanelRun, the three intrusion_linkage probes of a camera one LinkageRun. A panel's test
sets off one zone after another, each zone a LinkageRun of its own, restored before the next zone
starts: every zone with an expected effect (doors, cameras or lighting relays in its area, or the
panel's own emergency lighting and broadcast) on monitoring runs, the run's 7.4 sample of them on
inspections (ProbeSpec.members, params.sample), or only the zone `zone` names. A trigger's run keeps,
for each expected target, when zhian first saw the effect, on zhian's clock from the trigger. Every
delay is an upper bound (effects are polled every poll_s) and never flatters the site: the trigger
time is taken just before the command that raises the alarm (remote) or at the last panel reading
that still showed the zone quiet (guided). Each effect is observed until its own deadline plus
grace_s, so that a late effect is told from a missing one.

A finding's facts (JSON, drawn by the report): one trigger's facts are `trigger_at`, `deadline_s`
(the judged effect's), `timeline` (every watched effect: target, status, delay_s, deadline_s),
`targets` (the judged effect's rows), `restore` and `outcome`, `zone`, `area`. An intrusion finding's
facts are one trigger's. A fire finding's facts are the panel's: `effect`, `zone_sample` (mode,
members, picked, and the 7.4 rule and seed on inspections), `restore_complete`, and `zones`, one
trigger's facts per zone tested, in order, each with that zone's own `status`, `reason` and `detail`.
The panel's verdict is its worst zone's (fail, then error, then not assessed; a zone with nothing
to show the effect does not count), a pass only when no zone did worse.

Safety first: nothing is set off while the panel already shows an alarm (it may be a real fire);
the panel is reset only while the tested zone is the only one in alarm; zhian never commands a door,
a camera or a lighting relay (MQTT is read-only). Whatever the site's own reset does not put back (a
door left unlocked, a camera alarm, a relay left on) is recorded and handed to the operator when one
is on site, never forced: a door is not force-locked, since someone may be using it to get out. The
restore always runs, also when the test is cancelled, bounded by restore_timeout_s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from collectors.artemis import ArtemisClient
from collectors.errors import CollectorError
from collectors.isapi import DoorStatus, IsapiClient
from collectors.modbus import ModbusClient, PanelReading
from collectors.mqtt import MqttClient, Observation, TopicSummary
from collectors.onvif import OnvifClient
from collectors.onvif_events import Pull, PulledMessage, PullPoint
from collectors.platform import PlatformAlert, PlatformClient
from probes.base import ProbeContext, ProbeSpec, Sample
from probes.finding import Finding, Status
from probes.panel_common import PanelSite, panel_site
from probes.platform_common import platform_client
from probes.targets import SiteView, Target

FIRE = "fire_linkage"
INTRUSION = "intrusion_linkage"
TIMEOUT_S = 600.0  # one trigger: a guided trigger wait, the deadlines and the restore, with room to spare

Effect = Literal["doors", "video", "lighting", "broadcast", "alert"]
TriggerKind = Literal["remote", "guided"]
Outcome = Literal["triggered", "trigger_not_seen", "site_in_alarm", "no_operator", "no_analytics", "failed"]
WatchStatus = Literal["on_time", "late", "missing", "error", "already_active"]

# ONVIF DoorMode values of a released door (Accessed is one person's momentary grant, not a release).
RELEASED_MODES = frozenset({"Unlocked", "LockedOpen"})
ISAPI_UNLOCKED, ISAPI_REMAIN_OPEN = 1, 2  # AcsWorkStatus doorLockStatus / doorStatus codes
ALARM_TOPICS = ("Device/Trigger/DigitalInput", "Device/Trigger/Relay")  # a linkage's alarm input/output
INSIDE_TOPIC = "RuleEngine/FieldDetector/ObjectsInside"
TRUE_WORDS = frozenset({"true", "1", "active", "on"})
PULL_WAIT_S = 0.5  # PullMessages long poll: short, so a test stops within it
RETAINED_S = 0.3  # an MQTT window long enough for the broker to replay a retained state
NOT_RUN: dict[Outcome, str] = {  # tests that did not run: not_assessed, the outcome as reason
    "trigger_not_seen": "The trigger was never seen, so no effect could be timed.",
    "site_in_alarm": "The panel was already in alarm: no test is set off over an alarm.",
    "no_operator": "This trigger needs an operator on site and none is available.",
    "no_analytics": "The camera advertises no intrusion analytics (RuleEngine topics).",
}
LABELS: dict[Effect, str] = {
    "doors": "door unlock",
    "video": "camera alarm",
    "lighting": "lighting switch-on",
    "broadcast": "emergency broadcast start",
    "alert": "platform alert",
}


# -- parameters ---------------------------------------------------------------------------------------
class _TestParams(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    guided: bool = True  # the operator sets the trigger off by hand (config active.guided)
    trigger_wait_s: float = Field(default=120, gt=0)  # how long to wait for the trigger to show
    deadline_camera_alarm_s: float = Field(default=10, gt=0)
    deadline_platform_alert_s: float = Field(default=10, gt=0)
    grace_s: float = Field(default=2, ge=0)  # observed past each deadline, to tell late from missing
    poll_s: float = Field(default=0.5, gt=0)
    restore_timeout_s: float = Field(default=60, gt=0)
    # How long the site gets to restore itself before the operator is asked to: a fire reset relocks
    # doors and drops outputs at once, relayed by the platform and MQTT within seconds, and lights an
    # intruder switched on stay on until someone acts. Asking early costs the operator only a look.
    restore_settle_s: float = Field(default=10, ge=0)


class FireParams(_TestParams):
    zone: int | None = Field(default=None, ge=1)  # only this zone; None: the zones with expected effects
    sample: Sample | None = None  # the run's pick among those zones (None: every one)
    deadline_doors_unlock_s: float = Field(default=10, gt=0)
    deadline_emergency_lighting_s: float = Field(default=10, gt=0)
    deadline_broadcast_s: float = Field(default=15, gt=0)


class IntrusionParams(_TestParams):
    deadline_lighting_s: float = Field(default=10, gt=0)


# -- what a run records -------------------------------------------------------------------------------
@dataclass
class Watch:
    """One expected effect on one target, filled in while the test runs."""

    effect: Effect
    target: str
    deadline_s: float
    baseline_active: bool = False  # already in the effect's state before the trigger
    seen_at: datetime | None = None
    error: str | None = None  # reason code: why the target could not be observed
    error_detail: str | None = None
    evidence: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def settled(self) -> bool:
        return self.seen_at is not None or self.error is not None or self.baseline_active

    def see(self, at: datetime, evidence: Iterable[str], **facts: Any) -> None:
        if self.seen_at is None:
            self.seen_at = at
            self.evidence += [e for e in evidence if e and e not in self.evidence]
            self.facts |= facts

    def fail(self, exc: CollectorError) -> None:
        self.broken(exc.reason, str(exc), (exc.exchange_id,) if exc.exchange_id else ())

    def broken(self, reason: str, detail: str, evidence: Iterable[str] = ()) -> None:
        if self.error is None and self.seen_at is None:
            self.error, self.error_detail = reason, detail
            self.evidence += [e for e in evidence if e]


@dataclass(frozen=True)
class Observed:
    """A Watch as the run ended."""

    effect: Effect
    target: str
    deadline_s: float
    delay_s: float | None  # trigger to first observation; None: never seen
    baseline_active: bool
    error: str | None
    error_detail: str | None
    evidence: tuple[str, ...]
    facts: Mapping[str, Any]

    @property
    def status(self) -> WatchStatus:
        if self.delay_s is not None:
            return "on_time" if self.delay_s <= self.deadline_s else "late"
        if self.baseline_active:
            return "already_active"
        return "error" if self.error is not None else "missing"

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "effect": self.effect,
            "target": self.target,
            "status": self.status,
            "delay_s": self.delay_s,
            "deadline_s": self.deadline_s,
        }
        if self.error is not None and self.delay_s is None:
            row |= {"error": self.error, "error_detail": self.error_detail}
        return row | dict(self.facts)


@dataclass(frozen=True)
class RestoreStep:
    step: str  # panel_reset, test_mode_off, panel_normal, door_locked, camera_cleared, relay_off ...
    target: str
    ok: bool
    detail: str
    evidence: tuple[str, ...] = ()
    operator_told: bool = False


@dataclass(frozen=True)
class Problem:
    """Why a test could not run: the reason code, a sentence, and the exchanges that show it."""

    reason: str
    detail: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class LinkageRun:
    test: str  # fire_linkage | intrusion_linkage
    subject: str  # the panel or camera tested
    trigger_kind: TriggerKind
    area: str
    zone: int | None
    outcome: Outcome
    started_at: datetime
    trigger_at: datetime | None
    trigger_evidence: tuple[str, ...]
    observed_until: datetime | None
    watches: tuple[Observed, ...]
    restore: tuple[RestoreStep, ...]
    problem: Problem | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def restored(self) -> bool:
        return all(step.ok for step in self.restore)

    def of(self, effect: Effect) -> tuple[Observed, ...]:
        return tuple(w for w in self.watches if w.effect == effect)


@dataclass(frozen=True)
class PanelRun:
    """A panel's fire test: one LinkageRun per zone tested, in the order they ran."""

    panel: str
    runs: tuple[LinkageRun, ...]
    sample: Mapping[str, Any]  # how the zones were chosen (the facts' zone_sample)


# -- judging (no I/O) ---------------------------------------------------------------------------------
def run_facts(run: LinkageRun, effect: Effect) -> dict[str, Any]:
    """Facts every linkage finding carries: the trigger, the whole timeline, and the restore."""
    own = run.of(effect)
    return {
        "test": run.test,
        "subject": run.subject,
        "trigger": run.trigger_kind,
        "zone": run.zone,
        "area": run.area,
        "outcome": run.outcome,
        "trigger_at": run.trigger_at.isoformat() if run.trigger_at else None,
        "observed_for_s": _seconds(run.trigger_at, run.observed_until),
        "effect": effect,
        "deadline_s": max((w.deadline_s for w in own), default=None),
        "targets": {w.target: w.row() for w in own},
        "timeline": [w.row() for w in run.watches],
        "restore": {
            "complete": run.restored,
            "steps": [
                {
                    "step": s.step,
                    "target": s.target,
                    "ok": s.ok,
                    "detail": s.detail,
                    "operator_told": s.operator_told,
                }
                for s in run.restore
            ],
        },
        **run.facts,
    }


def judge_effect(
    probe: str, device: str, run: LinkageRun, effect: Effect, started_at: datetime, finished_at: datetime
) -> Finding:
    """Pass when every expected target showed the effect within its deadline; fail when one never did
    (effect_missing) or did too late (effect_late); error when a target could not be observed."""
    facts = run_facts(run, effect)
    label = LABELS[effect]
    restore_note = "" if run.restored else " The site was not fully restored after the test (see facts)."

    def finding(status: Status, reason: str, detail: str, evidence: Iterable[str] = ()) -> Finding:
        return Finding(
            probe=probe,
            device=device,
            status=status,
            reason=reason,
            detail=detail + restore_note,
            facts=facts,
            evidence=tuple(dict.fromkeys(e for e in evidence if e)),
            started_at=started_at,
            finished_at=finished_at,
        )

    if run.outcome != "triggered":
        evidence = run.trigger_evidence + (run.problem.evidence if run.problem else ())
        if run.problem is not None:
            return finding("error", run.problem.reason, run.problem.detail, evidence)
        return finding("not_assessed", run.outcome, NOT_RUN[run.outcome], evidence)
    own = run.of(effect)
    if not own:
        return finding("not_assessed", "no_targets", f"Nothing in {run.area} is expected to show a {label}.")
    evidence = run.trigger_evidence + tuple(e for w in own for e in w.evidence)
    missing = [w for w in own if w.status == "missing"]
    late = [w for w in own if w.status == "late"]
    broken = [w for w in own if w.status == "error"]
    active = [w for w in own if w.status == "already_active"]
    facts["missing"] = [w.target for w in missing]
    facts["late"] = {w.target: {"delay_s": w.delay_s, "deadline_s": w.deadline_s} for w in late}
    if missing:
        names = ", ".join(w.target for w in missing)
        window = facts["observed_for_s"] or facts["deadline_s"]
        return finding(
            "fail", "effect_missing", f"No {label} from {names} within {window:g} s of the trigger.", evidence
        )
    if late:
        worst = max(late, key=lambda w: w.delay_s or 0.0)
        return finding(
            "fail",
            "effect_late",
            f"{label.capitalize()} came late: {worst.target} after {worst.delay_s:g} s "
            f"(deadline {worst.deadline_s:g} s).",
            evidence,
        )
    if broken:
        names = ", ".join(f"{w.target} ({w.error})" for w in broken)
        return finding("error", broken[0].error or "error", f"Could not observe {names}.", evidence)
    if active:
        names = ", ".join(w.target for w in active)
        return finding(
            "not_assessed",
            "effect_already_active",
            f"{names} already showed the {label} before the trigger, so the linkage cannot be timed.",
            evidence,
        )
    slowest = max(w.delay_s or 0.0 for w in own)
    return finding(
        "pass",
        "effect_in_time",
        f"Every target showed the {label} within its deadline ({len(own)} targets, slowest {slowest:g} s).",
        evidence,
    )


# The panel's verdict is its worst zone's.
ZONE_ORDER: dict[Status, int] = {"fail": 0, "error": 1, "not_assessed": 2, "partial": 3, "pass": 4}


def judge_zones(
    probe: str, device: str, run: PanelRun, effect: Effect, started_at: datetime, finished_at: datetime
) -> Finding:
    """Each zone judged on its own (judge_effect), the panel by its worst zone; zones without a target
    for the effect count only when no zone has one. Evidence and facts of every zone are kept."""
    judged = [(r, judge_effect(probe, device, r, effect, started_at, finished_at)) for r in run.runs]
    counted = [(r, f) for r, f in judged if f.reason != "no_targets"] or judged
    worst = min((f.status for _, f in counted), key=ZONE_ORDER.__getitem__)
    deciding = [(r, f) for r, f in counted if f.status == worst]
    detail = " ".join(_in_zone(r, f.detail) for r, f in deciding)
    if len(judged) > 1:
        tally = ", ".join(f"{r.zone} {f.status}" for r, f in judged)
        detail += f" (zones tested: {tally})"
    facts: dict[str, Any] = {
        "test": FIRE,
        "subject": run.panel,
        "trigger": run.runs[0].trigger_kind,
        "effect": effect,
        "zone_sample": dict(run.sample),
        "restore_complete": all(r.restored for r in run.runs),
        "zones": [f.facts | {"status": f.status, "reason": f.reason, "detail": f.detail} for _, f in judged],
    }
    return Finding(
        probe=probe,
        device=device,
        status=worst,
        reason=deciding[0][1].reason,
        detail=detail,
        facts=facts,
        evidence=tuple(dict.fromkeys(e for _, f in judged for e in f.evidence)),
        started_at=started_at,
        finished_at=finished_at,
    )


def _in_zone(run: LinkageRun, detail: str) -> str:
    return detail if run.zone is None else f"Zone {run.zone} ({run.area}): {detail}"


def not_permitted(probe: str, device: str, test: str, at: datetime) -> Finding:
    return Finding(
        probe,
        device,
        "not_assessed",
        "active_not_permitted",
        f"Active test {test!r} is not permitted in this run.",
        started_at=at,
        finished_at=at,
    )


# -- reading the site's answers (no I/O) ---------------------------------------------------------------
@dataclass(frozen=True)
class Heard:
    """One ONVIF event message as zhian received it (zhian's clock) and the pull that carried it."""

    at: datetime
    message: PulledMessage
    exchange_id: str


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in TRUE_WORDS


def alarm_state(message: PulledMessage) -> bool | None:
    """The alarm input/output state a message reports; None when it reports none."""
    if message.topic not in ALARM_TOPICS or "LogicalState" not in message.data:
        return None
    return _truthy(message.data["LogicalState"])


def alarm_onset(heard: Sequence[Heard], trigger_at: datetime) -> tuple[bool, Heard | None]:
    """(the alarm was on when the trigger came, the first alarm raised after the trigger)."""
    active = False
    for h in heard:
        state = alarm_state(h.message)
        if state is None:
            continue
        if h.at < trigger_at:
            active = state
        elif state and h.message.operation != "Initialized":
            return active, h
    return active, None


def current_state(heard: Sequence[Heard], topics: Iterable[str], key: str) -> bool | None:
    """The last state the camera reported on these topics (None: it reported none)."""
    wanted = frozenset(topics)
    states = [
        _truthy(h.message.data[key]) for h in heard if h.message.topic in wanted and key in h.message.data
    ]
    return states[-1] if states else None


def intrusion_onset(heard: Sequence[Heard], since: datetime) -> Heard | None:
    """The first intrusion the camera's analytics reported at or after `since`: a RuleEngine pulse
    (line crossed) or a RuleEngine property turning true (objects inside a field)."""
    for h in heard:
        m = h.message
        if h.at < since or not m.topic.startswith("RuleEngine/"):
            continue
        if m.operation is None or (m.operation != "Initialized" and any(_truthy(v) for v in m.data.values())):
            return h
    return None


def door_released(mode: str | None) -> bool:
    return mode in RELEASED_MODES


def isapi_released(status: DoorStatus, number: int) -> bool | None:
    """Door `number` unlocked or held open; None when the controller reports no such door."""
    i = number - 1
    if i < 0 or i >= len(status.lock_status):
        return None
    remain_open = i < len(status.door_status) and status.door_status[i] == ISAPI_REMAIN_OPEN
    return status.lock_status[i] == ISAPI_UNLOCKED or remain_open


def relay_on(summary: TopicSummary | None, which: Literal["first", "latest"]) -> tuple[bool | None, Any]:
    """A relay topic's {"on": bool}: of its latest message, or of its first live message that says on."""
    if summary is None:
        return None, None
    if which == "latest":
        return _on(summary.latest), summary.latest
    for received in (summary.first_live, summary.last_live, summary.retained):
        if _on(received):
            return True, received
    return False, None


def _on(received: Any) -> bool | None:
    if received is None or received.truncated:
        return None
    try:
        body = json.loads(received.payload)
    except ValueError:
        return None
    value = body.get("on") if isinstance(body, dict) else None
    return value if isinstance(value, bool) else None


def alert_matches(alert: PlatformAlert, device: str, area: str) -> bool:
    """The platform's alert for this trigger (its type already filtered): for the device or its area."""
    return alert.device == device or alert.area == area


def zone_areas(panel: Target) -> dict[int, str]:
    """Zone number -> area, from the inventory's panel entry (zones without an area are left out)."""
    out: dict[int, str] = {}
    for entry in panel.params.get("zones", ()):
        if isinstance(entry, Mapping) and "id" in entry and isinstance(entry.get("area"), str):
            out[int(entry["id"])] = str(entry["area"])
    return out


def doors_of(site: SiteView, area: str, zone: int | None = None) -> tuple[Target, ...]:
    """Doors a fire in `area` must unlock: those in the area, or whose fire_zone names it (or the zone)."""
    names = {area} | ({str(zone)} if zone is not None else set())
    return tuple(
        d for d in site.of_kind("door") if d.area == area or str(d.params.get("fire_zone") or "") in names
    )


def relays_of(site: SiteView, area: str) -> tuple[Target, ...]:
    return tuple(t for t in site.in_area(area, "mqtt_device") if t.params.get("type") == "lighting_relay")


def expected_effects(site: SiteView, panel: PanelSite, zone: int, area: str) -> tuple[Effect, ...]:
    """What a fire in the zone must visibly do besides the platform alert: unlock its area's doors,
    raise its cameras' alarms, switch its lighting relays on, and the panel's own emergency lighting
    and broadcast wherever the panel's register map shows them."""
    values, per_zone = panel.profile.values, panel.profile.zone_values
    shown: dict[Effect, bool] = {
        "doors": bool(doors_of(site, area, zone)),
        "video": bool(site.in_area(area, "camera")),
        "lighting": bool(relays_of(site, area)) or "lighting_on" in values,
        "broadcast": "broadcast_on" in values or "broadcast" in per_zone,
    }
    return tuple(effect for effect, expected in shown.items() if expected)


def fire_zones(site: SiteView, panel: PanelSite, zones: Mapping[int, str]) -> list[tuple[int, str]]:
    """The zones a panel's fire test covers: every zone with an expected effect; the first zone when
    none has one (its platform alert is still due)."""
    if not zones:
        raise ValueError("the panel has no zone with an area in the inventory")
    covered = [
        (zone, area) for zone, area in sorted(zones.items()) if expected_effects(site, panel, zone, area)
    ]
    first = min(zones)
    return covered or [(first, zones[first])]


def zone_members(site: SiteView, panel: Target) -> tuple[str, ...]:
    """The fire probes' ProbeSpec.members: the zones the test covers, for the run to sample by 7.4."""
    try:
        return tuple(str(zone) for zone, _ in fire_zones(site, panel_site(panel), zone_areas(panel)))
    except ValueError:
        return ()  # the test itself reports what is wrong with the inventory


def chosen_zones(
    site: SiteView, panel: Target, ps: PanelSite, params: FireParams
) -> tuple[list[tuple[int, str]], dict[str, Any]]:
    """The zones to test, in order, and how they were chosen: the one `zone` names, the run's pick
    among the covered zones, or every covered zone."""
    zones = zone_areas(panel)
    if params.zone is not None:
        if params.zone not in zones:
            raise ValueError(
                f"zone {params.zone} is not among the panel's zones with an area ({sorted(zones)})"
            )
        return [(params.zone, zones[params.zone])], {"mode": "asked", "picked": [params.zone]}
    covered = fire_zones(site, ps, zones)
    members = [zone for zone, _ in covered]
    if params.sample is None:
        return covered, {"mode": "every", "members": members, "picked": members}
    picked = [(zone, area) for zone, area in covered if str(zone) in params.sample.picked]
    if not picked:
        raise ValueError(f"the run's sample {list(params.sample.picked)} names none of zones {members}")
    sample = params.sample.model_dump() | {"members": members, "picked": [zone for zone, _ in picked]}
    return picked, sample


def relay_topics(relay: Target) -> tuple[str, str]:
    """The relay's state and telemetry topics (docs/mqtt-topics.md)."""
    p = relay.params
    root, site, gateway = p.get("topic_root"), p.get("site"), p.get("gateway")
    if not all(isinstance(v, str) and v for v in (root, site, gateway)):
        raise ValueError(f"{relay.id}: no topic_root, site or gateway in the inventory")
    base = f"{str(root).strip('/')}/{site}/{gateway}/{relay.id}"
    return f"{base}/state", f"{base}/telemetry"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


# -- the test engine ----------------------------------------------------------------------------------
Check = Callable[[], Awaitable[tuple[bool, str, tuple[str, ...]]]]  # (restored, detail, evidence)
RelayWatch = tuple[Target, Watch, tuple[str, str]]  # relay, its watch, its state and telemetry topics


@dataclass
class _Feed:
    """A camera's PullPoint subscription and every message zhian received on it."""

    camera: Target
    pull: PullPoint | None = None
    heard: list[Heard] = field(default_factory=list)
    error: CollectorError | None = None
    evidence: list[str] = field(default_factory=list)


@dataclass
class _Door:
    target: Target
    watch: Watch
    onvif: OnvifClient | None = None
    token: str | None = None
    isapi: IsapiClient | None = None
    number: int = 1


@dataclass
class _Pending:
    """Something the test changed that must be seen back in its normal state."""

    step: str
    target: str
    check: Check
    instruction: tuple[str, str, dict[str, Any]] | None = None  # (what to say, action, params)
    told: bool = False
    ok: bool = False
    detail: str = "not verified"
    evidence: tuple[str, ...] = ()

    def step_done(self) -> RestoreStep:
        return RestoreStep(self.step, self.target, self.ok, self.detail, self.evidence, self.told)


class _LinkageTest:
    """What both tests share: camera feeds, relay and platform observation, the wait and the restore."""

    test: str
    alert_type: str
    lighting_deadline_s: float

    def __init__(self, ctx: ProbeContext, params: _TestParams, subject: Target, area: str) -> None:
        self.ctx = ctx
        self.params = params
        self.subject = subject
        self.area = area
        self.zone: int | None = None
        self.kind: TriggerKind = "guided" if params.guided else "remote"
        self.started_at = ctx.clock()
        self.outcome: Outcome = "triggered"
        self.problem: Problem | None = None
        self.watches: list[Watch] = []
        self.trigger_at: datetime | None = None
        self.trigger_evidence: list[str] = []
        self.observed_until: datetime | None = None
        self.facts: dict[str, Any] = {}
        self.feeds: dict[str, _Feed] = {}
        self.relays: list[RelayWatch] = []
        self.platform: PlatformClient | ArtemisClient | None = None
        self.platform_since: datetime | None = None
        self.restore_steps: list[RestoreStep] = []
        self.changed = asyncio.Event()
        self.observing = True
        self.feeds_on = True
        self._feed_tasks: list[asyncio.Task[None]] = []
        self._pollers: list[asyncio.Task[None]] = []
        self._stack = contextlib.AsyncExitStack()

    # -- the run --------------------------------------------------------------------------------------
    async def run(self) -> LinkageRun:
        async with self._stack:
            try:
                if await self.precheck():
                    await self.prepare()
                    if await self.trigger():
                        await self.observe()
            finally:
                await _to_the_end(self.restore())
        return self.result()

    async def precheck(self) -> bool:
        """False when the test must not start (self.outcome says why)."""
        raise NotImplementedError

    def cameras(self) -> tuple[Target, ...]:
        return self.ctx.site.in_area(self.area, "camera")

    def own_watches(self) -> list[Coroutine[Any, Any, None]]:
        """The test's own watches; returns what reads their state before the trigger."""
        return []

    async def prepare(self) -> None:
        """Every watch first, then every target's state before the trigger, read all at once."""
        cameras = self.cameras()
        video = [self.watch("video", c.id, self.params.deadline_camera_alarm_s) for c in cameras]
        baselines = self.own_watches()
        self.relay_watches(relays_of(self.ctx.site, self.area), self.lighting_deadline_s)
        platform = self.ctx.site.platform
        alert = self.watch("alert", platform.id, self.params.deadline_platform_alert_s) if platform else None
        async with asyncio.TaskGroup() as tg:
            for camera in cameras:
                tg.create_task(self.open_feed(camera))
            for baseline in baselines:
                tg.create_task(baseline)
            tg.create_task(self.relay_baseline())
            if platform is not None and alert is not None:
                tg.create_task(self.platform_baseline(platform, alert))
        for w in video:
            error = self.feeds[w.target].error
            if error is not None:
                w.fail(error)

    async def trigger(self) -> bool:
        """Set the trigger off; True once it is seen (self.trigger_at set)."""
        raise NotImplementedError

    def stop(self, outcome: Outcome, problem: Problem | None = None) -> bool:
        self.outcome, self.problem = outcome, problem
        return False

    def result(self) -> LinkageRun:
        watches = tuple(
            Observed(
                effect=w.effect,
                target=w.target,
                deadline_s=w.deadline_s,
                delay_s=_seconds(self.trigger_at, w.seen_at),
                baseline_active=w.baseline_active,
                error=w.error,
                error_detail=w.error_detail,
                evidence=tuple(w.evidence),
                facts=dict(w.facts),
            )
            for w in self.watches
        )
        return LinkageRun(
            test=self.test,
            subject=self.subject.id,
            trigger_kind=self.kind,
            area=self.area,
            zone=self.zone,
            outcome=self.outcome,
            started_at=self.started_at,
            trigger_at=self.trigger_at,
            trigger_evidence=tuple(dict.fromkeys(self.trigger_evidence)),
            observed_until=self.observed_until,
            watches=watches,
            restore=tuple(self.restore_steps),
            problem=self.problem,
            facts=dict(self.facts),
        )

    def watch(self, effect: Effect, target: str, deadline_s: float) -> Watch:
        w = Watch(effect, target, deadline_s)
        self.watches.append(w)
        return w

    async def pause(self) -> None:
        await asyncio.sleep(self.params.poll_s)

    # -- cameras ------------------------------------------------------------------------------------
    async def open_feed(self, camera: Target) -> None:
        """Subscribe before the trigger; the first pull brings every property's current state."""
        p = self.params
        deadlines = [v for k, v in p.model_dump().items() if k.startswith("deadline_")]
        lifetime = p.trigger_wait_s + max(deadlines) + p.grace_s + p.restore_timeout_s + 60
        feed = self.feeds.setdefault(camera.id, _Feed(camera))
        try:
            client = await self._stack.enter_async_context(OnvifClient(self.ctx.connection(camera)))
            feed.pull = await self._stack.enter_async_context(await client.pull_point(lifetime))
            feed.evidence += feed.pull.evidence
            self.take(feed, await feed.pull.pull(0))
        except CollectorError as exc:
            feed.error = exc
            return
        self._feed_tasks.append(asyncio.create_task(self.follow(feed), name=f"linkage-feed-{camera.id}"))

    def take(self, feed: _Feed, pulled: Pull) -> None:
        at = self.ctx.clock()
        feed.heard += [Heard(at, m, pulled.exchange_id) for m in pulled.messages]
        if pulled.messages:
            self.evaluate_feeds()

    async def follow(self, feed: _Feed) -> None:
        assert feed.pull is not None
        while self.feeds_on and feed.pull.open:
            try:
                self.take(feed, await feed.pull.pull(PULL_WAIT_S))
            except CollectorError as exc:
                feed.error = exc
                self.evaluate_feeds()
                return

    def evaluate_feeds(self) -> None:
        """Video watches from what the feeds heard (the trigger time tells before from after)."""
        for w in self.watches:
            feed = self.feeds.get(w.target)
            if w.effect != "video" or feed is None or self.trigger_at is None:
                continue
            w.baseline_active, onset = alarm_onset(feed.heard, self.trigger_at)
            if onset is not None:
                w.see(onset.at, (*feed.evidence, onset.exchange_id), event=onset.message.topic)
            elif feed.error is not None and not w.baseline_active:
                w.fail(feed.error)
        self.changed.set()

    def camera_items(self) -> list[_Pending]:
        """Camera alarms the test raised must clear (the linkage's alarm input falls back)."""
        items: list[_Pending] = []
        for w in self.watches:
            feed = self.feeds.get(w.target)
            if w.effect == "video" and feed is not None and w.seen_at is not None and not w.baseline_active:
                say = f"Camera {w.target}: acknowledge and clear the alarm the test raised."
                items.append(
                    _Pending("camera_cleared", w.target, partial(_camera_clear, feed), (say, "clear", {}))
                )
        return items

    async def close_feeds(self) -> None:
        """Stop pulling and end every subscription (cameras have few pull points to spare)."""
        self.feeds_on = False
        await _finish(self._feed_tasks, PULL_WAIT_S + self.ctx.call_timeout_s)
        ended, kept = [], []
        for feed in self.feeds.values():
            if feed.pull is None or not feed.pull.open:
                continue
            try:
                ended.append(await feed.pull.unsubscribe())
            except CollectorError as exc:
                kept.append(f"{feed.camera.id} ({exc.reason})")
        if ended or kept:
            detail = "every subscription ended" if not kept else "left to expire: " + ", ".join(kept)
            step = RestoreStep("pull_points_closed", self.subject.id, not kept, detail, tuple(ended))
            self.restore_steps.append(step)

    # -- lighting relays (MQTT, read-only) -------------------------------------------------------------
    def relay_watches(self, relays: Iterable[Target], deadline_s: float) -> None:
        for relay in relays:
            w = self.watch("lighting", relay.id, deadline_s)
            try:
                self.relays.append((relay, w, relay_topics(relay)))
            except ValueError as exc:
                w.broken("inventory_invalid", str(exc))

    def brokers(self) -> list[tuple[Target, list[RelayWatch]]]:
        """The relays grouped by the broker they report through (one subscription per broker)."""
        groups: dict[str, tuple[Target, list[RelayWatch]]] = {}
        for relay, w, topics in self.relays:
            broker_id = str(relay.params.get("broker"))
            try:
                broker = self.ctx.site.get(broker_id)
            except KeyError:
                w.broken("inventory_invalid", f"{relay.id}: broker {broker_id!r} is not in the inventory")
                continue
            groups.setdefault(broker.id, (broker, []))[1].append((relay, w, topics))
        return list(groups.values())

    async def observe_relays(self, broker: Target, relays: list[RelayWatch], window_s: float) -> Observation:
        filters = [topic for _, _, topics in relays for topic in topics]
        async with MqttClient(self.ctx.connection(broker)) as client:
            return await client.observe(filters, window_s)

    async def relay_baseline(self) -> None:
        for broker, relays in self.brokers():
            try:
                obs = await self.observe_relays(broker, relays, RETAINED_S)
            except CollectorError as exc:
                for _, w, _ in relays:
                    w.fail(exc)
                continue
            for _, w, (state, telemetry) in relays:
                on, _ = relay_on(obs.topic(state) or obs.topic(telemetry), "latest")
                w.baseline_active = on is True
                w.evidence.append(obs.exchange_id)
                w.facts["before"] = on

    async def poll_relays(self, broker: Target, relays: list[RelayWatch]) -> None:
        """Short observation windows one after another: a switch shows live, or as the retained state
        of the next window (then timed at that window's start, an upper bound)."""
        while self.observing and not all(w.settled for _, w, _ in relays):
            try:
                obs = await self.observe_relays(broker, relays, self.params.poll_s)
            except CollectorError as exc:
                for _, w, _ in relays:
                    w.fail(exc)
                return
            for _, w, topics in relays:
                for topic in topics:
                    on, received = relay_on(obs.topic(topic), "first")
                    if on and received is not None:
                        at = obs.started_at if received.retain else received.at
                        w.see(at, (obs.exchange_id,), topic=topic)
            self.changed.set()

    def relay_items(self) -> list[_Pending]:
        """Relays the test switched on must be back off: the site switches them, zhian cannot."""
        items: list[_Pending] = []
        for broker, relays in self.brokers():
            for one in relays:
                relay, w, _ = one
                if w.seen_at is not None and not w.baseline_active:
                    say = (
                        f"Lighting relay {relay.id} ({relay.area}) is still on after the test: switch it off."
                    )
                    check = partial(self.relay_off, broker, one)
                    items.append(_Pending("relay_off", relay.id, check, (say, "switch", {"on": False})))
        return items

    async def relay_off(self, broker: Target, one: RelayWatch) -> tuple[bool, str, tuple[str, ...]]:
        obs = await self.observe_relays(broker, [one], RETAINED_S)
        state, telemetry = one[2]
        on, _ = relay_on(obs.topic(state) or obs.topic(telemetry), "latest")
        word = {True: "still on", False: "off", None: "state not reported"}[on]
        return on is not True, f"relay {word}", (obs.exchange_id,)

    # -- the platform -------------------------------------------------------------------------------
    async def platform_baseline(self, platform: Target, w: Watch) -> None:
        """The platform's own clock before the trigger: alerts raised since then are the test's."""
        try:
            api = platform_client(self.ctx, platform)
            await self._stack.enter_async_context(api)
            self.platform = api
            self.platform_since, exchange = await api.time()
            w.evidence.append(exchange)
        except CollectorError as exc:
            self.platform = None
            w.fail(exc)

    async def poll_platform(self) -> None:
        watch = next((w for w in self.watches if w.effect == "alert"), None)
        if self.platform is None or watch is None:
            return
        while self.observing and not watch.settled:
            try:
                listing = await self.platform.alerts(since=self.platform_since, type=self.alert_type)
            except CollectorError as exc:
                watch.fail(exc)
                return
            found = next((a for a in listing.rows if alert_matches(a, self.subject.id, self.area)), None)
            if found is not None:
                raised = found.raised_at.isoformat()
                watch.see(self.ctx.clock(), (listing.exchange_id,), alert=found.id, raised_at=raised)
                self.changed.set()
                return
            await self.pause()

    # -- observing ------------------------------------------------------------------------------------
    def pollers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [self.poll_platform, *(partial(self.poll_relays, b, r) for b, r in self.brokers())]

    async def observe(self) -> None:
        """Until every watch is settled or past its own deadline plus grace after the trigger (then
        it is missing): a missing door is not watched for as long as the slower broadcast may take."""
        assert self.trigger_at is not None
        self.evaluate_feeds()
        self._pollers = [asyncio.create_task(p(), name="linkage-poll") for p in self.pollers()]
        origin = time.monotonic() - (self.ctx.clock() - self.trigger_at).total_seconds()
        while True:
            elapsed = time.monotonic() - origin
            ends = [w.deadline_s + self.params.grace_s for w in self.watches if not w.settled]
            waiting = [end - elapsed for end in ends if end > elapsed]
            if not waiting:
                break
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(*waiting, self.params.poll_s)):
                    await self.changed.wait()
        self.observed_until = self.ctx.clock()
        self.observing = False
        await _finish(self._pollers, self.ctx.call_timeout_s + self.params.poll_s, raise_errors=True)

    # -- restore --------------------------------------------------------------------------------------
    async def restore_actions(self) -> None:
        """What the test itself undoes at once (a panel reset, telling the walker to leave)."""

    def restore_items(self) -> list[_Pending]:
        """What must be seen back to normal."""
        return []

    async def restore(self) -> None:
        """Put back what the test changed. What the site has not put back after restore_settle_s is
        handed to the operator; what is still not back at restore_timeout_s is recorded as such."""
        self.observing = False
        await _finish(self._pollers, 0)
        budget = self.params.restore_timeout_s
        items: list[_Pending] = []
        try:
            async with asyncio.timeout(budget):
                await self.restore_actions()
                items = self.restore_items()
                await self.settle(items, time.monotonic() + self.params.restore_settle_s)
        except TimeoutError:
            why = f"the restore did not finish within {budget:g} s"
            self.restore_steps.append(RestoreStep("restore_timeout", self.subject.id, False, why))
        self.restore_steps += [item.step_done() for item in items]
        await self.close_feeds()

    async def settle(self, items: list[_Pending], tell_after: float) -> None:
        while True:
            for item in (i for i in items if not i.ok):
                try:
                    item.ok, item.detail, item.evidence = await item.check()
                except CollectorError as exc:
                    item.ok, item.detail = False, f"could not be read: {exc}"
                    item.evidence = (exc.exchange_id,) if exc.exchange_id else ()
            waiting = [i for i in items if not i.ok]
            if not waiting:
                return
            if time.monotonic() >= tell_after:
                for item in waiting:
                    await self.tell(item)
            await self.pause()

    async def tell(self, item: _Pending) -> None:
        if item.told or item.instruction is None:
            return
        say, action, params = item.instruction
        item.told = await self.instruct_safely(say, item.target, action, params)

    async def instruct_safely(self, say: str, device: str, action: str, params: dict[str, Any]) -> bool:
        """During the restore an unreachable operator hook must not stop the rest of the restore."""
        if self.ctx.operator is None:
            return False
        try:
            await self.ctx.operator.instruct(say, device=device, action=action, params=params)
        except Exception as exc:  # a hook's failure is recorded as a restore step; the restore goes on
            step = RestoreStep("operator", device, False, f"could not tell the operator: {exc}")
            self.restore_steps.append(step)
            return False
        return True


class _FireTest(_LinkageTest):
    test = FIRE
    alert_type = "fire_alarm"

    def __init__(
        self, ctx: ProbeContext, params: FireParams, panel: Target, site: PanelSite, zone: int, area: str
    ) -> None:
        super().__init__(ctx, params, panel, area)
        self.fire = params
        self.lighting_deadline_s = params.deadline_emergency_lighting_s
        self.panel_site = site
        self.zone = zone
        self.modbus = ModbusClient(ctx.connection(panel))
        self.before: PanelReading | None = None
        self.doors: list[_Door] = []
        self.touched = False  # a command was written or the operator told: the panel may need a reset
        self.reset_done = False  # the reset was sent (or nothing needed one): verify the panel
        self.test_mode_set = False  # zhian switched test mode on (it was off)
        self.facts["panel"] = panel.id

    async def read(self) -> PanelReading:
        s = self.panel_site
        return await self.modbus.read_panel(s.profile, s.unit_id, s.zones)

    async def precheck(self) -> bool:
        """Nothing is set off over an alarm already showing: it may be a real fire."""
        try:
            await self._stack.enter_async_context(self.modbus)
            self.before = before = await self.read()
        except CollectorError as exc:
            return self.stop("failed", _problem(exc, f"The panel could not be read before the test: {exc}."))
        busy = [z for z, r in before.zones.items() if r.alarm]
        if before.alarm or busy:
            self.facts["zones_in_alarm"] = busy
            self.trigger_evidence += before.exchanges
            return self.stop("site_in_alarm")
        return True

    def own_watches(self) -> list[Coroutine[Any, Any, None]]:
        """The zone's doors, and the panel's lighting and broadcast (read before, in precheck)."""
        deadline = self.fire.deadline_doors_unlock_s
        doors = doors_of(self.ctx.site, self.area, self.zone)
        self.doors = [_Door(d, self.watch("doors", d.id, deadline)) for d in doors]
        self.panel_watches()
        return [self.open_door(d) for d in self.doors]

    def panel_watches(self) -> None:
        """Emergency lighting and broadcast as the panel's registers show them."""
        assert self.before is not None
        b = self.before
        lighting = self.watch("lighting", self.subject.id, self.fire.deadline_emergency_lighting_s)
        broadcast = self.watch("broadcast", self.subject.id, self.fire.deadline_broadcast_s)
        for w, now in ((lighting, b.lighting_on), (broadcast, self.broadcasting(b))):
            w.evidence += b.exchanges
            w.facts["before"] = now
            w.baseline_active = now is True
            if now is None:
                w.broken("unsupported", f"the register map {b.profile} has no {w.effect} state")

    def broadcasting(self, reading: PanelReading) -> bool | None:
        zone = reading.zones.get(self.zone or 0)
        known = [v for v in (reading.broadcast_on, zone.broadcast if zone else None) if v is not None]
        return any(known) if known else None

    async def open_door(self, d: _Door) -> None:
        t = d.target
        try:
            if t.protocol == "onvif":
                d.onvif = await self._stack.enter_async_context(OnvifClient(self.ctx.connection(t)))
                listing = await d.onvif.doors()
                tokens = [i.token for i in listing.doors]
                wanted = str(t.params.get("door") or "")
                # the inventory's "1" names a single-door controller's only door, whatever its token
                d.token = wanted if wanted in tokens else (tokens[0] if len(tokens) == 1 else None)
                if d.token is None:
                    d.watch.broken("door_not_found", f"no door {wanted!r} among {tokens}", listing.evidence)
                    return
            elif t.protocol == "isapi":
                d.number = int(str(t.params.get("door") or "1"))
                d.isapi = await self._stack.enter_async_context(IsapiClient(self.ctx.connection(t)))
            else:
                d.watch.broken("unsupported", f"doors are not read over {t.protocol}")
                return
            released, exchange, facts = await self.read_door(d)
        except CollectorError as exc:
            d.watch.fail(exc)
            return
        except ValueError:
            d.watch.broken("inventory_invalid", f"door number {t.params.get('door')!r} is not a number")
            return
        if released is None:
            d.watch.broken("door_not_found", f"the controller reports no door {d.number}", (exchange,))
            return
        d.watch.baseline_active = released
        d.watch.evidence.append(exchange)
        d.watch.facts["before"] = facts

    async def read_door(self, d: _Door) -> tuple[bool | None, str, dict[str, Any]]:
        if d.onvif is not None and d.token is not None:
            state = await d.onvif.door_state(d.token)
            return door_released(state.mode), state.exchange_id, {"mode": state.mode}
        assert d.isapi is not None
        status = await d.isapi.door_status()
        i = d.number - 1
        facts = {
            "lock_status": status.lock_status[i] if i < len(status.lock_status) else None,
            "door_status": status.door_status[i] if i < len(status.door_status) else None,
        }
        return isapi_released(status, d.number), status.exchange_id, facts

    async def trigger(self) -> bool:
        s, zone = self.panel_site, self.zone or 0
        quiet = self.ctx.clock()
        if self.kind == "guided":
            assert self.ctx.operator is not None
            self.touched = True
            await self.ctx.operator.instruct(
                f"Set off the smoke detector in zone {zone} ({self.area}) of panel {self.subject.id} "
                "with test aerosol.",
                device=self.subject.id,
                action="smoke",
                params={"zone": zone},
            )
            return await self.await_alarm(quiet)
        self.touched = True
        self.test_mode_set = not (self.before and self.before.test_mode)
        try:
            self.trigger_evidence += await self.modbus.set_test_mode(s.profile, s.unit_id, True)
            quiet = self.ctx.clock()
            self.trigger_evidence += await self.modbus.simulate_zone_alarm(s.profile, s.unit_id, zone)
        except CollectorError as exc:
            return self.stop("failed", _problem(exc, f"The panel did not take the simulated alarm: {exc}."))
        return await self.await_alarm(quiet)

    async def await_alarm(self, quiet: datetime) -> bool:
        """Poll the panel until the zone shows its alarm; the trigger is the last moment known quiet."""
        end = time.monotonic() + self.params.trigger_wait_s
        while True:
            asked = self.ctx.clock()
            try:
                reading = await self.read()
            except CollectorError as exc:
                return self.stop(
                    "failed", _problem(exc, f"The panel could not be read during the test: {exc}.")
                )
            zone = reading.zones.get(self.zone or 0)
            if zone is not None and zone.alarm:
                self.trigger_at = quiet
                self.trigger_evidence += reading.exchanges
                self.facts["alarm_seen_at"] = reading.read_at.isoformat()
                self.facts["trigger_resolution_s"] = _seconds(quiet, reading.read_at)
                return True
            quiet = asked
            if time.monotonic() >= end:
                self.trigger_evidence += reading.exchanges
                self.facts["trigger_wait_s"] = self.params.trigger_wait_s
                return self.stop("trigger_not_seen")
            await self.pause()

    def pollers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        return [*super().pollers(), self.poll_panel, *(partial(self.poll_door, d) for d in self.doors)]

    async def poll_panel(self) -> None:
        mine = [w for w in self.watches if w.target == self.subject.id]
        while self.observing and not all(w.settled for w in mine):
            try:
                reading = await self.read()
            except CollectorError as exc:
                for w in mine:
                    w.fail(exc)
                return
            for w in mine:
                if (reading.lighting_on if w.effect == "lighting" else self.broadcasting(reading)) is True:
                    w.see(self.ctx.clock(), reading.exchanges)
            self.changed.set()
            await self.pause()

    async def poll_door(self, d: _Door) -> None:
        while self.observing and not d.watch.settled:
            try:
                released, exchange, facts = await self.read_door(d)
            except CollectorError as exc:
                d.watch.fail(exc)
                return
            if released:
                d.watch.see(self.ctx.clock(), (exchange,), after=facts)
                self.changed.set()
                return
            await self.pause()

    # -- restore --------------------------------------------------------------------------------------
    async def restore_actions(self) -> None:
        if not self.touched:
            return
        try:
            step = await self.reset_panel()
        except CollectorError as exc:
            kept = (exc.exchange_id,) if exc.exchange_id else ()
            step = RestoreStep(
                "panel_reset", self.subject.id, False, f"the panel could not be reset: {exc}", kept
            )
        self.reset_done = step.ok
        self.restore_steps.append(step)

    async def reset_panel(self) -> RestoreStep:
        """Reset only while the tested zone is the panel's only alarm (a reset clears every latched
        alarm, a real one too); switch test mode off when zhian switched it on."""
        s, zone, panel = self.panel_site, self.zone or 0, self.subject.id
        reading = await self.read()
        evidence = list(reading.exchanges)
        ours = bool(reading.zones.get(zone) and reading.zones[zone].alarm)
        others = [z for z, r in reading.zones.items() if r.alarm and z != zone]
        done: list[str] = []
        told = False
        ok = True
        if others or (reading.alarm_count or 0) > int(ours):
            ok = False
            done.append(f"other alarms on the panel (zones {others or 'not in the inventory'}): not reset")
        elif not ours:
            done.append(f"zone {zone} not in alarm: nothing to reset")
        elif "reset" in s.profile.commands:
            evidence += await self.modbus.reset(s.profile, s.unit_id)
            done.append("reset sent")
        else:
            say = f"Reset panel {panel}: the register map has no reset command."
            told = await self.instruct_safely(say, panel, "reset", {})
            done.append("operator asked to reset" if told else "no reset command and no operator")
            ok = told
        if self.test_mode_set and reading.test_mode:
            evidence += await self.modbus.set_test_mode(s.profile, s.unit_id, False)
            done.append("test mode off")
        return RestoreStep("panel_reset", panel, ok, "; ".join(done), tuple(evidence), told)

    def restore_items(self) -> list[_Pending]:
        items: list[_Pending] = []
        if self.touched and self.reset_done:
            say = f"Reset panel {self.subject.id}: the test's alarm in zone {self.zone} is still latched."
            items.append(_Pending("panel_normal", self.subject.id, self.panel_normal, (say, "reset", {})))
        # a door already open before the test (a daytime release) is left as it was
        items += [self.door_item(d) for d in self.doors if not (d.watch.error or d.watch.baseline_active)]
        return items + self.relay_items() + self.camera_items()

    async def panel_normal(self) -> tuple[bool, str, tuple[str, ...]]:
        after = await self.read()
        zone = after.zones.get(self.zone or 0)
        left = [
            name
            for name, on in (
                (f"zone {self.zone} alarm", bool(zone and zone.alarm)),
                ("test mode", self.test_mode_set and bool(after.test_mode)),
                ("emergency lighting", bool(after.lighting_on) and not self.before_on("lighting")),
                ("broadcast", bool(self.broadcasting(after)) and not self.before_on("broadcast")),
            )
            if on
        ]
        detail = "still on: " + ", ".join(left) if left else "zone quiet, outputs off, test mode as before"
        return not left, detail, after.exchanges

    def before_on(self, effect: Effect) -> bool:
        return any(
            w.baseline_active for w in self.watches if w.target == self.subject.id and w.effect == effect
        )

    def door_item(self, d: _Door) -> _Pending:
        say = (
            f"Door {d.target.id} ({d.target.area}) stayed unlocked after the fire reset: "
            "check that nobody needs it and lock it by hand."
        )
        return _Pending("door_locked", d.target.id, partial(self.door_locked, d), (say, "lock", {}))

    async def door_locked(self, d: _Door) -> tuple[bool, str, tuple[str, ...]]:
        released, exchange, facts = await self.read_door(d)
        state = ", ".join(f"{k} {v}" for k, v in facts.items())
        return not released, ("still released: " if released else "locked: ") + state, (exchange,)


class _IntrusionTest(_LinkageTest):
    test = INTRUSION
    alert_type = "intrusion"

    def __init__(self, ctx: ProbeContext, params: IntrusionParams, camera: Target) -> None:
        super().__init__(ctx, params, camera, camera.area)
        self.lighting_deadline_s = params.deadline_lighting_s
        self.walker: _Pending | None = None  # the operator we sent into the detection zone
        self.facts["camera"] = camera.id

    async def precheck(self) -> bool:
        """Only a person can set an intrusion off; and only a camera with analytics can see one."""
        if self.kind != "guided" or self.ctx.operator is None:
            return self.stop("no_operator")
        try:
            async with OnvifClient(self.ctx.connection(self.subject)) as client:
                props = await client.event_properties()
        except CollectorError as exc:
            return self.stop("failed", _problem(exc, f"The camera's event topics could not be read: {exc}."))
        self.trigger_evidence += props.evidence
        rules = sorted(t for t in props.topics if t.startswith("RuleEngine/"))
        self.facts["analytics_topics"] = rules
        return True if rules else self.stop("no_analytics")

    def cameras(self) -> tuple[Target, ...]:
        """The area's cameras, the one the walker triggers among them."""
        cameras = super().cameras()
        return cameras if self.subject.id in {c.id for c in cameras} else (self.subject, *cameras)

    async def trigger(self) -> bool:
        """The operator walks in; the camera's own analytics event is the trigger."""
        assert self.ctx.operator is not None
        feed = self.feeds[self.subject.id]
        if feed.error is not None:
            return self.stop(
                "failed", _problem(feed.error, f"The camera's events cannot be followed: {feed.error}.")
            )
        since = self.ctx.clock()
        say = f"The intrusion test at camera {self.subject.id} is over: leave its detection zone."
        self.walker = _Pending(
            "intruder_left", self.subject.id, partial(_zone_empty, feed), (say, "clear", {})
        )
        await self.ctx.operator.instruct(
            f"Walk into the detection zone of camera {self.subject.id} ({self.area}) and stay until told.",
            device=self.subject.id,
            action="intrusion",
            params={},
        )
        end = time.monotonic() + self.params.trigger_wait_s
        while (onset := intrusion_onset(feed.heard, since)) is None:
            remaining = end - time.monotonic()
            if remaining <= 0 or feed.error is not None:
                self.facts["trigger_wait_s"] = self.params.trigger_wait_s
                return self.stop("trigger_not_seen")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, self.params.poll_s)):
                    await self.changed.wait()
        self.trigger_at = onset.at
        self.trigger_evidence.append(onset.exchange_id)
        self.facts["trigger_event"] = onset.message.topic
        when = onset.message.utc_time
        self.facts["trigger_device_time"] = when.isoformat() if when else None
        return True

    async def restore_actions(self) -> None:
        if self.walker is not None:
            await self.tell(self.walker)

    def restore_items(self) -> list[_Pending]:
        return ([self.walker] if self.walker else []) + self.relay_items() + self.camera_items()


async def _camera_clear(feed: _Feed) -> tuple[bool, str, tuple[str, ...]]:
    if feed.error is not None:
        raise feed.error
    on = current_state(feed.heard, ALARM_TOPICS, "LogicalState")
    return on is not True, "alarm still on" if on else "alarm cleared", _last(feed)


async def _zone_empty(feed: _Feed) -> tuple[bool, str, tuple[str, ...]]:
    if feed.error is not None:
        raise feed.error
    inside = current_state(feed.heard, (INSIDE_TOPIC,), "IsInside")
    return inside is not True, "objects inside" if inside else "detection zone empty", _last(feed)


def _last(feed: _Feed) -> tuple[str, ...]:
    return (feed.heard[-1].exchange_id,) if feed.heard else ()


def _problem(exc: CollectorError, detail: str) -> Problem:
    return Problem(exc.reason, detail, (exc.exchange_id,) if exc.exchange_id else ())


async def _to_the_end(restore: Awaitable[None]) -> None:
    """Run the restore to its end even when the test is cancelled meanwhile (it bounds itself); a
    cancellation that came during it is passed on afterwards."""
    task = asyncio.ensure_future(restore)
    interrupted = False
    while True:
        try:
            await asyncio.shield(task)
            break
        except asyncio.CancelledError:
            if task.done():
                raise
            interrupted = True
    if interrupted:
        raise asyncio.CancelledError


async def _finish(tasks: list[asyncio.Task[None]], wait_s: float, *, raise_errors: bool = False) -> None:
    """Let tasks end by themselves for wait_s, then cancel what is left. A task's own failure (a bug)
    is raised when asked; on the way to a restore it is not, so that the restore still runs."""
    if not tasks:
        return
    if wait_s > 0:
        await asyncio.wait(tasks, timeout=wait_s)
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
    errors = [r for r in results if isinstance(r, Exception)]
    if errors and raise_errors:
        raise errors[0]


# -- entry points -------------------------------------------------------------------------------------
async def run_fire_test(ctx: ProbeContext, panel: Target, params: FireParams) -> PanelRun:
    """A fire alarm in each chosen zone of the panel, one zone after another, each timed and restored
    before the next is set off (an interrupt restores the zone under test and starts no other)."""
    try:
        site = panel_site(panel)
        zones, sample = chosen_zones(ctx.site, panel, site, params)
    except ValueError as exc:
        at = ctx.clock()
        kind: TriggerKind = "guided" if params.guided else "remote"
        problem = Problem("inventory_invalid", f"The panel's inventory entry cannot be used: {exc}.")
        failed = LinkageRun(
            FIRE, panel.id, kind, "", params.zone, "failed", at, None, (), None, (), (), problem
        )
        return PanelRun(panel.id, (failed,), {})
    runs: list[LinkageRun] = []
    for zone, area in zones:
        runs.append(await run_zone_test(ctx, panel, params, site, zone, area))
    return PanelRun(panel.id, tuple(runs), sample)


async def run_zone_test(
    ctx: ProbeContext, panel: Target, params: FireParams, site: PanelSite, zone: int, area: str
) -> LinkageRun:
    """One fire alarm in one zone of the panel, every effect timed, everything restored."""
    test = _FireTest(ctx, params, panel, site, zone, area)
    if test.kind == "guided" and ctx.operator is None:
        test.stop("no_operator")
        return test.result()
    return await test.run()


async def run_intrusion_test(ctx: ProbeContext, camera: Target, params: IntrusionParams) -> LinkageRun:
    """One guided walk into the camera's detection zone, every effect timed, everything restored."""
    return await _IntrusionTest(ctx, params, camera).run()


async def fire_finding(
    ctx: ProbeContext, panel: Target, params: FireParams, probe: str, effect: Effect
) -> Finding:
    """A fire_linkage probe: the panel's one fire test (shared by the five), judged for one effect."""
    started = ctx.clock()
    if not ctx.allowed(FIRE):
        return not_permitted(probe, panel.id, FIRE, started)
    run: PanelRun = await ctx.shared((FIRE, panel.id), lambda: run_fire_test(ctx, panel, params))
    return judge_zones(probe, panel.id, run, effect, started, ctx.clock())


async def intrusion_finding(
    ctx: ProbeContext, camera: Target, params: IntrusionParams, probe: str, effect: Effect
) -> Finding:
    """An intrusion_linkage probe: the camera's one intrusion test (shared), judged for one effect."""
    started = ctx.clock()
    if not ctx.allowed(INTRUSION):
        return not_permitted(probe, camera.id, INTRUSION, started)
    run: LinkageRun = await ctx.shared(
        (INTRUSION, camera.id), lambda: run_intrusion_test(ctx, camera, params)
    )
    return judge_effect(probe, camera.id, run, effect, started, ctx.clock())


def fire_spec(probe: str, effect: Effect, title: str) -> ProbeSpec:
    """The declaration of a fire_linkage probe: the panel's shared test, judged for `effect`; its
    timeout is one zone's (the run allows it for each zone picked)."""

    async def run(ctx: ProbeContext, target: Target, params: FireParams) -> Finding:
        return await fire_finding(ctx, target, params, probe, effect)

    return ProbeSpec(
        probe, title, "active", ("panel",), FireParams, TIMEOUT_S, run, active_test=FIRE, members=zone_members
    )


def intrusion_spec(probe: str, effect: Effect, title: str) -> ProbeSpec:
    """The declaration of an intrusion_linkage probe: the camera's shared test, judged for `effect`."""

    async def run(ctx: ProbeContext, target: Target, params: IntrusionParams) -> Finding:
        return await intrusion_finding(ctx, target, params, probe, effect)

    return ProbeSpec(
        probe, title, "active", ("camera",), IntrusionParams, TIMEOUT_S, run, active_test=INTRUSION
    )
