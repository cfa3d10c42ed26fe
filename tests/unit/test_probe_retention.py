"""The retention probe's judging: days arithmetic, holes in the window, recordings matched to cameras."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collectors.onvif_recording import HistorySpan, Recording, RecordingHistory, RetentionConfig
from probes.recorder_common import InventoryError, Verdict, combine, match_camera, scope
from probes.retention import (
    Params,
    configured_days,
    judge_retention,
    observed_days,
    required_days,
    spans_in_window,
)
from probes.targets import SiteView, Target, TargetKind

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def recording(
    token: str = "REC_1", earliest: datetime | None = NOW - timedelta(days=35), **kw: Any
) -> Recording:
    fields: dict[str, Any] = {
        "source_id": "",
        "source_name": token,
        "location": "",
        "address": "",
        "earliest": earliest,
        "latest": NOW,
        "status": "Recording",
        "tracks": (),
    }
    return Recording(token=token, **{**fields, **kw})


def span(kind: str, start_days: float, hours: float, rec: str = "REC_1") -> HistorySpan:
    start = days_ago(start_days)
    return HistorySpan(rec, kind, start, start + timedelta(hours=hours), open=False)  # type: ignore[arg-type]


def history(*spans: HistorySpan, complete: bool = True) -> RecordingHistory:
    return RecordingHistory(days_ago(30), NOW, (), spans, complete, ("x",))


def cam(id: str = "cam1", kind: TargetKind = "camera", host: str = "10.0.0.9", **params: Any) -> Target:
    return Target(id=id, kind=kind, protocol="onvif", host=host, port=80, area="gate", params=params)


def test_observed_days_from_the_earliest_data_on_the_recorders_clock() -> None:
    assert observed_days(days_ago(35), NOW) == pytest.approx(35)
    assert observed_days(NOW - timedelta(hours=36), NOW) == pytest.approx(1.5)
    assert observed_days(None, NOW) == 0
    assert observed_days(NOW + timedelta(hours=1), NOW) == 0  # data "from the future": none held


def test_spans_are_clipped_to_the_window_and_short_ones_dropped() -> None:
    straddling = span("gap", 31, 48)  # begins a day before the 30-day window, ends a day inside it
    inside = span("deleted", 3, 0.01)  # 36 s, under a 60 s tolerance
    kept = spans_in_window([straddling, inside, span("gap", 40, 2)], days_ago(30), NOW, 60)
    assert [(s.kind, s.start, round(s.seconds / 3600, 6)) for s in kept] == [("gap", days_ago(30), 24)]
    assert len(spans_in_window([inside], days_ago(30), NOW, 0)) == 1


def test_required_days_and_configured_days() -> None:
    params = Params()
    assert required_days(cam(), params) == 30
    key = Target("c", "camera", "onvif", "h", 1, "gate", tags={"key_location": True})
    assert required_days(key, params) == 90
    assert required_days(cam("nvr1", kind="nvr"), params) == 30
    config = RetentionConfig({"A": timedelta(days=90), "B": timedelta(0)}, ("x",))
    assert configured_days(config, "A") == 90.0
    assert configured_days(config, "B") == "disk_bound"
    assert configured_days(config, "C") is None and configured_days(None, "A") is None


def test_judge_pass_and_retention_short_never_pass_on_configuration() -> None:
    ok = judge_retention(recording(), 30, NOW, 40.0, history(), 60)
    assert (ok.status, ok.reason, ok.facts["observed_days"]) == ("pass", "retained", 35.0)
    young = judge_retention(recording(earliest=days_ago(20)), 30, NOW, 90.0, history(), 60)
    assert (young.status, young.reason) == ("fail", "retention_short")
    assert young.facts["configured_days"] == 90.0 and "configured for 90.0 days" in young.detail
    empty = judge_retention(recording(earliest=None), 30, NOW, None, None, 60)
    assert (empty.reason, empty.facts["observed_days"]) == ("retention_short", 0.0)


def test_judge_holes_in_the_window() -> None:
    both = judge_retention(
        recording(), 30, NOW, None, history(span("gap", 3, 6), span("deleted", 10, 24)), 60
    )
    assert (both.status, both.reason) == ("fail", "data_deleted")  # a deletion outranks a gap
    assert [g["hours"] for g in both.facts["gaps"]] == [6.0]
    assert [d["hours"] for d in both.facts["deletions"]] == [24.0]
    gap = judge_retention(recording(), 30, NOW, None, history(span("gap", 3, 6)), 60)
    assert gap.reason == "recording_gap" and "6.0 h" in gap.detail
    elsewhere = judge_retention(recording(), 30, NOW, None, history(span("gap", 3, 6, rec="REC_2")), 60)
    assert elsewhere.status == "pass"  # another recording's hole
    short_and_holed = judge_retention(
        recording(earliest=days_ago(10)), 30, NOW, None, history(span("gap", 3, 6)), 60
    )
    assert short_and_holed.reason == "retention_short" and short_and_holed.facts["gaps"]
    unfinished = judge_retention(recording(), 30, NOW, None, history(complete=False), 60)
    assert (unfinished.status, unfinished.reason) == ("error", "search_incomplete")


def test_match_camera_by_address_then_name_then_channel() -> None:
    recs = [
        recording("R1", source_id="http://10.0.0.9/onvif/device_service", source_name="东门"),
        recording("R2", address="rtsp://10.0.0.10:554/Streaming/Channels/201", source_name="cam2"),
        recording("R3", source_name="Channel 03"),
    ]
    assert match_camera(recs, cam(host="10.0.0.9")) == recs[0]
    assert match_camera(recs, cam(id="cam2", host="10.0.0.99")) == recs[1]
    assert match_camera(recs, cam(id="x", host="10.0.0.99", channel=3)) == recs[2]
    assert match_camera(recs, cam(id="x", host="10.0.0.99", channel=2)) == recs[1]  # Hikvision 201
    assert match_camera(recs, cam(id="x", host="10.0.0.99", channel=7)) is None
    same_host = [recording("A", source_id="http://10.0.0.9/a"), recording("B", source_id="http://10.0.0.9/b")]
    assert match_camera(same_host, cam(id="B", host="10.0.0.9")) == same_host[1]  # ambiguous: next rule


def test_scope_follows_recorded_by() -> None:
    recorder = cam("nvr1", kind="nvr")
    on_nvr = cam("cam1", recorded_by="nvr1")
    site = SiteView("s", (recorder, on_nvr, cam("edge")))
    assert scope(site, on_nvr).recorder == recorder and scope(site, on_nvr).on_nvr
    assert scope(site, site.get("edge")).recorder.id == "edge"
    assert scope(site, recorder).camera is None
    with pytest.raises(InventoryError, match="not in the inventory"):
        scope(site, cam("lost", recorded_by="nvr9"))
    with pytest.raises(InventoryError, match="records nothing"):
        scope(site, cam("d", kind="door"))


def test_combine_partial_and_severity() -> None:
    ok = Verdict("A", "pass", "retained", "a ok", {"observed_days": 35})
    gap = Verdict("B", "fail", "recording_gap", "b gap")
    short = Verdict("C", "fail", "retention_short", "c short")
    single = combine("retention", "nvr1", [gap], ["e1", "e1", ""], {"recorder": "nvr1"}, NOW, NOW)
    assert (single.status, single.reason, single.evidence) == ("fail", "recording_gap", ("e1",))
    mixed = combine("retention", "nvr1", [ok, gap, short], ["e1"], {}, NOW, NOW)
    assert (mixed.status, mixed.reason, mixed.ratio) == ("partial", "retention_short", round(1 / 3, 4))
    assert mixed.facts["failing"] == ["B", "C"] and len(mixed.facts["recordings"]) == 3
    assert combine("retention", "n", [gap, short], ["e1"], {}, NOW, NOW).status == "fail"
    assert combine("retention", "n", [ok, ok], ["e1"], {}, NOW, NOW).status == "pass"
