"""An observation window: subscribe, tally every message for a while, return what each topic said.

A large site sends thousands of messages a minute, so memory stays bounded: per topic the counts,
the retained message the broker replayed, the first and last live message and the longest silence
between live messages; plus a small sample of raw messages for the evidence. The Exchange's facts
summarise; `raw` holds the per-topic table and the sample (redacted).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiomqtt

from collectors.exchange import now
from collectors.mqtt.messages import PAYLOAD_LIMIT, Cut, Observation, Received, TopicSummary, payload_size
from collectors.mqtt.session import HandOn, Session

WHOLE_LIMIT = 1_000_000  # bytes kept of a topic asked for whole (a gateway's device list, its configs)
RETRY_S = 0.5  # between attempts to subscribe again when the broker went away mid-window
SAMPLE_LIMIT = 100  # raw messages kept per observation, for the evidence
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # one encoder for every row of the evidence
MAX_TOPICS = 20_000  # topics tallied per observation (a 5,000-device site has 10,000); more are counted


async def observe(
    session: Session,
    filters: Sequence[str],
    window_s: float,
    qos: int,
    whole: Callable[[str], bool] | None = None,
) -> Observation:
    """Subscribe to `filters` and tally every message for `window_s` seconds after the SUBACK; the
    topics `whole` picks keep their payloads up to WHOLE_LIMIT instead of PAYLOAD_LIMIT."""
    wanted = tuple(filters)
    if not wanted or window_s <= 0:
        raise ValueError("an observation needs at least one filter and a positive window")
    request = f"{session.subscribe_request(wanted, qos)}\nwindow {window_s:g} s"
    tally = _Tally(whole=whole)
    lines: list[str] = []
    window: list[datetime] = []
    started, t0 = now(), time.monotonic()
    operation = f"observe({', '.join(wanted)}, {window_s:g} s)"
    span = _Span(window_s)
    gaps: list[tuple[datetime, datetime]] = []
    try:
        granted, _, lost = await _stretch(session, wanted, qos, lines, tally, span)
        while lost is not None and time.monotonic() < span.end:
            down = now()
            lines.append(f"{down.isoformat()} the connection was lost ({lost}): subscribing again")
            back, lost = await _resume(session, wanted, qos, lines, tally, span)
            gaps.append((down, back))
    except BaseException as exc:
        raise session.failed(exc, operation, request, "\n".join(lines), started, t0)  # noqa: B904
    assert span.opened is not None
    window = [span.opened, now()]
    obs_facts = {
        "filters": list(wanted),
        "granted": granted,
        "window_s": round((window[1] - window[0]).total_seconds(), 3),
        "messages": tally.messages,
        "retained": tally.retained,
        "topics": len(tally.topics),
        "untracked": tally.untracked,
        "oversize": tally.oversize,
        "max_payload_bytes": session.conn.max_reply_bytes,
        "gaps": [
            {"from": a.isoformat(), "to": b.isoformat(), "s": round((b - a).total_seconds(), 3)}
            for a, b in gaps
        ],
        "tls": session.conn.tls is not None,
    }
    lines.append(
        f"window {obs_facts['window_s']} s: {tally.messages} messages ({tally.retained} retained) "
        f"on {len(tally.topics)} topics"
    )
    summaries = {t: entry.summary(t) for t, entry in tally.topics.items()}
    lines += [_summary_line(s) for s in sorted(summaries.values(), key=lambda s: s.topic)]
    exchange_id = session.record(
        operation,
        request,
        "\n".join(lines),
        started,
        t0,
        ok=True,
        facts=obs_facts,
        raw=_raw(wanted, window, summaries, tally),
    )
    return Observation(
        address=session.conn.address,
        filters=wanted,
        started_at=window[0],
        ended_at=window[1],
        topics=summaries,
        messages=tally.messages,
        untracked=tally.untracked,
        exchange_id=exchange_id,
        max_payload_bytes=session.conn.max_reply_bytes,
        gaps=tuple(gaps),
    )


@dataclass
class _Span:
    """The window: `length_s` from the first SUBACK, whatever happens to the connection meanwhile."""

    length_s: float
    opened: datetime | None = None
    end: float = float("inf")  # time.monotonic() at the window's end, once opened

    def open(self, at: datetime) -> None:
        if self.opened is None:
            self.opened, self.end = at, time.monotonic() + self.length_s


async def _stretch(
    session: Session, wanted: tuple[str, ...], qos: int, lines: list[str], tally: _Tally, span: _Span
) -> tuple[list[int], datetime, Exception | None]:
    """One subscription's part of the window: its granted QoS, when it was acknowledged, and the
    error that ended it early (the connection lost), None when the window ended."""
    lost: Exception | None = None
    hand_on = HandOn(tally.add)
    try:
        async with session.subscription(wanted, qos, lines, queue_type=hand_on.queue_type) as (
            client,
            granted,
        ):
            hand_on.read_directly(client, session.conn.max_reply_bytes)
            at = now()
            span.open(at)
            hand_on.start()
            try:
                lost = await _collect(client, hand_on, span.end)
            finally:
                hand_on.close()  # what is read while leaving is past the window
    except Exception:
        if lost is None:
            raise
        # leaving a connection already lost may fail too: the loss is what counts
    return granted, at, lost


async def _resume(
    session: Session, wanted: tuple[str, ...], qos: int, lines: list[str], tally: _Tally, span: _Span
) -> tuple[datetime, Exception | None]:
    """Subscribe again after the broker went away (a restart) and go on tallying: the gap's end, and
    what ended the new subscription early. A broker still away at the window's end closes the gap."""
    while time.monotonic() < span.end:
        try:
            _, back, lost = await _stretch(session, wanted, qos, lines, tally, span)
            return back, lost
        except Exception as exc:
            lines.append(f"{now().isoformat()} subscribing again failed: {exc}")
            await asyncio.sleep(max(0.0, min(RETRY_S, span.end - time.monotonic())))
    return now(), None


@dataclass(slots=True)
class _Topic:
    messages: int = 0
    live: int = 0
    retained: Received | None = None
    first_live: Received | None = None
    last_live: Received | None = None
    max_gap_s: float | None = None
    oversize: int = 0
    oversize_bytes: int = 0

    def add(self, received: Received) -> None:
        self.messages += 1
        if received.oversize:
            self.oversize += 1
            self.oversize_bytes = max(self.oversize_bytes, received.size)
        if received.retain:
            self.retained = received
            return
        if self.last_live is None:
            self.first_live = received
        else:
            gap = (received.at - self.last_live.at).total_seconds()
            self.max_gap_s = gap if self.max_gap_s is None else max(self.max_gap_s, gap)
        self.last_live = received
        self.live += 1

    def summary(self, topic: str) -> TopicSummary:
        return TopicSummary(
            topic,
            self.messages,
            self.live,
            self.retained,
            self.first_live,
            self.last_live,
            self.max_gap_s,
            self.oversize,
            self.oversize_bytes,
        )


@dataclass
class _Tally:
    """The bounded record of a window: per-topic summaries and the first SAMPLE_LIMIT messages."""

    topics: dict[str, _Topic] = field(default_factory=dict)
    sample: list[tuple[str, Received]] = field(default_factory=list)
    whole: Callable[[str], bool] | None = None
    messages: int = 0
    retained: int = 0
    untracked: int = 0
    oversize: int = 0

    def add(self, topic: str, payload: bytes, qos: int, retain: bool, at: datetime) -> None:
        self.messages += 1
        self.retained += retain
        cut = isinstance(payload, Cut)
        self.oversize += cut
        received = Received(at, payload[:PAYLOAD_LIMIT], payload_size(payload), qos, retain, cut)
        if len(self.sample) < SAMPLE_LIMIT:
            self.sample.append((topic, received))
        if self.whole is not None and len(payload) > PAYLOAD_LIMIT and self.whole(topic):
            received = Received(at, payload[:WHOLE_LIMIT], payload_size(payload), qos, retain, cut)
        entry = self.topics.get(topic)
        if entry is None:
            if len(self.topics) >= MAX_TOPICS:
                self.untracked += 1
                return
            entry = self.topics[topic] = _Topic()
        entry.add(received)


async def _collect(client: aiomqtt.Client, hand_on: HandOn, end: float) -> Exception | None:
    """Let the tally take every message as paho reads it (see HandOn) until `end`
    (time.monotonic()); the error if the connection is lost first."""
    try:
        async with asyncio.timeout(max(0.0, end - time.monotonic())) as window:
            async for _ in client.messages:  # only a tally's error is ever queued
                raise hand_on.error or RuntimeError("a message was queued, not tallied")
    except TimeoutError:
        if not window.expired():
            raise
        return None
    except aiomqtt.MqttError as exc:
        return exc
    return ConnectionError("the broker ended the subscription")


# -- evidence ---------------------------------------------------------------------------------------
def _raw(
    filters: tuple[str, ...], window: list[datetime], summaries: Mapping[str, TopicSummary], tally: _Tally
) -> str:
    """The window as JSON, a topic or message a line: 10,000 topics written by the C encoder (an
    indented dump takes the pure-Python one, several times slower and larger)."""

    def rows(items: list[dict[str, Any]]) -> str:
        return "[\n" + ",\n".join(map(_ENCODE, items)) + "\n]"

    topics = rows([_summary_row(s) for s in sorted(summaries.values(), key=lambda s: s.topic)])
    sample = rows([_message_row(topic, r) for topic, r in tally.sample])
    head = _ENCODE({"filters": list(filters), "window": [w.isoformat() for w in window]})
    return f'{head[:-1]},\n"topics": {topics},\n"sample": {sample}}}'


def _summary_line(s: TopicSummary) -> str:
    gap = "-" if s.max_live_gap_s is None else f"{s.max_live_gap_s:.3f}"
    retained = int(s.retained is not None)
    line = f"{s.topic} messages={s.messages} live={s.live} retained={retained} max_gap_s={gap}"
    return line + (f" oversize={s.oversize} largest={s.oversize_bytes}" if s.oversize else "")


def _summary_row(s: TopicSummary) -> dict[str, Any]:
    latest = s.latest
    return {
        "topic": s.topic,
        "messages": s.messages,
        "live": s.live,
        "retained": s.retained is not None,
        "first_live_at": s.first_live.at.isoformat() if s.first_live else None,
        "last_live_at": s.last_live.at.isoformat() if s.last_live else None,
        "max_live_gap_s": s.max_live_gap_s,
        "oversize": s.oversize,
        "oversize_bytes": s.oversize_bytes,
        "latest": latest.payload.decode(errors="replace") if latest else None,
    }


def _message_row(topic: str, r: Received) -> dict[str, Any]:
    return {
        "topic": topic,
        "at": r.at.isoformat(),
        "qos": r.qos,
        "retain": r.retain,
        "size": r.size,
        "oversize": r.oversize,
        "payload": r.payload.decode(errors="replace"),
    }
