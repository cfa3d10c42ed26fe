"""The ONVIF collector's pure parts: history holes, topics, durations and the error translation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import isodate  # type: ignore[import-untyped]
import pytest
import zeep.exceptions
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from collectors.errors import AuthFailed, DeviceRejected, ProtocolViolation, Unreachable, Unsupported
from collectors.onvif_client import SubscriptionLost, _Capture, _translate, fault_code
from collectors.onvif_events import TOPICS_NS, TT, WSTOP, topic_path, topic_set_paths
from collectors.onvif_recording import HistoryEvent, duration, history_spans

T0 = datetime(2025, 6, 1, tzinfo=UTC)
TER = "http://www.onvif.org/ver10/error"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def rec(hours: float, value: bool, start: bool = False, recording: str = "R") -> HistoryEvent:
    return HistoryEvent(recording, None, at(hours), "recording", value, start)


def track(hours: float, value: bool, start: bool = False, recording: str = "R") -> HistoryEvent:
    return HistoryEvent(recording, "V", at(hours), "track", value, start)


def kinds(events: list[HistoryEvent], end: float = 100) -> list[tuple[str, float, float, bool]]:
    return [
        (s.kind, (s.start - T0).total_seconds() / 3600, (s.end - T0).total_seconds() / 3600, s.open)
        for s in history_spans(events, at(end))
    ]


def test_gap_and_deletion_are_told_apart() -> None:
    start = [rec(0, True, True), track(0, True, True)]
    gap = [rec(10, False), track(10, False), rec(16, True), track(16, True)]
    deletion = [track(30, False), track(54, True)]
    assert kinds(start + gap + deletion) == [("gap", 10, 16, False), ("deleted", 30, 54, False)]


def test_holes_open_at_the_end_and_at_the_start() -> None:
    # the search began inside a gap (start state) and a deletion runs to the end of the range
    events = [rec(0, False, True), track(0, False, True), rec(5, True), track(5, True), track(90, False)]
    assert kinds(events) == [("gap", 0, 5, False), ("deleted", 90, 100, True)]


def test_without_the_recording_state_a_hole_is_a_gap() -> None:
    assert kinds([track(0, True, True), track(10, False), track(12, True)]) == [("gap", 10, 12, False)]


def test_recording_resumes_before_its_data() -> None:
    events = [rec(0, True, True), rec(10, False), track(10, False), rec(12, True), track(14, True)]
    assert kinds(events) == [("gap", 10, 12, False), ("deleted", 12, 14, False)]


def test_recordings_are_kept_apart() -> None:
    events = [track(10, False, recording="A"), track(11, True, recording="A"), rec(20, False, recording="B")]
    spans = history_spans(events, at(30))
    assert [(s.recording, s.kind) for s in spans] == [("A", "gap"), ("B", "gap")]


@given(st.lists(st.tuples(st.integers(0, 50), st.booleans(), st.booleans()), max_size=30))
def test_spans_are_ordered_disjoint_and_deletions_need_recording(raw: list[tuple[int, bool, bool]]) -> None:
    events = [(rec if is_rec else track)(h, v) for h, is_rec, v in raw]
    spans = history_spans(events, at(60))
    ordered = sorted(events, key=lambda e: (e.time, not e.start_state))

    def recording_at(t: datetime) -> bool | None:
        said = [e.value for e in ordered if e.kind == "recording" and e.time <= t]
        return said[-1] if said else None

    for a, b in itertools.pairwise(spans):
        assert a.end <= b.start
    for s in spans:
        assert s.start < s.end <= at(60)
        # a deletion only where the recorder said it was recording; a gap where it did not say so
        if s.kind == "deleted":
            assert recording_at(s.start) is True
        else:
            assert recording_at(s.start) is not True


def test_topic_paths() -> None:
    assert topic_path("tns1:VideoSource/SignalLoss") == "VideoSource/SignalLoss"
    assert topic_path(" tns1:RuleEngine/tnshik:Foo ") == "RuleEngine/Foo"

    assert topic_path(SimpleNamespace(_value_1="tns1:Door/State/DoorAlarm")) == "Door/State/DoorAlarm"


def test_topic_set_paths_skip_message_descriptions() -> None:
    root = etree.Element(f"{{{TOPICS_NS}}}VideoSource")
    loss = etree.SubElement(root, f"{{{TOPICS_NS}}}SignalLoss", {f"{{{WSTOP}}}topic": "true"})
    description = etree.SubElement(loss, f"{{{TT}}}MessageDescription")
    etree.SubElement(description, f"{{{TT}}}Source", {f"{{{WSTOP}}}topic": "true"})
    change = etree.SubElement(root, f"{{{TOPICS_NS}}}GlobalSceneChange")
    etree.SubElement(change, f"{{{TOPICS_NS}}}ImagingService", {f"{{{WSTOP}}}topic": "true"})

    assert topic_set_paths(SimpleNamespace(_value_1=[root])) == {
        "VideoSource/SignalLoss",
        "VideoSource/GlobalSceneChange/ImagingService",
    }


def test_durations() -> None:
    assert duration(timedelta(days=90), T0) == timedelta(days=90)
    assert duration(isodate.parse_duration("P1M"), T0) == timedelta(days=30)  # June has 30 days
    with pytest.raises(ProtocolViolation):
        duration("P1D", T0)


def fault(*subcodes: str, code: str = "env:Sender", ns: str = TER) -> Exception:
    qnames = [etree.QName(ns, s) for s in subcodes]
    error: Exception = zeep.exceptions.Fault("refused", code=code, subcodes=qnames)  # type: ignore[no-untyped-call]
    return error


def http(status: int, content: bytes | None = None) -> Exception:
    error: Exception = zeep.exceptions.TransportError("x", status, content)  # type: ignore[no-untyped-call]
    return error


def answered(status: int = 400) -> _Capture:
    return _Capture("http://d/onvif/device_service", "<req/>", status, b"<reply/>")


def test_faults_translate_by_subcode() -> None:
    assert fault_code(etree.QName(TER, "NotAuthorized")) == "ter:NotAuthorized"
    assert isinstance(_translate(fault("NotAuthorized"), answered(), "Op"), AuthFailed)
    gone = fault("ResourceUnknownFault", ns="http://docs.oasis-open.org/wsrf/r-2")
    lost = _translate(gone, answered(), "Renew")
    assert isinstance(lost, SubscriptionLost) and lost.code == "wsrf-r:ResourceUnknownFault"
    assert isinstance(_translate(fault("ActionNotSupported"), answered(500), "Op"), Unsupported)
    rejected = _translate(fault("InvalidArgVal", "NoProfile"), answered(), "Op")
    assert isinstance(rejected, DeviceRejected) and rejected.code == "ter:NoProfile"
    bare = _translate(fault(code="env:Receiver"), answered(500), "Op")
    assert isinstance(bare, DeviceRejected) and bare.code == "env:Receiver"


def test_transport_errors_translate() -> None:
    assert isinstance(_translate(http(401), answered(401), "Op"), AuthFailed)
    assert isinstance(_translate(http(200, b"<cut"), answered(200), "Op"), ProtocolViolation)
    teapot = _translate(http(503), answered(503), "Op")
    assert isinstance(teapot, DeviceRejected) and teapot.code == "http:503"
    timeout = _translate(TimeoutError(), _Capture("a"), "Op")
    assert isinstance(timeout, Unreachable) and timeout.timed_out
    refused = _translate(ConnectionRefusedError(), _Capture("a"), "Op")
    assert isinstance(refused, Unreachable) and not refused.timed_out
    # a TypeError from a cut reply is the device's; before any reply it is ours and propagates
    assert isinstance(_translate(TypeError("no body"), answered(200), "Op"), ProtocolViolation)
    assert _translate(TypeError("bad argument"), _Capture("a"), "Op") is None
