"""The monitor's status board and heartbeat tracker, without a network."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from mapping.catalog import load_catalog
from mapping.rules import judge, load_rules
from probes.finding import Finding
from probes.mqtt_common import matcher_of
from probes.targets import Target
from zhian.monitor.board import UNKNOWN, Board
from zhian.monitor.heartbeats import Device, HeartbeatTracker
from zhian.monitor.metrics import DeviceLines

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def retention(days: float, status: str) -> Finding:
    facts = {"observed_days": days, "required_days": 30}
    return Finding("retention", "cam-1", status, "kept" if status == "pass" else "retention_short",  # type: ignore[arg-type]
                   f"{days} days", facts, ("ex-1",), finished_at=T0)  # fmt: skip


def board() -> tuple[Board, str]:
    rules = load_rules()
    indicator = next(r.indicator for r in rules.rules if "retention" in r.probes)
    return Board(rules, load_catalog(), {indicator: {("retention", "cam-1")}}), indicator


def test_retention_dropping_below_30_days_between_two_checks_is_a_change() -> None:
    b, indicator = board()
    assert b.observe(retention(35.0, "pass")) == UNKNOWN
    assert [(i, old, new.status) for i, old, new in b.judge_dirty(T0)] == [(indicator, UNKNOWN, "pass")]
    assert b.observe(retention(34.0, "pass")) is None  # unchanged status: nothing to record
    assert b.judge_dirty(T0) == []
    assert b.observe(retention(29.5, "fail")) == "pass"
    assert [(old, new.status) for _, old, new in b.judge_dirty(T0)] == [("pass", "fail")]


def test_a_restart_from_the_snapshot_records_nothing_twice_and_still_holds_daily() -> None:
    b, indicator = board()
    b.observe(retention(29.5, "fail"))
    b.judge_dirty(T0)
    again, _ = board()
    again.restore(b.snapshot())
    assert again.observe(retention(29.0, "fail")) is None
    assert again.judge_dirty(T0) == []
    assert again.still_holding(T0 + timedelta(hours=23), 86400) == []
    [(held, state)] = again.still_holding(T0 + timedelta(days=1), 86400)
    assert (held, state.status, state.since) == (indicator, "fail", T0.isoformat())


def test_replayed_records_of_a_killed_segment_count_as_seen() -> None:
    b, _ = board()
    body = {"kind": "finding", "change": {"from": UNKNOWN, "to": "fail"}, "finished_at": T0.isoformat()}
    b.replay(
        [body | {"probe": "retention", "device": "cam-1", "status": "fail", "reason": "retention_short"}]
    )
    assert b.observe(retention(29.0, "fail")) is None


def device(threshold_s: float) -> Device:
    tree = {"topic_root": "root", "site": "site", "gateway": "gw"}
    target = Target("d1", "mqtt_device", "mqtt", "127.0.0.1", 1883, "a1", params=tree)
    return Device(target, "heartbeat", "broker", threshold_s, threshold_s / 3, matcher_of(target))


def test_tracker_flags_silence_stale_online_offline_and_holds_judgement_through_a_gap() -> None:
    seen: list[tuple[str, str]] = []
    d = device(1.0)  # a threshold no pause of a loaded machine between two lines below reaches
    tracker = HeartbeatTracker([d], lambda _, f: seen.append((f.status, f.reason)))
    topic = "root/site/gw/d1/"
    tracker.subscribed("broker", "ex-sub")
    tracker.message(topic + "status", b'{"state": "online"}', True, T0)
    assert tracker.expire() > 0 and seen == []  # within the first threshold: not judged yet
    time.sleep(1.05)
    tracker.expire()
    assert seen == []  # past the threshold, but the subscription has not said it read everything
    tracker.caught_up("broker")
    tracker.expire()
    assert seen == [("fail", "stale_online")]  # a retained "online" and no heartbeat
    tracker.message(topic + "heartbeat", b"{}", False, T0)
    assert seen[-1] == ("pass", "alive")
    tracker.lost("broker")
    time.sleep(1.05)
    tracker.expire()
    assert seen[-1] == ("pass", "alive")  # the gap is not the device's silence
    tracker.subscribed("broker", "ex-sub-2")
    tracker.expire()
    assert seen[-1] == ("pass", "alive")
    tracker.message(topic + "status", b'{"state": "offline", "reason": "lwt"}', True, T0)
    assert seen[-1] == ("fail", "offline")  # a Will: at once, no threshold
    assert len(seen) == 3


def test_a_backlog_of_unread_messages_is_not_silence() -> None:
    """The monitor reading late (its own load) must not flag devices whose heartbeats wait unread."""
    seen: list[tuple[str, str]] = []
    d = device(0.5)
    tracker = HeartbeatTracker([d], lambda _, f: seen.append((f.status, f.reason)))
    topic = "root/site/gw/d1/heartbeat"
    tracker.subscribed("broker", "ex-sub")
    tracker.message(topic, b"{}", False, T0)
    tracker.caught_up("broker")
    time.sleep(0.6)  # the next heartbeat is late in the socket: nothing says it was read
    assert tracker.expire() > 0 and seen == [("pass", "alive_no_status")]
    assert tracker.behind_s(time.monotonic())["broker"] >= 0.6
    tracker.message(topic, b"{}", False, T0)  # read at last, then everything is read
    tracker.caught_up("broker")
    tracker.expire()
    assert seen == [("pass", "alive_no_status")]  # no silence in between
    time.sleep(0.6)
    tracker.caught_up("broker")  # really silent: read up to now, and nothing came
    tracker.expire()
    assert seen[-1] == ("fail", "silent")


def test_a_topic_is_routed_once_to_its_device_among_many_gateways() -> None:
    devices = []
    for g in range(50):
        tree = {"topic_root": "root", "site": "site", "gateway": f"gw{g}"}
        target = Target(f"d{g}", "mqtt_device", "mqtt", "127.0.0.1", 1883, "a1", params=tree)
        devices.append(Device(target, "heartbeat", "broker", 9.0, 3.0, matcher_of(target)))
    seen: list[str] = []
    tracker = HeartbeatTracker(devices, lambda dev, f: seen.append(dev.target.id))
    tracker.subscribed("broker", "ex-sub")
    for _ in range(2):
        tracker.message("root/site/gw7/d7/heartbeat", b"{}", False, T0)
        tracker.message("root/site/gw7/d8/heartbeat", b"{}", False, T0)  # d8 is gw8's, not gw7's
    assert seen == ["d7"] and devices[7].last_beat is not None and devices[8].last_beat is None
    assert set(tracker._routes) == {"root/site/gw7/d7/heartbeat", "root/site/gw7/d8/heartbeat"}


def test_device_lines_parse_as_prometheus_reads_them_with_labels_escaped() -> None:
    odd = Target('cam "2"\\x', "camera", "onvif", "127.0.0.1", 80, "area\nB")
    d = device(9.0)
    tracker = HeartbeatTracker([d], lambda *_: None)
    lines = DeviceLines([d.target, odd], tracker, lambda: {odd.id: False})
    assert tracker.judged == 0
    tracker.subscribed("broker", "ex-sub")
    tracker.message("root/site/gw/d1/heartbeat", b"{}", False, T0)
    assert tracker.judged == 1
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(lines.text())
        for s in family.samples
    }
    assert samples.keys() == {
        ("zhian_device_up", (("area", "a1"), ("device", "d1"), ("kind", "mqtt_device"))),
        ("zhian_device_up", (("area", "area\nB"), ("device", 'cam "2"\\x'), ("kind", "camera"))),
        ("zhian_heartbeat_age_seconds", (("device", "d1"),)),
    }
    assert samples[("zhian_device_up", (("area", "a1"), ("device", "d1"), ("kind", "mqtt_device")))] == 1.0
    assert 0 <= samples[("zhian_heartbeat_age_seconds", (("device", "d1"),))] < 5


def test_the_board_judges_from_its_tallies_as_judge_does_over_the_latest_findings() -> None:
    rules, catalog = load_rules(), load_catalog()
    heartbeat = [r for r in rules.rules if "heartbeat" in r.probes]
    devices = [f"d{n}" for n in range(12)]
    scope = {r.indicator: {("heartbeat", d) for d in devices} for r in heartbeat}
    b = Board(rules, catalog, scope)
    rng = random.Random(7)
    outcomes = [("pass", "alive", None), ("fail", "silent", None), ("fail", "stale_online", None),
                ("error", "unreachable", None), ("not_assessed", "no_data", None),
                ("partial", "some", 0.5)]  # fmt: skip
    for step in range(400):
        status, reason, ratio = rng.choice(outcomes)
        device = rng.choice(devices)
        b.observe(Finding("heartbeat", device, status, reason, "", {}, ("ex",), ratio=ratio, finished_at=T0))  # type: ignore[arg-type]
        if step % 7 == 0:
            b.judge_dirty(T0)
            for rule in heartbeat:
                basic = catalog.get(rule.indicator).kind == "basic"
                mine = [f for k, f in b.latest.items() if k in scope[rule.indicator]]
                expected = judge(rule, mine, basic)
                state = b.indicators[rule.indicator]
                assert (state.status, state.ratio) == (expected.status, expected.ratio), step
                assert sorted(state.note.split("; ")[0].split(", ")) == sorted(
                    expected.note.split("; ")[0].split(", ")
                )
