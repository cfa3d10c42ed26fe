"""What the MQTT probes share: where a device's topics are (its gateway's profile, shipped in
collectors/mqtt/profiles/ or the site's own file), one observation window per broker and run
(fetch once, judge many: 5,000 devices share one subscription), and liveness judged from a
retained status and live signs of life (docs/mqtt-topics.md for zhian's own tree).

A retained "online" can outlive its device: the broker keeps replaying it after the gateway lost
the child, or after the gateway itself died (its Will covers only its own status). Only heartbeats
seen during the window show a device alive; and only a silence of `misses` heartbeats in a row is
an outage, so one lost QoS 0 heartbeat never fails a device.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from collectors.mqtt.client import MqttClient
from collectors.mqtt.messages import Observation, Received, TopicSummary
from collectors.mqtt.profile import (
    ROLES,
    Matcher,
    MqttProfile,
    ProfileError,
    load_profile,
    load_profile_file,
    matcher,
)
from probes.base import ProbeContext, apart
from probes.finding import Status
from probes.targets import Target

ONLINE, OFFLINE = "online", "offline"


class InventoryError(ValueError):
    """The inventory's entry for an MQTT device cannot be used (no broker, profile, root or site)."""


@lru_cache(maxsize=64)
def _profile(name: str, file: str | None) -> MqttProfile:
    return load_profile_file(Path(file)) if file else load_profile(name)


def matcher_of(target: Target) -> Matcher:
    """The gateway's topic profile (params.profile or .profile_file) compiled for its root and site."""
    p = target.params
    gateway = target.id if target.kind == "gateway" else p.get("gateway")
    if not isinstance(gateway, str) or not gateway:
        raise InventoryError(f"{target.id}: no gateway named (params.gateway)")
    file = p.get("profile_file")
    try:
        profile = _profile(str(p.get("profile") or "zhian"), str(file) if file else None)
    except ProfileError as exc:
        raise InventoryError(f"{target.id}: {exc}") from None
    root, site = p.get("topic_root"), p.get("site")
    if profile.needs_site and (
        not isinstance(root, str) or not root or not isinstance(site, str) or not site
    ):
        raise InventoryError(f"{target.id}: no topic root or site level (params.topic_root, params.site)")
    return matcher(
        profile, root if isinstance(root, str) else None, site if isinstance(site, str) else None, gateway
    )


def broker_of(ctx: ProbeContext, target: Target) -> Target:
    """The broker the device reports through: its address, TLS and the inspector's account."""
    broker_id = target.params.get("broker")
    if not isinstance(broker_id, str):
        raise InventoryError(f"{target.id}: no broker named (params.broker)")
    try:
        broker = ctx.site.get(broker_id)
    except KeyError:
        raise InventoryError(f"{target.id}: broker {broker_id!r} is not in the inventory") from None
    if broker.kind != "broker":
        raise InventoryError(f"{target.id}: {broker_id!r} is a {broker.kind}, not a broker")
    return broker


def interval_of(target: Target, default_s: float) -> tuple[float, str]:
    """The heartbeat interval to judge by: the gateway's own (inventory) when given, else the threshold."""
    declared = target.params.get("heartbeat_s")
    if isinstance(declared, int | float) and not isinstance(declared, bool) and declared > 0:
        return float(declared), "inventory"
    return default_s, "threshold"


def child_ids(children: Any) -> list[str]:
    """A gateway's children from the inventory: ids, or rows with an `id`."""
    out: list[str] = []
    for child in children if isinstance(children, list | tuple) else ():
        cid = child.get("id") if isinstance(child, Mapping) else child
        if isinstance(cid, str) and cid:
            out.append(cid)
    return out


async def shared_observation(ctx: ProbeContext, broker: Target, m: Matcher, observe_s: float) -> Observation:
    """One subscription window per broker, filters and length, shared by every MQTT probe of the run."""

    async def fetch() -> Observation:
        # the broker's connection slot is taken here; the window itself runs apart (see apart)
        conn = dataclasses.replace(ctx.connection(broker), gate=None)

        async def observe() -> Observation:
            async with MqttClient(conn) as client:
                return await client.observe(m.filters, observe_s)

        async with ctx.host_gate(broker):
            return await apart(observe)

    key = ("mqtt.observe", broker.id, " ".join(m.filters), f"{observe_s:g}")
    observation: Observation = await ctx.shared(key, fetch)
    return observation


@dataclass(frozen=True)
class DeviceIndex:
    """An observation sorted by the profile: each device's status and sign-of-life topics."""

    matcher: Matcher
    topics: dict[tuple[str, str], list[TopicSummary]]

    def status(self, device: str) -> tuple[TopicSummary | None, StatusWord]:
        """The device's newest status among its status topics, read by the profile."""
        summaries = [s for s in self.topics.get((device, "status"), ()) if s.latest is not None]
        if not summaries:
            return None, StatusWord(None, None, False)
        newest = max(summaries, key=lambda s: s.latest.at if s.latest else started_never())
        latest = newest.latest
        assert latest is not None
        if latest.truncated:
            return newest, StatusWord(None, None, latest.retain)
        word = self.matcher.status_word(newest.topic, latest.payload)
        return newest, StatusWord(word.state, word.reason, latest.retain)

    def heartbeat(self, device: str) -> TopicSummary | None:
        return merged(self.topics.get((device, "heartbeat"), []))

    def oversize(self, device: str) -> TopicSummary | None:
        """The device's topic with the largest payload cut on arrival (past the run's bound), if any."""
        cut = [s for role in ROLES for s in self.topics.get((device, role), ()) if s.oversize]
        return max(cut, key=lambda s: s.oversize_bytes) if cut else None


def started_never() -> datetime:
    return datetime.min.replace(tzinfo=UTC)


def merged(summaries: list[TopicSummary]) -> TopicSummary | None:
    """Signs of life spread over several topics as one: counts added, the first and last live
    message across all; the longest silence is at most the shortest topic's longest silence (each
    topic alone was never quiet longer), which is what is reported."""
    if len(summaries) <= 1:
        return summaries[0] if summaries else None
    lives = [s for s in summaries if s.first_live is not None]
    gaps = [s.max_live_gap_s for s in lives if s.max_live_gap_s is not None]
    return TopicSummary(
        topic=" + ".join(s.topic for s in summaries[:5]) + (" ..." if len(summaries) > 5 else ""),
        messages=sum(s.messages for s in summaries),
        live=sum(s.live for s in summaries),
        retained=None,
        first_live=min((s.first_live for s in lives if s.first_live), key=lambda r: r.at, default=None),
        last_live=max((s.last_live for s in lives if s.last_live), key=lambda r: r.at, default=None),
        max_live_gap_s=min(gaps) if gaps else None,
        oversize=sum(s.oversize for s in summaries),
        oversize_bytes=max(s.oversize_bytes for s in summaries),
    )


def index_of(observation: Observation, m: Matcher) -> DeviceIndex:
    """Every topic of the window run through the profile once: (device, role) -> its topics."""
    m.learn({t: s.latest.payload for t, s in observation.topics.items() if m.is_config(t) and s.latest})
    topics: dict[tuple[str, str], list[TopicSummary]] = {}
    for name, summary in observation.topics.items():
        for signal in m.signals(name):
            topics.setdefault((signal.device, signal.role), []).append(summary)
    return DeviceIndex(m, topics)


async def shared_index(
    ctx: ProbeContext, broker: Target, m: Matcher, observe_s: float
) -> tuple[Observation, DeviceIndex]:
    """The shared window, and its topics sorted once per gateway (5,000 devices, one pass)."""
    observation = await shared_observation(ctx, broker, m, observe_s)

    async def build() -> DeviceIndex:
        return index_of(observation, m)

    key = ("mqtt.index", observation.exchange_id, m.gateway, m.profile.name)
    index: DeviceIndex = await ctx.shared(key, build)
    return observation, index


# -- payloads -------------------------------------------------------------------------------------------
def payload_object(received: Received | None) -> dict[str, Any] | None:
    """A JSON object payload, or None (absent, cut off, not JSON, not an object)."""
    if received is None or received.truncated:
        return None
    try:
        body = json.loads(received.payload)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


@dataclass(frozen=True)
class StatusWord:
    state: str | None  # "online", "offline", another word, or None (no status, or unreadable)
    reason: str | None  # why offline: no_response, shutdown, lwt ...
    retained: bool  # the broker's stored status rather than one sent during the window


def status_word(summary: TopicSummary | None) -> StatusWord:
    """The device's last status: {"state": ...} (or "status"), or a bare online/offline payload."""
    latest = summary.latest if summary is not None else None
    if latest is None:
        return StatusWord(None, None, False)
    body = payload_object(latest)
    if body is None:
        text = latest.payload.decode(errors="replace").strip().lower()
        word = text if text in (ONLINE, OFFLINE) else None
        return StatusWord(word, None, latest.retain)
    state = body.get("state", body.get("status"))
    reason = body.get("reason")
    return StatusWord(
        str(state).lower() if isinstance(state, str) else None,
        reason if isinstance(reason, str) else None,
        latest.retain,
    )


def clock_skew_s(received: Received | None) -> float | None:
    """Device clock minus receive time, from a live message's `ts` (epoch ms; seconds if small)."""
    body = payload_object(received)
    if received is None or received.retain or body is None:
        return None
    ts = body.get("ts")
    if not isinstance(ts, int | float) or isinstance(ts, bool):
        return None
    seconds = ts / 1000 if ts > 1e11 else float(ts)
    return round(seconds - received.at.timestamp(), 1)


# -- judging ----------------------------------------------------------------------------------------------
def quiet_s(a: datetime, b: datetime, gaps: Sequence[tuple[datetime, datetime]]) -> float:
    """Seconds from a to b while zhian was subscribed (outside the broker's gaps)."""
    total = (b - a).total_seconds()
    for g0, g1 in gaps:
        lo, hi = max(a, g0), min(b, g1)
        if hi > lo:
            total -= (hi - lo).total_seconds()
    return max(0.0, total)


def too_large(name: str, topic: TopicSummary, limit: int | None) -> Liveness:
    """A device that published past the run's bound: its first bytes are the evidence, not its state."""
    facts = {
        "topic": topic.topic,
        "oversize_messages": topic.oversize,
        "payload_bytes": topic.oversize_bytes,
        "max_reply_bytes": limit,
    }
    detail = (
        f"{name} published {topic.oversize_bytes} bytes on {topic.topic}, past the {limit}-byte bound "
        "(limits.max_reply_bytes): only the first bytes were kept, and it cannot be judged on them."
    )
    return Liveness("error", "reply_too_large", detail.lstrip(), facts)


@dataclass(frozen=True)
class Liveness:
    status: Status
    reason: str  # alive, alive_no_status, offline, stale_online, silent, heartbeat_gap, window_too_short,
    # reply_too_large
    detail: str
    facts: dict[str, Any]


def judge_liveness(
    name: str,
    status: TopicSummary | None,
    heartbeat: TopicSummary | None,
    window: tuple[datetime, datetime],
    interval_s: float,
    misses: int,
    word: StatusWord | None = None,
    gaps: Sequence[tuple[datetime, datetime]] = (),
) -> Liveness:
    """Is the device alive, from its last status and the heartbeats seen in the window?

    Heartbeats missed in a row: round(gap / interval) - 1 between two heartbeats; at a window edge,
    where the silence may have begun before the window, only the whole intervals it holds. An outage
    is `misses` or more in a row. A device with no heartbeat at all cannot be judged unless the
    window holds `misses` intervals (`window_too_short`), whatever its status claims. Silence while
    zhian had no subscription (`gaps`: the broker restarted mid-window) is not counted as the
    device's.
    """
    start, end = window
    window_s = quiet_s(start, end, gaps)
    word = word if word is not None else status_word(status)
    beats = heartbeat.live if heartbeat is not None else 0
    first = heartbeat.first_live if heartbeat is not None else None
    last = heartbeat.last_live if heartbeat is not None else None
    facts: dict[str, Any] = {
        "status": word.state,
        "status_reason": word.reason,
        "status_retained": word.retained if word.state is not None else None,
        "heartbeat_count": beats,
        "last_seen": last.at.isoformat() if last is not None else None,
        "max_gap_s": None,
        "missed_in_a_row": None,
        "window_s": round(window_s, 3),
        "heartbeat_interval_s": interval_s,
        "heartbeat_misses": misses,
        "clock_skew_s": clock_skew_s(last),
    }
    if gaps:
        facts["broker_gap_s"] = round(sum((b - a).total_seconds() for a, b in gaps), 3)
    outage_s = misses * interval_s

    def verdict(state: Status, reason: str, detail: str) -> Liveness:
        return Liveness(state, reason, f"{name} {detail}", facts)

    if word.state == OFFLINE:
        why = f" ({word.reason})" if word.reason else ""
        if word.reason == "lwt":
            why = " (its Last Will: the connection died without a goodbye)"
        return verdict("fail", "offline", f"is reported offline{why}.")
    if first is None or last is None or heartbeat is None:
        missed = math.floor(window_s / interval_s)
        facts |= {"max_gap_s": round(window_s, 3), "missed_in_a_row": missed}
        if missed < misses:
            facts["window_needed_s"] = outage_s
            return verdict(
                "not_assessed",
                "window_too_short",
                f"sent no heartbeat in {window_s:.1f} s, too short to tell an outage from {misses} "
                f"heartbeats of {interval_s:g} s lost in a row (a window of {outage_s:g} s is needed).",
            )
        if word.state == ONLINE:
            return verdict(
                "fail",
                "stale_online",
                f"is reported online but sent no heartbeat in {window_s:.1f} s ({missed} intervals): "
                "the status outlived the device.",
            )
        return verdict("fail", "silent", f"has no status and sent no heartbeat in {window_s:.1f} s.")
    lead = quiet_s(start, first.at, gaps)
    trail = quiet_s(last.at, end, gaps)
    # where the longest silence between two heartbeats fell is not kept: every gap between the
    # first and the last heartbeat is taken off it
    paused = (last.at - first.at).total_seconds() - quiet_s(first.at, last.at, gaps)
    inner = max(0.0, (heartbeat.max_live_gap_s or 0.0) - paused)
    missed = max(
        math.floor(lead / interval_s), math.floor(trail / interval_s), max(0, round(inner / interval_s) - 1)
    )
    facts |= {"max_gap_s": round(max(lead, trail, inner), 3), "missed_in_a_row": missed}
    if missed >= misses:
        return verdict(
            "fail",
            "heartbeat_gap",
            f"missed {missed} heartbeats in a row (longest silence {facts['max_gap_s']:g} s, "
            f"interval {interval_s:g} s).",
        )
    if word.state != ONLINE:
        shown = f"the status {word.state!r}" if word.state else "no readable status"
        return verdict("pass", "alive_no_status", f"sent {beats} heartbeats but has {shown}.")
    return verdict(
        "pass", "alive", f"is online and sent {beats} heartbeats, at most {missed} missed in a row."
    )


def device_liveness(
    name: str,
    observation: Observation,
    index: DeviceIndex,
    device: str,
    interval_s: float,
    misses: int,
) -> Liveness:
    """judge_liveness on a device's status and signs of life in a shared window, read by its profile;
    a device that published payloads past the run's bound is that error, whatever else it sent."""
    oversize = index.oversize(device)
    if oversize is not None:
        return too_large(name, oversize, observation.max_payload_bytes)
    status, word = index.status(device)
    return judge_liveness(
        name,
        status,
        index.heartbeat(device),
        (observation.started_at, observation.ended_at),
        interval_s,
        misses,
        word=word,
        gaps=observation.gaps,
    )
