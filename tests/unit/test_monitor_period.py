"""The period report of a monitor's state: shares per status, retention, outages, gaps, degradation."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from trestle.oscal.assessment_results import Model

from zhian.cli.main import main
from zhian.evidence.keys import load_or_create
from zhian.evidence.manifest import file_sha256
from zhian.evidence.segments import SegmentedLedger, segment_dirs
from zhian.monitor.period import NOT_MONITORED, period_report
from zhian.report.messages import messages
from zhian.report.svg_period import retention_over_period

DAY = datetime(2026, 11, 1, tzinfo=UTC)


def at(hours: float) -> str:
    return (DAY + timedelta(hours=hours)).isoformat()


def state(tmp_path: Path) -> Path:
    key = load_or_create(tmp_path / "keys")
    led = SegmentedLedger(tmp_path / "state", key, monitor_id="m", snapshot=dict, clock=lambda: DAY)
    led.resume()
    led.start()
    led.append("monitor_start", {"started_at": at(0)})
    led.append("indicator", {"indicator": "A2.3.4", "status": "pass", "record": "change", "at": at(0)})
    led.append("measure", {"device": "cam-1", "observed_days": 31.0, "required_days": 30, "at": at(1)})
    led.append("finding", {"probe": "heartbeat", "device": "d1", "status": "fail", "reason": "silent",
                           "finished_at": at(2), "change": {"from": "pass", "to": "fail"}})  # fmt: skip
    led.append("finding", {"probe": "heartbeat", "device": "d1", "status": "pass", "reason": "alive",
                           "finished_at": at(3), "change": {"from": "fail", "to": "pass"}})  # fmt: skip
    led.append("gap", {"device": "broker", "started_at": at(4), "error": "lost"})
    led.append("gap_end", {"device": "broker", "started_at": at(4), "ended_at": at(4.5), "duration_s": 1800})
    led.append("event_gap", {"device": "cam-1", "started_at": at(5), "reason": "silent", "error": "no reply"})
    end = {"ended_at": at(5.1), "duration_s": 360}
    led.append("event_gap_end", {"device": "cam-1", "started_at": at(5), **end})
    led.append("indicator", {"indicator": "A2.3.4", "status": "fail", "record": "change", "at": at(6)})
    led.append("measure", {"device": "cam-1", "observed_days": 29.0, "required_days": 30, "at": at(6)})
    led.append("outage_alert", {"device": "d1", "outage_started_at": at(2), "alert": True, "alert_id": "al-7",
                                "after_s": 41.5, "window_s": 185})  # fmt: skip
    timeline = [
        {"effect": "doors", "target": "door-1", "status": "on_time", "delay_s": 2.1, "deadline_s": 10},
        {"effect": "video", "target": "cam-1", "status": "late", "delay_s": 14.0, "deadline_s": 10},
    ]
    led.append("linkage", {"device": "panel-1", "at": at(7), "verdicts": {"fire_linkage": {"status": "fail",
               "reason": "effect_late"}}, "facts": {"trigger": "fire", "zone": "Z3", "trigger_at": at(6.99),
               "timeline": timeline, "outcome": "triggered"}})  # fmt: skip
    for effect in ("doors", "video"):
        facts = {"trigger": "fire", "zone": "Z3", "effect": effect, "trigger_at": at(6.99),
                 "timeline": timeline, "outcome": "triggered"}  # fmt: skip
        led.append("finding", {"probe": "fire_linkage", "device": "panel-1", "status": "fail",
                               "reason": "effect_late", "finished_at": at(7), "facts": facts})  # fmt: skip
    led.append("monitor_stop", {"at": at(12)})  # then not running until the day's end
    led.close()
    return tmp_path / "state"


def test_shares_outages_gaps_retention_and_what_degraded(tmp_path: Path) -> None:
    baseline = tmp_path / "run"
    baseline.mkdir()
    (baseline / "verdicts.yaml").write_text("verdicts:\n  A2.3.4: {status: pass, source: machine}\n")
    doc = period_report(state(tmp_path), date(2026, 11, 1), date(2026, 11, 1), baseline)
    assert doc["monitored_share"] == 0.5
    assert doc["indicators"]["A2.3.4"] == {"fail": 0.25, NOT_MONITORED: 0.5, "pass": 0.25}
    assert [r["observed_days"] for r in doc["retention"]["cam-1"]] == [31.0, 29.0]
    [outage] = doc["outages"]
    assert (outage["device"], outage["duration_s"]) == ("d1", 3600.0)
    assert outage["platform_alert"] == {"alert": True, "alert_id": "al-7", "after_s": 41.5, "window_s": 185}
    [event] = doc["linkage_events"]  # a record and two findings of one trigger: one event, each effect once
    assert event["findings"] == [
        {"probe": "fire_linkage", "device": "panel-1", "status": "fail", "reason": "effect_late"}
    ]
    assert (event["at"], event["trigger"], event["zone"]) == (at(6.99), "fire", "Z3")
    assert [(e["target"], e["status"], e["delay_s"]) for e in event["effects"]] == [
        ("door-1", "on_time", 2.1),
        ("cam-1", "late", 14.0),
    ]
    assert doc["broker_gaps"] == [
        {"device": "broker", "started_at": at(4), "error": "lost", "ended_at": at(4.5), "duration_s": 1800}
    ]
    [gap] = doc["event_gaps"]
    assert (gap["device"], gap["reason"], gap["ended_at"]) == ("cam-1", "silent", at(5.1))
    assert doc["degraded_since_baseline"] == [
        {"indicator": "A2.3.4", "baseline": "pass", "now": "fail", "since": at(6)}
    ]


def test_the_report_command_reads_a_state_directory(tmp_path: Path, capsys: object) -> None:
    where = state(tmp_path)
    out = tmp_path / "month.md"
    assert main(["report", str(where), "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| A2.3.4 |" in text and "| cam-1 | 29 | 29 | 30 | 2 |" in text
    assert main(["report", str(where)]) == 2  # the period is needed


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_format_of_the_period_report(tmp_path: Path, lang: str) -> None:
    where = state(tmp_path)
    baseline = tmp_path / "run"
    baseline.mkdir()
    (baseline / "verdicts.yaml").write_text("verdicts:\n  A2.3.4: {status: pass, source: machine}\n")
    period = ["--from", "2026-11-01", "--to", "2026-11-01", "--baseline", str(baseline), "--lang", lang]
    out = {}
    for fmt in ("html", "md", "json", "junit", "oscal"):
        path = tmp_path / f"month.{lang}.{fmt}"
        assert main(["report", str(where), *period, "--format", fmt, "--out", str(path)]) == 0
        out[fmt] = path.read_text(encoding="utf-8")
    t = messages(lang)  # type: ignore[arg-type]
    page = out["html"]
    assert page.startswith("<!DOCTYPE html>") and f'lang="{lang}"' in page
    assert t("period.chart.title") in page and "<polyline" in page  # cam-1's two checks, joined
    assert t("period.alert.yes", after="41.5", id="al-7") in page
    assert t("watch.late") in page and "door-1" in page and "Z3" in page
    assert t("period.degraded") in page and "<script" not in page
    assert t("period.event_gaps") in page and "silent" in page
    assert t("period.alert.yes", after="41.5", id="al-7") in out["md"]
    assert json.loads(out["json"])["schema"] == "zhian.period/1"
    suite = ET.fromstring(out["junit"]).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"  # A2.3.4 failed for part of the day
    Model.model_validate(json.loads(out["oscal"]))  # the OSCAL schema's models, as a run's OSCAL


def test_the_period_in_oscal_validates_and_cites_the_sealed_segments(tmp_path: Path) -> None:
    where = state(tmp_path)
    period = ["--from", "2026-11-01", "--to", "2026-11-01", "--format", "oscal"]

    def oscal(out: Path) -> dict[str, Any]:
        assert main(["report", str(where), *period, "--out", str(out)]) == 0
        doc: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
        return doc

    doc = oscal(tmp_path / "ar.json")
    Model.model_validate(doc)
    ar = doc["assessment-results"]
    result = ar["results"][0]
    assert (result["start"], result["end"]) == (DAY.isoformat(), (DAY + timedelta(days=1)).isoformat())
    states = {f["target"]["target-id"]: f["target"]["status"]["state"] for f in result["findings"]}
    assert states == {"A2.3.4": "not-satisfied"}  # failed for a quarter of the day
    titles = [o["title"] for o in result["observations"]]
    assert any(t.startswith("outage of d1") for t in titles) and any(
        "retention of cam-1" in t for t in titles
    )
    assert any(t.startswith("fire_linkage") or "Z3" in t for t in titles), titles
    # every observation cites the segment, which names its signed manifest by its sha256
    resources = {r["uuid"]: r for r in ar["back-matter"]["resources"]}
    (segment,) = segment_dirs(where)
    manifest = file_sha256(segment / "manifest.json")
    for observation in result["observations"]:
        (cited,) = observation["relevant-evidence"]
        link = resources[cited["href"].removeprefix("#")]["rlinks"][0]
        assert link == {
            "href": f"segments/{segment.name}/manifest.json",
            "hashes": [{"algorithm": "SHA-256", "value": manifest}],
        }
    assert ar["import-ap"]["href"].removeprefix("#") in resources
    assert oscal(tmp_path / "again.json") == doc  # the same evidence gives the same document
    doc["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = "lapsed"
    with pytest.raises(ValidationError):
        Model.model_validate(doc)  # and the validation is not vacuous


def test_the_retention_chart_names_the_cameras_that_fell_below() -> None:
    t = messages("en")
    start = datetime(2026, 11, 1, tzinfo=UTC)
    series = {
        "cam-ok": [{"at": at(h), "observed_days": 40.0, "required_days": 30} for h in (1, 30)],
        "cam-<low>": [
            {"at": at(h), "observed_days": d, "required_days": 30} for h, d in ((1, 31.0), (30, 28.0))
        ],
    }
    svg = retention_over_period(series, start, start + timedelta(days=2), t)
    assert svg is not None and "cam-&lt;low&gt;" in svg and ">cam-ok<" not in svg
    assert retention_over_period({"cam": [{"at": at(1), "observed_days": None}]}, start, start, t) is None
