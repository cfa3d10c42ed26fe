"""The MQTT probes' judging, on observations built by hand (no broker, no I/O): debounce, gaps,
windows too short to judge, stale retained statuses, and the broker-auth verdicts."""

from __future__ import annotations

import dataclasses
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from collectors.errors import ProtocolViolation, Unreachable
from collectors.mqtt.messages import LoginResult, Observation, Received, TopicSummary
from collectors.mqtt.profile import ProfileError, load_profile_file
from probes import broker_auth, gateway_status, heartbeat
from probes.base import ProbeContext
from probes.mqtt_common import (
    InventoryError,
    broker_of,
    child_ids,
    clock_skew_s,
    device_liveness,
    index_of,
    interval_of,
    judge_liveness,
    matcher_of,
    status_word,
)
from probes.targets import SiteView, Target
from zhian.config import Thresholds

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
I = 30.0  # heartbeat interval  # noqa: E741


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def msg(seconds: float, body: Any, *, retain: bool = False, raw: bytes | None = None) -> Received:
    payload = raw if raw is not None else json.dumps(body).encode()
    return Received(at(seconds), payload, len(payload), 1 if retain else 0, retain)


def status(state: str | None = "online", reason: str | None = None, *, retain: bool = True) -> TopicSummary:
    body: dict[str, Any] = {"state": state, "ts": 1}
    if reason:
        body["reason"] = reason
    m = msg(0, body, retain=retain)
    if retain:
        return TopicSummary("s", 1, 0, m, None, None, None)
    return TopicSummary("s", 1, 1, None, m, m, None)


def beats(*times: float, ts_offset_s: float = 0.0) -> TopicSummary | None:
    """A heartbeat topic with live heartbeats at these seconds after T0 (device clock off by ts_offset_s)."""
    if not times:
        return None
    received = [
        msg(t, {"seq": i, "ts": int((at(t).timestamp() + ts_offset_s) * 1000)}) for i, t in enumerate(times)
    ]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    return TopicSummary("h", len(times), len(times), None, received[0], received[-1], max(gaps, default=None))


def judge(st_: TopicSummary | None, hb: TopicSummary | None, window_s: float = 120, misses: int = 3) -> Any:
    return judge_liveness("The device", st_, hb, (T0, at(window_s)), I, misses)


# -- liveness: debounce and gaps -------------------------------------------------------------------
def test_regular_heartbeats_are_alive() -> None:
    live = judge(status(), beats(10, 40, 70, 100))
    assert (live.status, live.reason) == ("pass", "alive")
    assert live.facts["heartbeat_count"] == 4 and live.facts["missed_in_a_row"] == 0
    assert live.facts["last_seen"] == at(100).isoformat() and live.facts["status_retained"] is True


@pytest.mark.parametrize(
    ("times", "missed", "verdict"),
    [
        ((10, 70, 100), 1, "pass"),  # one lost heartbeat is not an outage
        ((10, 100), 2, "pass"),  # two lost: still debounced
        ((10, 112), 2, "pass"),  # two lost, the next one late by 0.4 interval (jitter)
        ((0, 120), 3, "fail"),  # three lost in a row: an outage
    ],
)
def test_debounce_over_missed_heartbeats(times: tuple[float, ...], missed: int, verdict: str) -> None:
    live = judge(status(), beats(*times))
    assert live.status == verdict and live.facts["missed_in_a_row"] == missed
    if verdict == "fail":
        assert live.reason == "heartbeat_gap" and live.facts["max_gap_s"] == 120


def test_one_miss_is_an_outage_when_misses_is_one() -> None:
    live = judge(status(), beats(10, 70, 100), misses=1)
    assert (live.status, live.reason) == ("fail", "heartbeat_gap")


def test_a_device_that_dies_mid_window_fails_on_the_trailing_silence() -> None:
    live = judge(status(), beats(5, 35), window_s=180)  # silent for the last 145 s
    assert (live.status, live.reason) == ("fail", "heartbeat_gap")
    assert live.facts["missed_in_a_row"] == 4 and live.facts["max_gap_s"] == 145


def test_a_device_that_comes_late_into_the_window_is_judged_on_the_leading_silence() -> None:
    assert judge(status(), beats(85, 115)).status == "pass"  # 2 intervals before the first: debounced
    assert judge(status(), beats(95, 115)).reason == "heartbeat_gap"  # 3 whole intervals


@given(
    st.floats(min_value=0.5, max_value=600),
    st.integers(min_value=1, max_value=5),
    st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=1, max_size=30),
    st.floats(min_value=0.0, max_value=1.0),
)
def test_gaps_under_the_outage_always_pass(
    interval: float, misses: int, fractions: list[float], lead: float
) -> None:
    """Heartbeats never further apart than (misses + 0.4) intervals, edges under misses intervals: alive."""
    times = [lead * (misses - 0.01) * interval]
    for f in fractions:
        times.append(times[-1] + f * (misses + 0.4) * interval)
    end = times[-1] + lead * (misses - 0.01) * interval
    live = judge_liveness("d", status(), beats(*times), (T0, at(end)), interval, misses)
    assert live.status == "pass", live.facts


@given(st.floats(min_value=0.5, max_value=600), st.integers(min_value=1, max_value=5), st.floats(0.5, 5))
def test_an_inner_gap_of_misses_intervals_always_fails(interval: float, misses: int, extra: float) -> None:
    gap = (misses + 0.5) * interval + extra
    live = judge_liveness("d", status(), beats(0, gap), (T0, at(gap)), interval, misses)
    assert (live.status, live.reason) == ("fail", "heartbeat_gap")


# -- liveness: statuses and silence ----------------------------------------------------------------
def test_retained_online_without_heartbeats_is_stale() -> None:
    live = judge(status(), None, window_s=90)
    assert (live.status, live.reason) == ("fail", "stale_online")
    assert live.facts["heartbeat_count"] == 0 and live.facts["missed_in_a_row"] == 3


def test_a_window_shorter_than_the_outage_cannot_judge_silence() -> None:
    live = judge(status(), None, window_s=60)
    assert (live.status, live.reason) == ("not_assessed", "window_too_short")
    assert live.facts["window_needed_s"] == 90 and "90 s is needed" in live.detail
    assert judge(None, None, window_s=60).reason == "window_too_short"
    assert judge(status(), beats(10, 40), window_s=60).status == "pass"  # heartbeats show life at once


def test_no_status_and_no_heartbeat_is_silent() -> None:
    live = judge(None, None)
    assert (live.status, live.reason) == ("fail", "silent") and live.facts["status"] is None


def test_offline_status_fails_whatever_the_window() -> None:
    live = judge(status("offline", "no_response"), None, window_s=5)
    assert (live.status, live.reason) == ("fail", "offline") and live.facts["status_reason"] == "no_response"
    will = judge(status("offline", "lwt"), None)
    assert will.reason == "offline" and "Last Will" in will.detail


def test_the_newest_status_wins_over_the_retained_one() -> None:
    retained = msg(0, {"state": "offline", "reason": "no_response"}, retain=True)
    back = msg(50, {"state": "online"})
    summary = TopicSummary("s", 2, 1, retained, back, back, None)
    live = judge(summary, beats(60, 90))
    assert (live.reason, live.facts["status"], live.facts["status_retained"]) == ("alive", "online", False)


def test_heartbeats_without_a_status_pass_and_say_so() -> None:
    assert judge(None, beats(10, 40, 70, 100)).reason == "alive_no_status"
    odd = judge(status("degraded"), beats(10, 40, 70, 100))
    assert odd.reason == "alive_no_status" and "'degraded'" in odd.detail


def test_status_payload_shapes() -> None:
    def one(raw: bytes) -> TopicSummary:
        m = Received(T0, raw, len(raw), 1, True)
        return TopicSummary("s", 1, 0, m, None, None, None)

    assert status_word(one(b"offline")).state == "offline"  # a bare word
    assert status_word(one(b'{"status": "ONLINE"}')).state == "online"
    assert status_word(one(b"\x00\xff")).state is None
    cut = Received(T0, b'{"state": "onl', 600, 1, True)  # cut off at the payload limit
    assert status_word(TopicSummary("s", 1, 0, cut, None, None, None)).state is None
    assert status_word(None).state is None


def test_clock_skew_from_payload_timestamps() -> None:
    live = judge(status(), beats(10, 40, 70, 100, ts_offset_s=600))
    assert live.facts["clock_skew_s"] == 600.0
    seconds = msg(10, {"ts": int(at(10).timestamp()) - 30})
    assert clock_skew_s(seconds) == -30.0
    assert clock_skew_s(msg(10, {"ts": 1}, retain=True)) is None  # a replay arrives long after it was sent
    assert clock_skew_s(msg(10, {"seq": 1})) is None


# -- inventory -------------------------------------------------------------------------------------
def device(**params: Any) -> Target:
    base = {
        "broker": "broker",
        "topic_root": "zhian-sim/",
        "site": "site",
        "gateway": "gw",
        "heartbeat_s": 0.5,
    }
    return Target("d1", "mqtt_device", "mqtt", "127.0.0.1", 8883, "a", params=base | params)


def test_inventory_helpers() -> None:
    m = matcher_of(device())
    assert (m.root, m.site, m.gateway, m.profile.name) == ("zhian-sim", "site", "gw", "zhian")
    assert m.filters == ("zhian-sim/site/+/+/status", "zhian-sim/site/+/+/heartbeat")
    with pytest.raises(InventoryError, match="no topic root or site level"):
        matcher_of(device(site=""))
    with pytest.raises(InventoryError, match="no MQTT profile 'acme' shipped"):
        matcher_of(device(profile="acme"))
    z2m = matcher_of(device(profile="zigbee2mqtt", topic_root=None, site=None))
    assert (z2m.root, z2m.filters) == ("zigbee2mqtt", ("zigbee2mqtt/#",))
    assert interval_of(device(), 30) == (0.5, "inventory")
    assert interval_of(device(heartbeat_s=None), 30) == (30, "threshold")
    assert child_ids([{"id": "a"}, "b", {"x": 1}, 3]) == ["a", "b"]
    assert child_ids(None) == []
    cam = Target("broker", "camera", "onvif", "127.0.0.1", 80, "a")
    ctx = ProbeContext(site=SiteView("t", (cam,)), sink=lambda _: None)
    with pytest.raises(InventoryError, match="not a broker"):
        broker_of(ctx, device())
    with pytest.raises(InventoryError, match="not in the inventory"):
        broker_of(ctx, device(broker="elsewhere"))


async def test_an_unusable_inventory_entry_is_an_error_before_any_io() -> None:
    ctx = ProbeContext(site=SiteView("t", ()), sink=lambda _: None)
    found = await heartbeat.run(ctx, device(), heartbeat.Params())
    assert (found.status, found.reason) == ("error", "inventory_invalid") and "broker" in found.detail
    broker = Target("broker", "broker", "mqtt", "127.0.0.1", 8883, "a")
    ctx = ProbeContext(site=SiteView("t", (broker,)), sink=lambda _: None)
    found = await heartbeat.run(ctx, device(gateway=None), heartbeat.Params())
    assert found.reason == "inventory_invalid" and "gateway" in found.detail


def test_params_take_the_config_thresholds() -> None:
    """The run passes config thresholds of the same name: the names must match."""
    for spec in (heartbeat.SPEC, gateway_status.SPEC):
        assert set(spec.params.model_fields) <= set(Thresholds.model_fields)
    with pytest.raises(ValidationError):
        heartbeat.Params(heartbeat_misses=0)
    with pytest.raises(ValidationError):
        heartbeat.Params.model_validate({"observe": 3})


def test_silence_while_the_broker_was_away_is_not_the_devices() -> None:
    """A broker restart from 100 s to 250 s: the silence inside it is not counted, silence outside is."""
    gap = [(at(100), at(250))]
    around = beats(10, 40, 70, 90, 260, 290)  # 170 s between 90 and 260, of which 150 s without us
    live = judge_liveness("d", status(), around, (T0, at(300)), I, 3, gaps=gap)
    assert (live.status, live.reason) == ("pass", "alive") and live.facts["broker_gap_s"] == 150
    assert judge_liveness("d", status(), around, (T0, at(300)), I, 3).reason == "heartbeat_gap"
    stopped = beats(10, 40, 70)  # then nothing: 230 s, of which 80 s outside the gap
    late = judge_liveness("d", status(), stopped, (T0, at(300)), I, 3, gaps=gap)
    assert (late.status, late.reason, late.facts["missed_in_a_row"]) == ("pass", "alive", 2)
    gone = judge_liveness("d", status(), stopped, (T0, at(400)), I, 3, gaps=gap)
    assert (gone.status, gone.reason) == ("fail", "heartbeat_gap")  # 180 s of its own silence


# -- gateway children ------------------------------------------------------------------------------
def test_gateway_counts_its_children_by_reason() -> None:
    def topic(device: str, leaf: str) -> str:
        return f"zhian-sim/site/gw/{device}/{leaf}"

    alive = beats(10, 40, 70, 100)
    assert alive is not None
    topics = {
        topic("c1", "status"): status(),
        topic("c1", "heartbeat"): alive,
        topic("c2", "status"): status(),  # stale
        topic("c3", "status"): status("offline", "no_response"),
    }
    m = matcher_of(device())
    obs = Observation("b:8883", m.filters, T0, at(120), topics, 5, 0, "ex-1")
    facts = gateway_status.children_facts(obs, index_of(obs, m), ["c1", "c2", "c3", "c4"], I, 3)
    assert facts["children"] == 4
    assert facts["children_by_reason"] == {"alive": 1, "offline": 1, "silent": 1, "stale_online": 1}
    assert facts["children_not_alive"] == {"offline": ["c3"], "silent": ["c4"], "stale_online": ["c2"]}


def test_a_device_publishing_past_the_bound_is_its_own_error() -> None:
    """Heartbeats on time, but one payload past limits.max_reply_bytes: the device is that error (its
    first bytes the evidence), its neighbours are judged as usual."""

    def topic(device: str, leaf: str) -> str:
        return f"zhian-sim/site/gw/{device}/{leaf}"

    beat = beats(10, 40, 70, 100)
    assert beat is not None
    flooding = dataclasses.replace(beat, oversize=1, oversize_bytes=9_000_000)
    topics = {
        topic("c1", "status"): status(),
        topic("c1", "heartbeat"): flooding,
        topic("c2", "status"): status(),
        topic("c2", "heartbeat"): beat,
    }
    m = matcher_of(device())
    named = {name: dataclasses.replace(s, topic=name) for name, s in topics.items()}
    obs = Observation("b:8883", m.filters, T0, at(120), named, 8, 0, "ex-1", max_payload_bytes=1 << 20)
    index = index_of(obs, m)
    big = device_liveness("The device", obs, index, "c1", I, 3)
    assert (big.status, big.reason) == ("error", "reply_too_large")
    assert big.facts == {
        "topic": topic("c1", "heartbeat"),
        "oversize_messages": 1,
        "payload_bytes": 9_000_000,
        "max_reply_bytes": 1 << 20,
    }
    assert "9000000 bytes" in big.detail and "limits.max_reply_bytes" in big.detail
    assert device_liveness("The device", obs, index, "c2", I, 3).reason == "alive"


# -- broker auth -----------------------------------------------------------------------------------
def login(accepted: bool, ex: str) -> LoginResult:
    return LoginResult(accepted, 0 if accepted else 135, "Success" if accepted else "Not authorized", ex)


def trials(
    *,
    control: bool | None = True,
    anonymous: bool = False,
    wrong: bool | None = False,
    plain: broker_auth.PlainListener | None = None,
) -> broker_auth.AuthTrials:
    return broker_auth.AuthTrials(
        "inspector",
        None if control is None else login(control, "ex-control"),
        login(anonymous, "ex-anon"),
        None if wrong is None else login(wrong, "ex-wrong"),
        plain,
    )


def auth(t: broker_auth.AuthTrials, tls: bool = True) -> tuple[str, str, dict[str, Any], tuple[str, ...]]:
    f = broker_auth.judge("broker", tls, t, T0, T0)
    return f.status, f.reason, f.facts, f.evidence


CLOSED = broker_auth.PlainListener(1883, False, None, Unreachable("refused", exchange_id="ex-plain"))


def test_auth_enforced_passes() -> None:
    status_, reason, facts, evidence = auth(trials(plain=CLOSED))
    assert (status_, reason) == ("pass", "auth_enforced")
    assert facts["plain_listener_open"] is False and facts["failed_logins_made"] == 2
    assert evidence == ("ex-control", "ex-anon", "ex-wrong", "ex-plain")


@pytest.mark.parametrize(
    ("t", "expected"),
    [
        (trials(anonymous=True), ("fail", "anonymous_allowed")),
        (trials(wrong=True), ("fail", "wrong_password_accepted")),
        (trials(anonymous=True, wrong=True), ("fail", "anonymous_allowed")),
        (trials(control=None, wrong=None), ("not_assessed", "no_account")),
        (trials(control=False, wrong=None), ("error", "auth_failed")),
        (trials(control=None, anonymous=True, wrong=None), ("fail", "anonymous_allowed")),
    ],
)
def test_auth_verdicts(t: broker_auth.AuthTrials, expected: tuple[str, str]) -> None:
    assert auth(t)[:2] == expected


def test_anonymous_on_the_plain_port_alone_fails() -> None:
    plain = broker_auth.PlainListener(1883, True, login(True, "ex-plain"), None)
    status_, reason, facts, _ = auth(trials(plain=plain))
    assert (status_, reason) == ("fail", "anonymous_allowed")
    assert facts["plain_listener_open"] is True and facts["plain_anonymous_accepted"] is True
    assert facts["anonymous_accepted"] is False


def test_a_plain_port_that_is_not_mqtt_is_reported_as_unknown() -> None:
    odd = broker_auth.PlainListener(1883, False, None, ProtocolViolation("not MQTT", exchange_id="ex-plain"))
    _, reason, facts, evidence = auth(trials(plain=odd))
    assert (
        reason == "auth_enforced"
        and facts["plain_listener_open"] is None
        and "not MQTT" in facts["plain_error"]
    )
    assert "ex-plain" in evidence


def test_without_tls_the_only_listener_is_plain() -> None:
    _, reason, facts, _ = auth(trials(), tls=False)
    assert (
        reason == "auth_enforced" and facts["tls_offered"] is False and facts["plain_listener_open"] is True
    )


# -- profiles: zigbee2mqtt, Home Assistant discovery, a site's own -----------------------------------
def window(topics: dict[str, TopicSummary], m: Any) -> Observation:
    named = {name: dataclasses.replace(s, topic=name) for name, s in topics.items()}
    return Observation("b:1883", m.filters, T0, at(120), named, len(topics), 0, "ex-1")


def live(*times: float, body: Any = None) -> TopicSummary:
    """A topic with live messages at these seconds (a device's state, each a sign of life)."""
    sent = [msg(t, body if body is not None else {"last_seen": int(at(t).timestamp() * 1000)}) for t in times]
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(sent)]
    return TopicSummary("t", len(sent), len(sent), None, sent[0], sent[-1], max(gaps) if gaps else None)


def retained(payload: bytes) -> TopicSummary:
    return TopicSummary("t", 1, 0, msg(0, None, retain=True, raw=payload), None, None, None)


def test_zigbee2mqtt_devices_and_bridge() -> None:
    m = matcher_of(device(profile="zigbee2mqtt", topic_root="z2m", site=None, gateway="bridge-1"))
    topics = {
        "z2m/bridge/state": retained(b'{"state":"online"}'),
        "z2m/bridge/info": retained(b"{}"),  # not a device
        "z2m/smoke-1": live(10, 40, 70, 100),
        "z2m/smoke-1/availability": retained(b'{"state":"online"}'),
        "z2m/smoke-2/availability": retained(b'{"state":"online"}'),  # stale: no state in the window
        "z2m/gas-1/availability": retained(b"offline"),  # the legacy bare payload
    }
    obs = window(topics, m)
    index = index_of(obs, m)
    judged = {
        d: device_liveness("", obs, index, d, I, 3).reason
        for d in ("smoke-1", "smoke-2", "gas-1", "bridge-1")
    }
    assert judged == {"smoke-1": "alive", "smoke-2": "stale_online", "gas-1": "offline", "bridge-1": "alive"}
    assert m.alarm(b'{"smoke": true, "battery": 90}') == "smoke"
    assert m.alarm(b'{"action": "emergency"}') == "action:emergency"
    assert m.alarm(b'{"smoke": false}') is None


def test_home_assistant_discovery_gives_each_entitys_topics() -> None:
    m = matcher_of(device(profile="homeassistant", topic_root="homeassistant", site=None, gateway="hub"))
    smoke = {
        "~": "site/hub/smoke-1",
        "stat_t": "~/state",
        "avty_t": "~/avail",
        "pl_avail": "up",
        "pl_not_avail": "down",
    }
    gas = {"state_topic": "site/hub/gas-1/state", "availability": [{"topic": "site/hub/gas-1/availability"}]}
    topics = {
        "homeassistant/binary_sensor/smoke-1/alarm/config": retained(json.dumps(smoke).encode()),
        "homeassistant/binary_sensor/gas-1/alarm/config": retained(json.dumps(gas).encode()),
        "site/hub/smoke-1/state": live(5, 35, 65, 95, body="OFF"),
        "site/hub/smoke-1/avail": retained(b"up"),
        "site/hub/gas-1/availability": retained(b"offline"),
    }
    obs = window(topics, m)
    index = index_of(obs, m)
    reasons = {d: device_liveness("", obs, index, d, I, 3).reason for d in ("smoke-1", "gas-1")}
    assert reasons == {"smoke-1": "alive", "gas-1": "offline"}
    assert m.filters == ("#",)


def test_a_sites_own_profile_is_validated_at_load(tmp_path: Path) -> None:
    own = tmp_path / "vendor.yaml"
    own.write_text(
        "name: acme\ndocument: the vendor's manual\ntopic_root: acme\nsubscribe: ['{root}/#']\n"
        "topics:\n  - {pattern: '{root}/dev/{device}/online', role: status}\n"
        "  - {pattern: '{root}/dev/{device}/beat', role: heartbeat}\n"
        "status: {fields: [v], online: ['1'], offline: ['0']}\n",
        encoding="utf-8",
    )
    m = matcher_of(device(profile_file=str(own), topic_root=None, site=None))
    topics = {"acme/dev/d1/online": retained(b'{"v": "0"}'), "acme/dev/d1/beat": live(1)}
    obs = window(topics, m)
    assert device_liveness("", obs, index_of(obs, m), "d1", I, 3).reason == "offline"
    own.write_text(own.read_text().replace("role: heartbeat", "role: pulse"), encoding="utf-8")
    with pytest.raises(ProfileError, match=r"vendor.yaml: topics.1.role: Input should be"):
        load_profile_file(own)
