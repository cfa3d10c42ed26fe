"""Judging of recording_alive, event_service and door_alarms, without a device."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collectors.errors import DeviceRejected, Unreachable
from collectors.onvif_doors import DoorCapabilities, DoorInfo, DoorState
from collectors.onvif_events import SubscriptionLost
from collectors.onvif_recording import Recording
from probes import door_alarms, event_service
from probes.event_service import Lifecycle, topic_facts
from probes.recording_alive import judge_alive

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def recording(latest: datetime | None) -> Recording:
    return Recording("REC_1", "", "cam1", "", "", NOW - timedelta(days=30), latest, "Recording", ())


def test_recording_alive_on_the_recorders_clock() -> None:
    fresh = judge_alive(recording(NOW - timedelta(seconds=40)), NOW, 300)
    assert (fresh.status, fresh.reason, fresh.facts["age_s"]) == ("pass", "recording", 40.0)
    stale = judge_alive(recording(NOW - timedelta(minutes=20)), NOW, 300)
    assert (stale.status, stale.reason, stale.facts["age_s"]) == ("fail", "recording_stale", 1200.0)
    assert judge_alive(recording(NOW + timedelta(seconds=2)), NOW, 300).facts["age_s"] == 0
    empty = judge_alive(recording(None), NOW, 300)
    assert (empty.status, empty.facts["age_s"]) == ("fail", None)
    assert judge_alive(recording(NOW - timedelta(seconds=300)), NOW, 300).status == "pass"  # at the limit


TOPICS = frozenset(
    {
        "VideoSource/SignalLoss",
        "VideoSource/GlobalSceneChange/ImagingService",
        "RuleEngine/LineDetector/Crossed",
        "Device/Trigger/DigitalInput",
    }
)


def life(step: str = "done", refused: DeviceRejected | None = None, renewed: float | None = 60) -> Lifecycle:
    return Lifecycle(step, 4, renewed, refused, ("e2",))


def test_topic_facts() -> None:
    facts = topic_facts(TOPICS)
    assert facts["video_loss"] and facts["tamper"] and facts["digital_input"]
    assert facts["analytics_topics"] == ["RuleEngine/LineDetector/Crossed"]
    assert not topic_facts({"Door/State/DoorAlarm"})["tamper"]


def test_event_service_judgement() -> None:
    ok = event_service.judge("cam1", TOPICS, life(), ("e1", "e2"), NOW, NOW)
    assert (ok.status, ok.reason, ok.facts["topic_count"]) == ("pass", "events_live", 4)
    lost = SubscriptionLost("gone", code="wsrf-r:ResourceUnknownFault")
    dead = event_service.judge("cam1", TOPICS, life("renew", lost), ("e1",), NOW, NOW)
    assert (dead.status, dead.reason, dead.facts["code"]) == (
        "error",
        "subscription_dead",
        "wsrf-r:ResourceUnknownFault",
    )
    assert "renew" in dead.detail
    expired = event_service.judge("cam1", TOPICS, life(renewed=0), ("e1",), NOW, NOW)
    assert expired.reason == "subscription_dead"
    empty = event_service.judge("cam1", frozenset(), life(), ("e1",), NOW, NOW)
    assert (empty.status, empty.reason) == ("fail", "no_topics")


def test_a_refused_subscription_fails_one_that_dies_is_an_error() -> None:
    """Refused at creation: the device's event service fails. Made, then gone, unanswered, past its
    termination or deaf: what its events would show could not be observed (error, never a fail)."""
    refusal = DeviceRejected("no", code="wsnt:SubscribeCreationFailedFault")
    refused = event_service.judge("d1", TOPICS, life("create", refusal), ("e1",), NOW, NOW)
    assert (refused.status, refused.reason) == ("fail", "subscription_dead")
    hung = Unreachable("no reply within 5 s", timed_out=True, exchange_id="e3")
    mute = event_service.judge("d1", TOPICS, life("wait", hung), ("e1",), NOW, NOW)
    assert (mute.status, mute.reason, mute.facts["error"]) == ("error", "subscription_dead", str(hung))
    assert "wait" in mute.detail and "code" not in mute.facts
    late = Lifecycle("sync", 4, 60, None, ("e2",), None, past_termination=True)
    assert event_service.judge("d1", TOPICS, late, (), NOW, NOW).reason == "subscription_dead"
    deaf = event_service.judge("d1", TOPICS, Lifecycle("done", 4, 60, None, ("e2",), False), (), NOW, NOW)
    assert (deaf.status, deaf.reason, deaf.facts["sync_heard"]) == ("error", "subscription_silent", False)
    unchecked = Lifecycle("done", 0, 60, None, ("e2",), None)  # no state to re-send: not judged deaf
    assert event_service.judge("d1", TOPICS, unchecked, ("e1",), NOW, NOW).status == "pass"


def door(token: str = "Door_1", **caps: bool) -> DoorInfo:
    return DoorInfo(token, token, DoorCapabilities(**{"door_monitor": True, "alarm": True, **caps}))


def state(token: str = "Door_1", alarm: str | None = "Normal", physical: str | None = "Closed") -> DoorState:
    return DoorState(token, "Locked", physical, "Locked", alarm, f"x-{token}")


ALARM_TOPICS = frozenset({"Door/State/DoorAlarm", "Door/State/DoorPhysicalState"})


def test_door_alarms_judgement() -> None:
    ok = door_alarms.judge("d", ALARM_TOPICS, [(door(), state())], ("e",), NOW, NOW)
    assert (ok.status, ok.facts["forced_open_supported"], ok.facts["active_alarms"]) == ("pass", True, {})
    forced = door_alarms.judge("d", ALARM_TOPICS, [(door(), state(alarm="DoorForcedOpen"))], ("e",), NOW, NOW)
    assert forced.status == "pass" and forced.facts["active_alarms"] == {"Door_1": "DoorForcedOpen"}
    blind = door_alarms.judge(
        "d",
        ALARM_TOPICS,
        [(door(), state()), (door("Door_2", door_monitor=False), state("Door_2"))],
        ("e",),
        NOW,
        NOW,
    )
    assert (blind.status, blind.reason) == ("fail", "no_forced_open_alarm")
    assert blind.facts["missing"] == ["Door_2: door contact (DoorMonitor)"]
    silent = door_alarms.judge("d", frozenset({"Door/State/DoorMode"}), [(door(), state())], ("e",), NOW, NOW)
    assert (
        silent.facts["missing"] == ["event topic tns1:Door/State/DoorAlarm"]
        and not silent.facts["alarm_topic"]
    )
    none = door_alarms.judge("d", ALARM_TOPICS, [], ("e",), NOW, NOW)
    assert (none.status, none.reason) == ("fail", "no_forced_open_alarm")
    unread = door_alarms.judge("d", ALARM_TOPICS, [(door(), state(alarm=None))], ("e",), NOW, NOW)
    assert (unread.status, unread.reason) == ("fail", "door_state_unreadable")
