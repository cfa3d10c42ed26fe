"""A monitor's state directory pushed into the archive: every sealed segment verified and linked, each
stored once, the open one left; what has degraded since the graded run read from the latest segment."""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mapping.catalog import load_catalog
from tests.archive.helpers import archive, graded_run, trusted
from zhian.archive import portfolio
from zhian.evidence.keys import load_or_create
from zhian.evidence.segments import SegmentedLedger, segment_dirs

COMMUNITY = {"name": "测试小区", "operator": "某物业", "address": "", "target_level": "B"}
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


class Board:
    """What the monitor's board holds, as `state.json` seals it with each segment."""

    def __init__(self, indicator: str) -> None:
        self.indicator = indicator
        self.state: dict[str, Any] = {
            "schema": "zhian.monitor.state/1",
            "findings": {},
            "indicators": {indicator: {"status": "pass", "since": T0.isoformat(), "held_at": T0.isoformat()}},
        }

    def __call__(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.state))


def monitor_state(root: Path, days: int = 3) -> tuple[Path, str]:
    """`days` days of a monitor (one segment each, the last one still open); on the second day the
    indicator turns from pass to fail on a retention finding. Returns the state directory and indicator."""
    indicator = load_catalog().level("C")[0].id
    board, clock = Board(indicator), [T0]
    led = SegmentedLedger(
        root / "state", load_or_create(root / "keys"), monitor_id="m1", snapshot=board, clock=lambda: clock[0]
    )
    led.resume()
    led.start()
    led.append("monitor_start", {"run_id": "m1", "started_at": T0.isoformat(), "community": COMMUNITY})
    led.append("indicator", {"indicator": indicator, "status": "pass", "at": T0.isoformat()})
    for day in range(1, days):
        clock[0] = T0 + timedelta(days=day)
        at = clock[0].isoformat()
        if day == 1:
            finding = {"probe": "retention", "device": "cam-1", "status": "fail", "reason": "retention_short",
                       "detail": "12 days of 30", "evidence": ["x1"], "ratio": None, "facts": {}}  # fmt: skip
            led.append("finding", finding | {"finished_at": at, "indicators": [indicator]})
            board.state["findings"]["retention|cam-1"] = finding | {"since": at}
            alive = {"probe": "heartbeat", "device": "gw-1", "status": "pass", "reason": "alive"}
            board.state["findings"]["heartbeat|gw-1"] = finding | alive
            board.state["indicators"][indicator] = {"status": "fail", "since": at, "held_at": at}
            led.append("indicator", {"indicator": indicator, "status": "fail", "at": at})
        else:
            held = {"indicator": indicator, "status": "fail", "at": at, "record": "still_holds"}
            led.append("indicator", held)
    led.ledger.close()  # type: ignore[union-attr]  # the last day's segment stays open, as while running
    return root / "state", indicator


def stored(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT id, kind, run_id, segment_index, graded_run FROM runs ORDER BY id"
        ).fetchall()


def test_a_state_directory_is_pushed_segment_by_segment_once_and_degradation_read_from_it(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    graded = graded_run(tmp_path, "graded", "2026-12-01")
    state, indicator = monitor_state(tmp_path)
    assert archive("push", str(graded), str(state), "--db", db_url, *trusted(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "2 segments stored, 0 already archived; the open segment 000003-20261204 is left" in out
    runs = stored(db_url)
    assert [(r[1], r[2], r[3], r[4]) for r in runs] == [
        ("run", "r1", None, None),
        ("segment", "m1/000001-20261202", 1, 1),  # tied to the community's graded run
        ("segment", "m1/000002-20261203", 2, 1),
    ]
    assert archive("push", str(state), "--db", db_url, *trusted(tmp_path)) == 0
    assert "0 segments stored, 2 already archived" in capsys.readouterr().out
    assert stored(db_url) == runs

    for number in ("2", "3"):
        assert archive("verify", number, "--db", db_url) == 0
        assert "verified from the database" in capsys.readouterr().out

    assert archive("list", "--db", db_url, "--as-of", "2026-12-07") == 0
    listed = capsys.readouterr().out
    assert "latest segment #3" in listed and "1 indicators DEGRADED since the graded run" in listed
    assert archive("show", "测试小区", "--db", db_url, "--as-of", "2026-12-07", "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["degraded"] == [
        {"indicator": indicator, "before": "pass", "now": "fail", "since": "2026-12-03T08:00:00+00:00"}
    ]
    [problem] = shown["problems"]
    assert (problem["indicator"], problem["devices"], problem["reasons"]) == (
        indicator,
        ["cam-1"],
        ["retention_short"],
    )
    with psycopg.connect(db_url) as conn:  # of the board, the findings that do not pass
        assert conn.execute("SELECT device FROM findings WHERE run = 3").fetchall() == [("cam-1",)]
    monkeypatch.setattr(portfolio, "SEGMENTS_SHOWN", 1)  # a page lists the latest segments only
    assert archive("show", "测试小区", "--db", db_url, "--format", "json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(r["kind"], r["id"]) for r in shown["runs"]] == [("segment", 3), ("run", 1)]
    assert shown["older_segments"] == 1


def test_a_first_day_has_nothing_sealed_to_push_yet(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = monitor_state(tmp_path, days=1)
    assert archive("push", str(state), "--db", db_url, *trusted(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "0 segments stored, 0 already archived; the open segment 000001-20261202 is left" in out
    assert stored(db_url) == []


def test_segments_removed_locally_after_their_push_still_anchor_the_chain(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = monitor_state(tmp_path, days=4)
    before = tmp_path / "copy"
    shutil.copytree(state, before)
    first = segment_dirs(state)[0]
    shutil.rmtree(segment_dirs(before)[0])
    assert archive("push", str(before), "--db", db_url, *trusted(tmp_path)) == 1  # nothing to follow
    assert "follows segment 1, which is neither in" in capsys.readouterr().out
    assert stored(db_url) == []

    keep = tmp_path / "one"
    (keep / "segments").mkdir(parents=True)
    shutil.copytree(first, keep / "segments" / first.name)
    assert archive("push", str(keep), "--db", db_url, *trusted(tmp_path)) == 0
    assert archive("push", str(before), "--db", db_url, *trusted(tmp_path)) == 0  # follows the stored one
    assert "2 segments stored, 0 already archived" in capsys.readouterr().out.splitlines()[-1]
    assert [r[3] for r in stored(db_url)] == [1, 2, 3]


def test_a_broken_chain_or_segment_is_refused_whole(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = monitor_state(tmp_path, days=4)
    gap = tmp_path / "gap"
    shutil.copytree(state, gap)
    shutil.rmtree(segment_dirs(gap)[1])
    assert archive("push", str(gap), "--db", db_url, *trusted(tmp_path)) == 1
    assert "does not follow 000001-20261202" in capsys.readouterr().out

    db = sqlite3.connect(segment_dirs(state)[1] / "ledger.sqlite")
    altered = "CAST(replace(body, 'cam-1', 'cam-9') AS BLOB)"
    db.execute(f"UPDATE records SET body = {altered} WHERE kind = 'finding'")
    db.commit()
    db.close()
    assert archive("push", str(state), "--db", db_url, *trusted(tmp_path)) == 1
    out = capsys.readouterr().out
    assert "000002-20261203: does not verify" in out and "nothing was written" in out
    assert stored(db_url) == []  # the good segment before it is not stored either

    assert archive("push", str(segment_dirs(state)[0]), "--db", db_url, *trusted(tmp_path)) == 1
    assert "one monitor segment: push its monitor's state directory" in capsys.readouterr().out
