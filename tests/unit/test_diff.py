"""`zhian diff RUN_A RUN_B`: indicator by indicator and device by device, improved or regressed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from zhian.cli import main

from .fixtures.report.runs import write_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("diff")
    a = write_run(base / "a")
    score = json.loads((a / "score.json").read_text("utf-8"))
    indicators = {i: d for lv in score["levels"].values() for i, d in lv["indicators"].items()}
    failed, passed = [i for i, d in indicators.items() if d["status"] == "fail"][:2]
    indicators[passed]["status"] = "pass"  # in A; B fails it again
    (a / "score.json").write_text(json.dumps(score), "utf-8")
    b = base / "b"
    shutil.copytree(a, b)
    indicators[failed]["status"] = "pass"
    indicators[passed]["status"] = "fail"
    score["levels"]["A"]["total"] += 1
    score["grade"] = "C"
    (b / "score.json").write_text(json.dumps(score), "utf-8")
    rows = [json.loads(line) for line in (b / "findings.jsonl").read_text("utf-8").splitlines()]
    first_fail = next(r for r in rows if r["status"] == "fail")
    first_fail.update(status="pass", reason="ok")
    dropped = rows.pop()
    (b / "findings.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    meta = json.loads((b / "run.json").read_text("utf-8")) | {"run_id": "r2"}
    (b / "run.json").write_text(json.dumps(meta), "utf-8")
    (base / "expect.json").write_text(
        json.dumps({"fixed": failed, "broke": passed, "device": first_fail, "dropped": dropped}), "utf-8"
    )
    return a, b


def test_diff_names_each_change(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = runs
    expect: dict[str, Any] = json.loads((a.parent / "expect.json").read_text("utf-8"))
    assert main(["diff", str(a), str(b), "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == "zhian.diff/1" and (d["a"]["run_id"], d["b"]["run_id"]) == ("r1", "r2")
    assert d["grade"] == {"a": None, "b": "C"}
    level_a = next(lv for lv in d["levels"] if lv["level"] == "A")
    assert level_a["b"] - level_a["a"] == 1
    changes = {row["indicator"]: row["change"] for row in d["indicators"]}
    assert changes == {expect["fixed"]: "improved", expect["broke"]: "regressed"}
    devices = {(row["device"], row["probe"]): row for row in d["devices"]}
    mended = devices[(expect["device"]["device"], expect["device"]["probe"])]
    assert "pass:ok" in mended["b"] and mended["a"] != mended["b"]
    assert (expect["dropped"]["device"], expect["dropped"]["probe"]) in devices
    assert main(["diff", str(a), str(b)]) == 0
    text = capsys.readouterr().out
    assert f"{expect['broke']}" in text and "regressed" in text and "grade: none -> C" in text


def test_diff_fail_on_regression(runs: tuple[Path, Path], capsys: pytest.CaptureFixture[str]) -> None:
    a, b = runs
    assert main(["diff", str(a), str(a), "--fail-on", "regression"]) == 0
    assert "indicators changed: 0" in capsys.readouterr().out
    assert main(["diff", str(a), str(b), "--fail-on", "regression"]) == 3
    assert "fail-on regression:" in capsys.readouterr().err
    assert main(["diff", str(a), str(a.parent / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err
