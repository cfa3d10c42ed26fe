"""Profile G: what a recorder holds (Search service), how long it is set to keep it (Recording service),
and where its history has holes (RecordingHistory events found by FindEvents).

A hole in a track is a gap when the recorder said it was not recording (Recording/State
IsRecording=false), and a deletion when it said it was recording yet the track had no data
(Track/State IsDataPresent=false with IsRecording=true). Without the recorder's word on its
recording state a hole counts as a gap: a deletion needs positive evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any, Literal

from lxml import etree

from collectors.errors import DeviceRejected, ProtocolViolation, Unsupported
from collectors.onvif_client import OnvifSession, utc
from collectors.onvif_events import TOPICS_NS, message_items, topic_path

HISTORY_TOPICS = "tns1:RecordingHistory//."
RECORDING_STATE = "RecordingHistory/Recording/State"
TRACK_STATE = "RecordingHistory/Track/State"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
KEEPALIVE = timedelta(seconds=20)


@dataclass(frozen=True)
class RecordingSummary:
    data_from: datetime | None
    data_until: datetime | None
    number_recordings: int
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class Track:
    token: str
    type: str
    data_from: datetime | None
    data_to: datetime | None


@dataclass(frozen=True)
class Recording:
    """One recording as FindRecordings describes it (times on the device's clock, UTC)."""

    token: str
    source_id: str
    source_name: str
    location: str
    address: str
    earliest: datetime | None
    latest: datetime | None
    status: str | None  # Initiated | Recording | Stopped | Removing | Removed | Unknown
    tracks: tuple[Track, ...]


@dataclass(frozen=True)
class Recordings:
    items: tuple[Recording, ...]
    complete: bool  # False when the search stopped at the page limit
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class RetentionConfig:
    """MaximumRetentionTime per recording token; timedelta(0) means bound only by the disk."""

    max_retention: dict[str, timedelta]
    evidence: tuple[str, ...]


@dataclass(frozen=True)
class HistoryEvent:
    recording: str
    track: str | None
    time: datetime
    kind: Literal["recording", "track"]  # Recording/State (IsRecording) or Track/State (IsDataPresent)
    value: bool
    start_state: bool  # a virtual event giving the state at the start of the search


@dataclass(frozen=True)
class HistorySpan:
    recording: str
    kind: Literal["gap", "deleted"]
    start: datetime
    end: datetime
    open: bool  # still going on at the end of the searched range

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True)
class RecordingHistory:
    start: datetime
    end: datetime
    events: tuple[HistoryEvent, ...]
    spans: tuple[HistorySpan, ...]
    complete: bool
    evidence: tuple[str, ...]


def duration(value: Any, start: datetime) -> timedelta:
    """An xs:duration as zeep gives it (timedelta, or isodate.Duration when it has years or months)."""
    if isinstance(value, timedelta):
        return value
    if hasattr(value, "totimedelta"):
        result: timedelta = value.totimedelta(start=start)
        return result
    raise ProtocolViolation(f"not a duration: {value!r}")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def parse_recording(info: Any) -> Recording:
    source = info.Source
    return Recording(
        token=_text(info.RecordingToken),
        source_id=_text(getattr(source, "SourceId", None)),
        source_name=_text(getattr(source, "Name", None)),
        location=_text(getattr(source, "Location", None)),
        address=_text(getattr(source, "Address", None)),
        earliest=utc(info.EarliestRecording),
        latest=utc(info.LatestRecording),
        status=None if info.RecordingStatus is None else str(info.RecordingStatus),
        tracks=tuple(
            Track(_text(t.TrackToken), _text(t.TrackType), utc(t.DataFrom), utc(t.DataTo))
            for t in info.Track or []
        ),
    )


async def recording_summary(session: OnvifSession, search: Any) -> RecordingSummary:
    reply, exchange = await session.call(search, "GetRecordingSummary")
    if reply is None:
        raise ProtocolViolation("GetRecordingSummary: empty reply", exchange_id=exchange)
    return RecordingSummary(
        utc(reply.DataFrom), utc(reply.DataUntil), int(reply.NumberRecordings or 0), (exchange,)
    )


async def _results(
    session: OnvifSession,
    search: Any,
    operation: str,
    token: Any,
    take: Callable[[Any], Iterable[Any]],
    *,
    page: int,
    max_pages: int,
    wait: timedelta,
) -> tuple[list[Any], bool, list[str]]:
    """Page through a search session until Completed; past max_pages, end it and say so."""
    items: list[Any] = []
    evidence: list[str] = []
    params = {"SearchToken": token, "MaxResults": page, "WaitTime": wait}
    for _ in range(max_pages):
        reply, exchange = await session.call(search, operation, params, wait_s=wait.total_seconds())
        evidence.append(exchange)
        if reply is None:
            raise ProtocolViolation(f"{operation}: empty reply", exchange_id=exchange)
        items.extend(take(reply))
        if str(reply.SearchState) == "Completed":
            return items, True, evidence
    try:
        _, exchange = await session.call(search, "EndSearch", {"SearchToken": token})
        evidence.append(exchange)
    except (DeviceRejected, Unsupported) as exc:  # the session may have ended on its own
        evidence.append(exc.exchange_id or "")
    return items, False, [e for e in evidence if e]


async def find_recordings(
    session: OnvifSession, search: Any, *, page: int = 100, max_pages: int = 20
) -> Recordings:
    token, first = await session.call(search, "FindRecordings", {"Scope": {}, "KeepAliveTime": KEEPALIVE})
    infos, complete, evidence = await _results(
        session,
        search,
        "GetRecordingSearchResults",
        token,
        lambda r: r.RecordingInformation or [],
        page=page,
        max_pages=max_pages,
        wait=timedelta(seconds=1),
    )
    return Recordings(tuple(parse_recording(i) for i in infos), complete, (first, *evidence))


async def retention_config(session: OnvifSession, recording: Any, at: datetime) -> RetentionConfig:
    items, exchange = await session.call(recording, "GetRecordings")
    found: dict[str, timedelta] = {}
    for item in items or []:
        configured = item.Configuration.MaximumRetentionTime if item.Configuration is not None else None
        if configured is not None:
            found[_text(item.RecordingToken)] = duration(configured, at)
    return RetentionConfig(found, (exchange,))


def _topic_filter() -> dict[str, Any]:
    expression = etree.Element(f"{{{WSNT}}}TopicExpression", Dialect=CONCRETE_SET, nsmap={"tns1": TOPICS_NS})
    expression.text = HISTORY_TOPICS
    return {"_value_1": [expression]}


def _as_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    return value.strip().lower() in ("true", "1")


def parse_history_event(result: Any) -> HistoryEvent | None:
    """A FindEvents result as a history event; None for any other topic (a device may ignore the filter)."""
    holder = result.Event
    path = topic_path(holder.Topic)
    if path not in (RECORDING_STATE, TRACK_STATE):
        return None
    source, data = message_items(holder.Message)
    when = utc(result.Time)
    key = "IsRecording" if path == RECORDING_STATE else "IsDataPresent"
    value = _as_bool(data.get(key))
    if when is None or value is None:
        return None
    recording = _text(result.RecordingToken) or source.get("RecordingToken", "")
    track = _text(result.TrackToken) or source.get("Track") or None
    return HistoryEvent(
        recording=recording,
        track=track if path == TRACK_STATE else None,
        time=when,
        kind="recording" if path == RECORDING_STATE else "track",
        value=value,
        start_state=bool(result.StartStateEvent),
    )


async def find_history(
    session: OnvifSession,
    search: Any,
    start: datetime,
    end: datetime,
    recordings: Sequence[str],
    *,
    page: int = 100,
    max_pages: int = 50,
) -> RecordingHistory:
    """RecordingHistory events in [start, end] for the given recordings, with the start state."""
    params = {
        "StartPoint": start,
        "EndPoint": end,
        "Scope": {"IncludedRecordings": list(recordings)},
        "SearchFilter": _topic_filter(),
        "IncludeStartState": True,
        "KeepAliveTime": KEEPALIVE,
    }
    token, first = await session.call(search, "FindEvents", params)
    results, complete, evidence = await _results(
        session,
        search,
        "GetEventSearchResults",
        token,
        lambda r: r.Result or [],
        page=page,
        max_pages=max_pages,
        wait=timedelta(seconds=1),
    )
    wanted = set(recordings)
    events = tuple(
        e
        for e in (parse_history_event(r) for r in results)
        if e is not None and (not wanted or e.recording in wanted)
    )
    return RecordingHistory(start, end, events, history_spans(events, end), complete, (first, *evidence))


def history_spans(events: Iterable[HistoryEvent], end: datetime) -> tuple[HistorySpan, ...]:
    """Holes in each recording's history: gaps (not recording) and deletions (recording, no data)."""
    spans: list[HistorySpan] = []
    by_recording: dict[str, list[HistoryEvent]] = {}
    for e in events:
        by_recording.setdefault(e.recording, []).append(e)
    for recording, evs in by_recording.items():
        evs.sort(key=lambda e: (e.time, not e.start_state))
        recording_on: bool | None = None
        missing: set[str] = set()
        current: Literal["gap", "deleted"] | None = None
        since = end
        for when, group in groupby(evs, key=lambda e: e.time):
            for e in group:
                if e.kind == "recording":
                    recording_on = e.value
                elif e.value:
                    missing.discard(e.track or "")
                else:
                    missing.add(e.track or "")
            kind: Literal["gap", "deleted"] | None = None
            if recording_on is False or (missing and recording_on is None):
                kind = "gap"
            elif missing:
                kind = "deleted"
            if kind != current:
                if current is not None and when > since:
                    spans.append(HistorySpan(recording, current, since, when, open=False))
                current, since = kind, when
        if current is not None and end > since:
            spans.append(HistorySpan(recording, current, since, end, open=True))
    return tuple(sorted(spans, key=lambda s: (s.start, s.recording)))
