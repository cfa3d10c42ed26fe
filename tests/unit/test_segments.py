"""The monitor's segmented ledger: one chain across sealed segments, each verifiable alone."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from zhian.evidence.keys import SigningKey, load_or_create
from zhian.evidence.segments import (
    SEGMENT_FILE,
    STATE_FILE,
    SegmentedLedger,
    read_json,
    records_of,
    segment_dirs,
    verify_chain,
    verify_segment,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 23, 59, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def ledger(state: Path, key: SigningKey, clock: Clock, snapshot: dict[str, Any]) -> SegmentedLedger:
    return SegmentedLedger(state, key, monitor_id="m1", snapshot=lambda: dict(snapshot), clock=clock)


def test_midnight_rolls_to_a_segment_chained_to_the_last_and_each_verifies(tmp_path: Path) -> None:
    key, clock, state = load_or_create(tmp_path / "keys"), Clock(), tmp_path / "state"
    led = ledger(state, key, clock, {"n": 1})
    led.resume()
    led.start()
    led.append("finding", {"device": "cam-1", "status": "pass"})
    clock.now += timedelta(minutes=2)  # past midnight
    led.append("finding", {"device": "cam-1", "status": "fail"})
    led.close()
    first, second = segment_dirs(state)
    assert first.name == "000001-20261130" and second.name == "000002-20261201"
    assert read_json(second / SEGMENT_FILE)["previous"] == first.name
    check = verify_chain(state)
    assert check.ok, (check.links, [v.problems for _, v in check.segments])
    assert check.records == led.records_total == 6  # start, finding, end; start, finding, end
    assert verify_segment(second).ok  # one day alone


def test_a_missing_or_altered_segment_breaks_the_chain(tmp_path: Path) -> None:
    key, clock, state = load_or_create(tmp_path / "keys"), Clock(), tmp_path / "state"
    led = ledger(state, key, clock, {})
    led.resume()
    led.start()
    for _ in range(3):
        led.append("finding", {"device": "d"})
        clock.now += timedelta(days=1)
    led.close()
    assert len(segment_dirs(state)) == 3  # a segment opens with the first record of its day
    copy = tmp_path / "copy"
    shutil.copytree(state, copy)
    shutil.rmtree(segment_dirs(copy)[1])
    links = verify_chain(copy).links
    assert any("expected here" in p for p in links) and any("chain broken" in p for p in links)
    db = sqlite3.connect(segment_dirs(state)[2] / "ledger.sqlite")
    altered = "CAST(replace(body, '\"d\"', '\"x\"') AS BLOB)"
    db.execute(f"UPDATE records SET body = {altered} WHERE kind = 'finding'")
    db.commit()
    db.close()
    check = verify_chain(state)
    assert not check.ok
    assert any("does not match its hash" in p for _, v in check.segments for p in v.problems)


def test_a_segment_left_open_by_a_kill_is_sealed_as_recovered_and_replayed(tmp_path: Path) -> None:
    key, clock, state = load_or_create(tmp_path / "keys"), Clock(), tmp_path / "state"
    led = ledger(state, key, clock, {"seen": 0})
    led.resume()
    led.start()
    led.close()  # one clean segment, its state sealed
    led = ledger(state, key, clock, {"seen": 0})
    assert led.resume().state == {"seen": 0}
    led.start()
    led.append("finding", {"device": "d", "status": "fail"})
    killed = tmp_path / "killed"  # a copy taken while open: as a kill -9 leaves it, WAL and all
    shutil.copytree(state, killed)
    assert any(p.name.endswith("-wal") for p in killed.rglob("*"))
    state = killed
    again = ledger(state, key, clock, {"seen": 1})
    resumed = again.resume()
    assert resumed.state == {"seen": 0}
    assert [r["kind"] for r in resumed.replay] == ["segment_start", "finding"]
    recovered = again.start()
    assert [p.name for p in recovered] == [segment_dirs(state)[1].name]
    assert read_json(recovered[0] / SEGMENT_FILE)["recovered"] is True
    assert read_json(recovered[0] / STATE_FILE) == {"seen": 1}
    again.close()
    check = verify_chain(state)
    assert check.ok, (check.links, [v.problems for _, v in check.segments])
    assert len(check.segments) == 3


def test_a_batch_is_one_transaction_all_or_nothing_and_the_chain_goes_on(tmp_path: Path) -> None:
    key, clock, state = load_or_create(tmp_path / "keys"), Clock(), tmp_path / "state"
    led = ledger(state, key, clock, {})
    led.resume()
    led.start()
    with led.batch():
        for n in range(3):
            led.append("finding", {"device": f"d{n}", "status": "pass"})
        with led.batch():  # nested: part of the same transaction
            led.append("finding", {"device": "d3", "status": "pass"})
    try:
        with led.batch():
            led.append("finding", {"device": "lost", "status": "fail"})
            raise OSError("disk full")
    except OSError:
        pass
    assert led.records_total == 5 and led.counts == {"finding": 4}  # segment_start and 4 findings
    led.append("finding", {"device": "d4", "status": "pass"})  # follows the head before the failed batch
    clock.now += timedelta(minutes=2)  # past midnight: the next batch rolls first
    with led.batch():
        led.append("finding", {"device": "d5", "status": "pass"})
    with led.batch():  # more rows than one statement takes
        for n in range(2500):
            led.append("exchange", {"device": f"e{n}"})
    led.close()
    check = verify_chain(state)
    assert check.ok, (check.links, [v.problems for _, v in check.segments])
    devices = [r.get("device") for s in segment_dirs(state) for r in records_of(s) if r["kind"] == "finding"]
    assert devices == ["d0", "d1", "d2", "d3", "d4", "d5"]
    assert [s.name for s in segment_dirs(state)] == ["000001-20261130", "000002-20261201"]
