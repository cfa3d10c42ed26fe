"""Profile G: the recorded history of a recorder and its Recording and Search services.

History model.  A recording holds data from `now - retention` (the ring buffer overwrote older
data; retention_short replaces the retention) up to `now` (recording alive).  Faults cut holes,
placed at fixed device-clock times (`started_at - days_ago`, lasting `hours`), so they do not slide
while the site runs:

* recording_gap: the recorder stopped recording.  FindEvents reports
  tns1:RecordingHistory/Recording/State IsRecording=false and
  tns1:RecordingHistory/Track/State IsDataPresent=false at the start of the gap, and both back to
  true at its end.
* deleted_span: data was recorded and later deleted.  Only Track/State IsDataPresent goes
  false/true; Recording/State stays IsRecording=true.  "No data although the recorder was
  recording" is how a client tells a deletion from a gap.

EarliestRecording / DataFrom is the first instant with data, LatestRecording / DataUntil the last
one (the start of a gap still open now).  An NVR holds one recording per camera it records; a
camera's own recording faults follow its recording onto the NVR, the NVR's faults apply to all.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from simulator.faults import DeletedSpan, RecordingGap, RetentionShort
from simulator.model import DeviceSpec
from simulator.onvif import soap
from simulator.onvif.events import (
    RECORDING_STATE,
    TRACK_STATE,
    Items,
    Notification,
    Topic,
    message_holder,
    topic_matcher,
    xml_bool,
)
from simulator.onvif.render import Catalog
from simulator.onvif.service import Call, Service, lookup, seconds

TRACK = "VIDEO001"
DEFAULT_KEEPALIVE_S = 60.0


@dataclass(frozen=True)
class Hole:
    start: datetime
    end: datetime
    kind: Literal["gap", "deleted"]


@dataclass(frozen=True)
class RecordedSource:
    """What one recording records and how its history is damaged."""

    token: str
    source_id: str
    address: str
    name: str
    location: str
    retention_days: float
    configured_retention_days: float | None
    gaps: tuple[tuple[float, float], ...] = ()  # (days_ago, hours)
    deleted: tuple[tuple[float, float], ...] = ()
    source_token: str = "Profile_101"
    source_type: str = "http://www.onvif.org/ver10/schema/Profile"

    @property
    def job_token(self) -> str:
        return f"Job_{self.token}"


def damage(specs: list[DeviceSpec], retention_days: float) -> dict[str, Any]:
    """RecordedSource fields from the faults of the devices whose data a recording holds."""
    faults = [f for s in specs for f in s.faults]
    shorts = [f.days for f in faults if isinstance(f, RetentionShort)]
    return {
        "retention_days": min([retention_days, *shorts]),
        "gaps": tuple((f.days_ago, f.hours) for f in faults if isinstance(f, RecordingGap)),
        "deleted": tuple((f.days_ago, f.hours) for f in faults if isinstance(f, DeletedSpan)),
    }


@dataclass(frozen=True)
class History:
    """A recording's data at one instant of the device clock."""

    source: RecordedSource
    earliest: datetime
    now: datetime
    holes: tuple[Hole, ...]

    @staticmethod
    def at(source: RecordedSource, now: datetime, anchor: datetime) -> History:
        earliest = now - timedelta(days=source.retention_days)
        holes = []
        spans = [(d, h, "gap") for d, h in source.gaps] + [(d, h, "deleted") for d, h in source.deleted]
        for days_ago, hours, kind in spans:
            start = max(anchor - timedelta(days=days_ago), earliest)
            end = min(anchor - timedelta(days=days_ago) + timedelta(hours=hours), now)
            if start < end:
                holes.append(Hole(start, end, "gap" if kind == "gap" else "deleted"))
        return History(source, earliest, now, tuple(sorted(holes, key=lambda h: h.start)))

    def intervals(self) -> list[tuple[datetime, datetime]]:
        """The spans with data: [earliest, now] minus every hole."""
        out: list[tuple[datetime, datetime]] = []
        cursor = self.earliest
        for hole in self.holes:
            if hole.start > cursor:
                out.append((cursor, hole.start))
            cursor = max(cursor, hole.end)
        if cursor < self.now:
            out.append((cursor, self.now))
        return out

    @property
    def span(self) -> tuple[datetime, datetime] | None:
        iv = self.intervals()
        return (iv[0][0], iv[-1][1]) if iv else None

    def recording_at(self, t: datetime) -> bool:
        return not any(h.kind == "gap" and h.start <= t < h.end for h in self.holes)

    def data_at(self, t: datetime) -> bool:
        return any(a <= t < b for a, b in self.intervals())

    @property
    def status(self) -> str:
        return "Recording" if self.recording_at(self.now) else "Stopped"

    def events(self) -> list[Notification]:
        """RecordingHistory state changes inside the retained window, oldest first."""
        out = []
        for hole in self.holes:
            for t, value in ((hole.start, False), (hole.end, True)):
                if (value and hole.end >= self.now) or (not value and hole.start <= self.earliest):
                    continue  # still open now, or begun before the retained window
                if hole.kind == "gap":
                    out.append(self._note(RECORDING_STATE, t, {"IsRecording": xml_bool(value)}, "Changed"))
                out.append(self._note(TRACK_STATE, t, {"IsDataPresent": xml_bool(value)}, "Changed"))
        return sorted(out, key=lambda n: n.time)

    def start_state(self, t: datetime) -> list[Notification]:
        return [
            self._note(RECORDING_STATE, t, {"IsRecording": xml_bool(self.recording_at(t))}, "Initialized"),
            self._note(TRACK_STATE, t, {"IsDataPresent": xml_bool(self.data_at(t))}, "Initialized"),
        ]

    def _note(self, topic: Topic, t: datetime, data: dict[str, str], op: str) -> Notification:
        source: Items = (("RecordingToken", self.source.token),)
        if topic is TRACK_STATE:
            source = (*source, ("Track", TRACK))
        return Notification(topic.path, t, op, source, tuple(data.items()))


def _t(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def _utc(value: datetime) -> datetime:
    """A request time; one without a zone is taken as UTC, as ONVIF times are."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Recorder:
    """The recordings of one device and its clock (the device clock, skew included)."""

    def __init__(
        self, sources: list[RecordedSource], clock: Callable[[], datetime], anchor: datetime
    ) -> None:
        self.sources = {s.token: s for s in sources}
        self.clock = clock
        self.anchor = anchor

    def purge(self, days: float) -> None:
        """Every recording's video older than `days` gone (a disk wiped or overwritten early)."""
        self.sources = {
            t: replace(s, retention_days=min(s.retention_days, days)) for t, s in self.sources.items()
        }

    def histories(self) -> list[History]:
        now = self.clock()
        return [History.at(s, now, self.anchor) for s in self.sources.values()]

    def history(self, token: Any) -> History:
        return History.at(lookup(self.sources, token, "NoRecording"), self.clock(), self.anchor)


class RecordingService:
    """trc: the recordings, their configuration (retention) and their recording jobs."""

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def service(self) -> Service:
        return Service(
            path="/onvif/recording_service",
            namespace=soap.TRC,
            bindings=("recording",),
            handlers={
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetRecordings": self.get_recordings,
                "GetRecordingConfiguration": self.get_recording_configuration,
                "GetRecordingJobs": self.get_recording_jobs,
                "GetRecordingJobState": self.get_recording_job_state,
            },
            capabilities=self.capabilities,
        )

    def capabilities(self) -> dict[str, Any]:
        n = len(self.recorder.sources)
        return {
            "DynamicRecordings": False,
            "DynamicTracks": False,
            "Encoding": ["H264"],
            "MaxRecordings": float(n),
            "MaxRecordingJobs": n,
            "Options": False,
            "MetadataRecording": False,
        }

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    def _configuration(self, s: RecordedSource) -> dict[str, Any]:
        return {
            "Source": _source_information(s),
            "Content": f"{s.name} continuous recording",
            "MaximumRetentionTime": timedelta(days=s.configured_retention_days or 0),
        }

    async def get_recordings(self, call: Call) -> dict[str, Any]:
        return {
            "RecordingItem": [
                {
                    "RecordingToken": s.token,
                    "Configuration": self._configuration(s),
                    "Tracks": {
                        "Track": [
                            {
                                "TrackToken": TRACK,
                                "Configuration": {"TrackType": "Video", "Description": "Video"},
                            }
                        ]
                    },
                }
                for s in self.recorder.sources.values()
            ]
        }

    async def get_recording_configuration(self, call: Call) -> dict[str, Any]:
        s = lookup(self.recorder.sources, call.params.RecordingToken, "NoRecording")
        return {"RecordingConfiguration": self._configuration(s)}

    def _jobs(self) -> dict[str, RecordedSource]:
        return {s.job_token: s for s in self.recorder.sources.values()}

    async def get_recording_jobs(self, call: Call) -> dict[str, Any]:
        return {
            "JobItem": [
                {
                    "JobToken": token,
                    "JobConfiguration": {
                        "RecordingToken": s.token,
                        "Mode": "Active",
                        "Priority": 1,
                        "Source": [
                            {
                                "SourceToken": {"Token": s.source_token, "Type": s.source_type},
                                "Tracks": [{"SourceTag": "VIDEO", "Destination": TRACK}],
                            }
                        ],
                    },
                }
                for token, s in self._jobs().items()
            ]
        }

    async def get_recording_job_state(self, call: Call) -> dict[str, Any]:
        s = lookup(self._jobs(), call.params.JobToken, "NoRecordingJob")
        state = "Active" if self.recorder.history(s.token).status == "Recording" else "Error"
        return {
            "State": {
                "RecordingToken": s.token,
                "State": state,
                "Sources": [
                    {
                        "SourceToken": {"Token": s.source_token, "Type": s.source_type},
                        "State": state,
                        "Tracks": {"Track": [{"SourceTag": "VIDEO", "Destination": TRACK, "State": state}]},
                    }
                ],
            }
        }


def _source_information(s: RecordedSource) -> dict[str, Any]:
    return {
        "SourceId": s.source_id,
        "Name": s.name,
        "Location": s.location,
        "Description": f"{s.name} video",
        "Address": s.address,
    }


@dataclass
class _Search:
    kind: Literal["recordings", "events"]
    results: list[dict[str, Any]]
    keepalive_s: float
    expires: float = field(default=0.0)

    def touch(self) -> None:
        self.expires = time.monotonic() + self.keepalive_s


class SearchService:
    """tse: the recording summary, recording information and searches over recorded events."""

    def __init__(self, cat: Catalog, recorder: Recorder) -> None:
        self.cat = cat
        self.recorder = recorder
        self._searches: dict[str, _Search] = {}
        self._ids = itertools.count(1)

    def service(self) -> Service:
        return Service(
            path="/onvif/search_service",
            namespace=soap.TSE,
            bindings=("search",),
            handlers={
                "GetServiceCapabilities": self.get_service_capabilities,
                "GetRecordingSummary": self.get_recording_summary,
                "GetRecordingInformation": self.get_recording_information,
                "FindRecordings": self.find_recordings,
                "GetRecordingSearchResults": self.get_recording_search_results,
                "FindEvents": self.find_events,
                "GetEventSearchResults": self.get_event_search_results,
                "GetSearchState": self.get_search_state,
                "EndSearch": self.end_search,
            },
            capabilities=self.capabilities,
            latency_key="onvif_search",
        )

    def capabilities(self) -> dict[str, Any]:
        return {"MetadataSearch": False, "GeneralStartEvents": False}

    async def get_service_capabilities(self, call: Call) -> dict[str, Any]:
        return {"Capabilities": self.capabilities()}

    async def get_recording_summary(self, call: Call) -> dict[str, Any]:
        spans = [h.span for h in self.recorder.histories()]
        present = [s for s in spans if s is not None]
        now = _t(self.recorder.clock())
        return {
            "Summary": {
                "DataFrom": _t(min(a for a, _ in present)) if present else now,
                "DataUntil": _t(max(b for _, b in present)) if present else now,
                "NumberRecordings": len(spans),
            }
        }

    def _information(self, h: History) -> dict[str, Any]:
        span = h.span
        info: dict[str, Any] = {
            "RecordingToken": h.source.token,
            "Source": _source_information(h.source),
            "Content": f"{h.source.name} continuous recording",
            "Track": [
                {
                    "TrackToken": TRACK,
                    "TrackType": "Video",
                    "Description": "Video",
                    "DataFrom": _t(span[0] if span else h.now),
                    "DataTo": _t(span[1] if span else h.now),
                }
            ],
            "RecordingStatus": h.status,
        }
        if span is not None:
            info["EarliestRecording"] = _t(span[0])
            info["LatestRecording"] = _t(span[1])
        return info

    async def get_recording_information(self, call: Call) -> dict[str, Any]:
        return {"RecordingInformation": self._information(self.recorder.history(call.params.RecordingToken))}

    def _scoped(self, scope: Any) -> list[History]:
        histories = self.recorder.histories()
        if scope is None:
            return histories
        recordings = set(scope.IncludedRecordings or [])
        sources = {str(s.Token) for s in scope.IncludedSources or []}
        if recordings:
            histories = [h for h in histories if h.source.token in recordings]
        if sources:
            histories = [
                h for h in histories if h.source.source_token in sources or h.source.token in sources
            ]
        return histories

    def _start(self, kind: Literal["recordings", "events"], results: list[dict[str, Any]], call: Call) -> str:
        now = time.monotonic()
        for token in [t for t, s in self._searches.items() if s.expires <= now]:
            del self._searches[token]
        max_matches = call.params.MaxMatches
        if max_matches is not None:
            results = results[: max(0, int(max_matches))]
        keepalive = call.params.KeepAliveTime
        search = _Search(
            kind,
            results,
            DEFAULT_KEEPALIVE_S if keepalive is None else seconds(keepalive, self.recorder.clock()),
        )
        search.touch()
        token = f"SearchToken_{next(self._ids)}"
        self._searches[token] = search
        return token

    def _search(self, token: Any, kind: str | None = None) -> tuple[str, _Search]:
        search = self._searches.get(token) if isinstance(token, str) else None
        if search is None or search.expires <= time.monotonic() or (kind and search.kind != kind):
            raise soap.invalid_arg("InvalidToken", f"no search {token!r}")
        search.touch()
        return token, search

    def _page(self, call: Call, kind: str) -> tuple[str, list[dict[str, Any]]]:
        token, search = self._search(call.params.SearchToken, kind)
        limit = call.params.MaxResults
        count = len(search.results) if limit is None else max(0, int(limit))
        page, search.results = search.results[:count], search.results[count:]
        if search.results:
            return "Searching", page
        del self._searches[token]  # all results delivered: the search session ends
        return "Completed", page

    async def find_recordings(self, call: Call) -> dict[str, Any]:
        results = [self._information(h) for h in self._scoped(call.params.Scope)]
        return {"SearchToken": self._start("recordings", results, call)}

    async def get_recording_search_results(self, call: Call) -> dict[str, Any]:
        state, page = self._page(call, "recordings")
        return {"ResultList": {"SearchState": state, "RecordingInformation": page}}

    async def find_events(self, call: Call) -> dict[str, Any]:
        p = call.params
        if p.StartPoint is None:
            raise soap.invalid_arg("InvalidStartPoint", "FindEvents needs a StartPoint")
        start = _utc(p.StartPoint)
        end = None if p.EndPoint is None else _utc(p.EndPoint)
        forward = end is None or end >= start
        low, high = (start, end) if end is None or forward else (end, start)
        filters = [] if p.SearchFilter is None else p.SearchFilter._value_1 or []
        expressions = [str(f._value_1) for f in filters if "opicExpression" in str(getattr(f, "Dialect", ""))]
        matches = topic_matcher(expressions) if expressions else (lambda _path: True)
        found: list[tuple[datetime, bool, Notification]] = []
        for h in self._scoped(p.Scope):
            if p.IncludeStartState:
                found += [(start, True, n) for n in h.start_state(start) if matches(n.topic)]
            for n in h.events():
                if low <= n.time and (high is None or n.time <= high) and matches(n.topic):
                    found.append((n.time, False, n))
        found.sort(key=lambda r: (r[0], not r[1]), reverse=not forward)
        results = [
            {
                "RecordingToken": dict(n.source)["RecordingToken"],
                "TrackToken": TRACK,
                "Time": _t(t),
                "Event": message_holder(self.cat, n),
                "StartStateEvent": is_start,
            }
            for t, is_start, n in found
        ]
        return {"SearchToken": self._start("events", results, call)}

    async def get_event_search_results(self, call: Call) -> dict[str, Any]:
        state, page = self._page(call, "events")
        return {"ResultList": {"SearchState": state, "Result": page}}

    async def get_search_state(self, call: Call) -> dict[str, Any]:
        _, search = self._search(call.params.SearchToken)
        return {"State": "Searching" if search.results else "Completed"}

    async def end_search(self, call: Call) -> dict[str, Any]:
        token, _ = self._search(call.params.SearchToken)
        del self._searches[token]
        return {"Endpoint": _t(self.recorder.clock())}
