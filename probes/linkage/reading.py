"""Reading the site's answers during a linkage (no I/O): alarm and intrusion events, door
and relay states, platform alerts."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from collectors.isapi import DoorStatus
from collectors.mqtt.messages import TopicSummary
from collectors.onvif_events import PulledMessage
from collectors.platform import PlatformAlert
from probes.linkage.params import (
    ALARM_TOPICS,
    DOOR_MODE_TOPIC,
    ISAPI_REMAIN_OPEN,
    ISAPI_UNLOCKED,
    RELEASED_MODES,
    TRUE_WORDS,
)
from probes.mqtt_common import payload_object


@dataclass(frozen=True)
class Heard:
    """One ONVIF event message as zhian received it (zhian's clock) and the pull that carried it."""

    at: datetime
    message: PulledMessage
    exchange_id: str
    # the return of the subscription's previous pull, when known: the message came after it (a long
    # poll returns as soon as one comes), so a trigger heard here is timed from then, an upper bound
    after: datetime | None = None


def _truthy(value: object) -> bool:
    return str(value).strip().lower() in TRUE_WORDS


def alarm_state(message: PulledMessage) -> bool | None:
    """The alarm input/output state a message reports; None when it reports none."""
    if message.topic not in ALARM_TOPICS or "LogicalState" not in message.data:
        return None
    return _truthy(message.data["LogicalState"])


def alarm_onset(heard: Sequence[Heard], trigger_at: datetime) -> tuple[bool, Heard | None]:
    """(the alarm was on when the trigger came, the first alarm raised after the trigger)."""
    return onset(heard, trigger_at, alarm_state)


def door_mode_released(message: PulledMessage) -> bool | None:
    """A door's DoorMode event: released (Unlocked, LockedOpen) or not; None for other messages."""
    if message.topic != DOOR_MODE_TOPIC or "State" not in message.data:
        return None
    return door_released(message.data["State"])


def onset(
    heard: Sequence[Heard], trigger_at: datetime, state_of: Callable[[PulledMessage], bool | None]
) -> tuple[bool, Heard | None]:
    """(the state was on when the trigger came, the first message after it that turns it on). A
    synchronization's "Initialized" state after the trigger tells no moment, so it is no onset."""
    active = False
    for h in heard:
        state = state_of(h.message)
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
    return relay_body_on(payload_object(received))


def relay_body_on(body: dict[str, Any] | None) -> bool | None:
    """A relay message's {"on": bool}; None when it says nothing of it."""
    value = body.get("on") if body is not None else None
    return value if isinstance(value, bool) else None


def alert_matches(alert: PlatformAlert, device: str, area: str) -> bool:
    """The platform's alert for this trigger (its type already filtered): for the device or its area."""
    return alert.device == device or alert.area == area
