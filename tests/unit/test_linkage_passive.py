"""Reading a real alarm's effects from what the monitor heard (no I/O): the state before the trigger
and the first message after it that shows the effect."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collectors.onvif_events import PulledMessage
from probes.linkage.reading import Heard, door_mode_released, onset

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def door(at_s: float, mode: str, operation: str | None = "Changed") -> Heard:
    message = PulledMessage("Door/State/DoorMode", None, operation, {"DoorToken": "Door_1"}, {"State": mode})
    return Heard(T0 + timedelta(seconds=at_s), message, f"x{at_s}")


def test_a_door_released_after_the_trigger_is_timed_from_its_event() -> None:
    heard = [door(-5, "Locked", "Initialized"), door(1.5, "Unlocked")]
    active, first = onset(heard, T0, door_mode_released)
    assert not active and first is not None and first.at == T0 + timedelta(seconds=1.5)


def test_a_door_open_before_the_trigger_cannot_be_timed() -> None:
    heard = [door(-5, "Unlocked", "Initialized"), door(2, "LockedOpen")]
    active, _ = onset(heard, T0, door_mode_released)
    assert active


def test_a_synchronization_after_the_trigger_tells_no_moment() -> None:
    """Released only in a synchronization's "Initialized" state: when it happened is unknown."""
    heard = [door(-5, "Locked", "Initialized"), door(3, "Unlocked", "Initialized")]
    assert onset(heard, T0, door_mode_released) == (False, None)


def test_other_topics_say_nothing_of_a_door() -> None:
    message = PulledMessage("Door/State/DoorAlarm", None, "Changed", {}, {"State": "Normal"})
    assert door_mode_released(message) is None
