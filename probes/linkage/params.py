"""What a linkage test is told (its parameters) and the names it reports in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from probes.base import Sample

FIRE = "fire_linkage"
INTRUSION = "intrusion_linkage"
TIMEOUT_S = 600.0  # one trigger: a guided trigger wait, the deadlines and the restore, with room to spare

Effect = Literal["doors", "video", "lighting", "broadcast", "alert"]
TriggerKind = Literal["remote", "guided", "real"]  # real: an alarm the monitor saw, nothing set off
Outcome = Literal["triggered", "trigger_not_seen", "site_in_alarm", "no_operator", "no_analytics", "failed"]
WatchStatus = Literal["on_time", "late", "missing", "error", "already_active"]

# ONVIF DoorMode values of a released door (Accessed is one person's momentary grant, not a release).
RELEASED_MODES = frozenset({"Unlocked", "LockedOpen"})
ISAPI_UNLOCKED, ISAPI_REMAIN_OPEN = 1, 2  # AcsWorkStatus doorLockStatus / doorStatus codes
ALARM_TOPICS = ("Device/Trigger/DigitalInput", "Device/Trigger/Relay")  # a linkage's alarm input/output
INSIDE_TOPIC = "RuleEngine/FieldDetector/ObjectsInside"
DOOR_MODE_TOPIC = "Door/State/DoorMode"
TRUE_WORDS = frozenset({"true", "1", "active", "on"})
PULL_WAIT_S = 0.5  # PullMessages long poll: short, so a test stops within it
SYNC_WAIT_S = 3.0  # for a synchronization point's states to come back (a live pull point: at once)
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
class TestParams(BaseModel):
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


class FireParams(TestParams):
    zone: int | None = Field(default=None, ge=1)  # only this zone; None: the zones with expected effects
    sample: Sample | None = None  # the run's pick among those zones (None: every one)
    deadline_doors_unlock_s: float = Field(default=10, gt=0)
    deadline_emergency_lighting_s: float = Field(default=10, gt=0)
    deadline_broadcast_s: float = Field(default=15, gt=0)


class IntrusionParams(TestParams):
    deadline_lighting_s: float = Field(default=10, gt=0)
