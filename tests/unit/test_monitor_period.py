"""The period report of a monitor's state: shares per status, retention, outages, gaps, degradation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from zhian.cli.main import main
from zhian.evidence.keys import load_or_create
from zhian.evidence.segments import SegmentedLedger
from zhian.monitor.period import NOT_MONITORED, period_report

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
    led.append("indicator", {"indicator": "A2.3.4", "status": "fail", "record": "change", "at": at(6)})
    led.append("measure", {"device": "cam-1", "observed_days": 29.0, "required_days": 30, "at": at(6)})
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
    assert doc["broker_gaps"] == [
        {"device": "broker", "started_at": at(4), "error": "lost", "ended_at": at(4.5), "duration_s": 1800}
    ]
    assert doc["degraded_since_baseline"] == [{"indicator": "A2.3.4", "baseline": "pass", "now": "fail"}]


def test_the_report_command_reads_a_state_directory(tmp_path: Path, capsys: object) -> None:
    where = state(tmp_path)
    out = tmp_path / "month.md"
    assert main(["report", str(where), "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "| A2.3.4 |" in text and "| cam-1 | 29 | 29 | 30 | 2 |" in text
    assert main(["report", str(where)]) == 2  # the period is needed
