"""`zhian report` as a command: reading never writes into the sealed run, `--into-run` re-seals only
with the key that sealed it, and `--summary` honours every `--format` and says what was sampled."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from zhian.cli import main
from zhian.evidence.keys import load_or_create
from zhian.evidence.verify import verify

from .fixtures.report.runs import write_run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run")


def test_into_run_refuses_another_key_and_a_missing_key(
    run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sealed = (run / "manifest.json").read_bytes()
    other = load_or_create(tmp_path / "other-keys")
    assert main(["report", str(run), "--into-run", "--key-dir", str(other.folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "re-sealing needs the key that sealed the run" in err
    assert main(["report", str(run), "--into-run", "--key-dir", str(tmp_path / "empty")]) == 2
    assert "no signing key here" in capsys.readouterr().err
    assert not (tmp_path / "empty").exists()  # no key was made on the way
    assert (run / "manifest.json").read_bytes() == sealed and not (run / "reports").exists()
    original = (tmp_path / "keys" / "ed25519.pub").read_text("ascii")
    assert main(["report", str(run), "--into-run", "--key-dir", str(tmp_path / "keys"), "--lang", "en"]) == 0
    assert (run / "reports" / "report.en.html").is_file()
    assert (
        json.loads((run / "manifest.json").read_text("utf-8"))["signed_by"]["public_key"] == original.strip()
    )
    checked = verify(run)
    assert checked.ok and checked.signer_raw == load_or_create(tmp_path / "keys").public_raw


def test_into_run_does_not_mix_with_out_or_summary(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run), "--into-run", "--out", "x.html"]) == 2
    assert main(["report", str(run), "--into-run", "--summary"]) == 2
    assert capsys.readouterr().err.count("cannot go with --summary or --out") == 2


def test_summary_in_every_format(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sealed = (run / "manifest.json").read_bytes()
    assert main(["report", str(run), "--summary", "--format", "json", "--lang", "en"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["schema"] == "zhian.summary/1" and data["run_id"] == "r1"
    assert [lv["level"] for lv in data["levels"]] == ["A", "B", "C"]
    assert data["sampling"] == {"mode": "monitoring", "seed": 7, "groups": []}
    assert data["provisional"] is True  # indicators wait for the evaluator
    for fmt, start in (("text", "测试小区"), ("md", "# 测试小区"), ("html", "<!DOCTYPE html>")):
        assert main(["report", str(run), "--summary", "--format", fmt]) == 0
        out = capsys.readouterr().out
        assert out.startswith(start) and "全部设备" in out, fmt
    out = tmp_path / "summary.xml"
    assert main(["report", str(run), "--summary", "--format", "junit", "--out", str(out)]) == 0
    suite = ET.parse(out).getroot().find("testsuite")
    assert suite is not None
    names = [c.get("name") for c in suite.findall("testcase")]
    assert names[:3] == ["level A", "level B", "level C"]
    assert len(names) == 3 + len(data["fixes"])
    assert int(suite.get("failures", "0")) == len(suite.findall("testcase/failure"))
    assert (run / "manifest.json").read_bytes() == sealed
    assert main(["report", str(run), "--format", "text"]) == 2
    assert "add --summary" in capsys.readouterr().err


def test_the_summary_says_what_was_sampled(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    meta = json.loads((run / "run.json").read_text("utf-8"))
    meta["sampling"] = {
        "mode": "inspection",
        "seed": 4242,
        "groups": {
            "camera": {
                "population": 10,
                "size": 3,
                "ratio": 0.3,
                "rule": "7.4 a): fewer than 100 -> at least 30 %",
                "items": ["cam-1", "cam-4", "cam-9"],
            }
        },
    }
    (run / "run.json").write_text(json.dumps(meta), "utf-8")
    assert main(["report", str(run), "--summary", "--lang", "en"]) == 0
    assert "7.4 sample (seed 4242): 3 of 10 cameras (7.4 a))" in capsys.readouterr().out
    assert main(["report", str(run), "--summary"]) == 0
    assert "按 7.4 抽样（随机种子 4242）：10 台摄像机中抽 3 台（7.4 a)）" in capsys.readouterr().out


def test_help_lists_examples_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    text = capsys.readouterr().out
    assert "examples:" in text and "exit codes:" in text and "--into-run" in text
