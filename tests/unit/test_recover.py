"""A run killed at any moment is not lost: `zhian verify` tells it from a tampered one, and
`zhian seal --recover` seals what it kept, saying so in the manifest, run.json and the report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.browser import open_page
from zhian.cli import main
from zhian.evidence.verify import verify

WRITER = """
import sys
from pathlib import Path
from probes.finding import Finding
from zhian.evidence.exchanges import finding_fields
from zhian.evidence.ledger import open_ledger
ledger = open_ledger(Path(sys.argv[1]), run_id="killed")
ledger.append("run_start", {"run_id": "killed", "started_at": "2026-12-07T10:00:00+00:00",
                            "community": {"name": "翠湖"}, "levels": ["A"], "tool": "zhian test"})
n = 0
while True:
    n += 1
    ledger.append("exchange", {"device": f"cam-{n % 3}", "probe": "retention", "n": n})
    finding = Finding("retention", f"cam-{n % 3}", "fail", "retention_short", "kept 12 days",
                      {"retention_days": 12}, (f"x{n}",))
    ledger.append("finding", finding_fields(finding, "killed", ["A2.3.4"]))
    if n == 40:
        print("ready", flush=True)
"""


@pytest.fixture
def killed(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(run)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (run / "findings.jsonl").write_text('{"probe": "retention", "dev', encoding="utf-8")  # a torn line
    return run


def test_a_killed_run_is_unsealed_not_broken_and_recovers(
    killed: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = verify(killed)
    assert before.unsealed and before.records >= 81
    assert main(["verify", str(killed)]) == 4
    assert f"{before.records} records, chain valid, not sealed" in capsys.readouterr().out

    assert main(["seal", "--recover", str(killed), "--reason", "power cut", "--lang", "en"]) == 0
    assert "recovered" in capsys.readouterr().out
    after = verify(killed)
    assert after.ok and after.records == before.records + 1  # the run_end record that says so
    manifest = json.loads((killed / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["recovered"] is True and manifest["recovery_reason"] == "power cut"
    meta = json.loads((killed / "run.json").read_text(encoding="utf-8"))
    assert meta["recovered"] is True and meta["findings"] == (before.records - 1) // 2
    rows = [json.loads(line) for line in (killed / "findings.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == meta["findings"] and rows[0]["indicators"] == ["A2.3.4"]  # rebuilt from the ledger
    verdicts = (killed / "verdicts.yaml").read_text(encoding="utf-8")
    assert "A2.3.4" in verdicts and "fail" in verdicts
    report = next((killed / "reports").glob("report.en.html")).read_text(encoding="utf-8")
    assert "zhian seal --recover" in report and "power cut" in report
    assert not list(killed.glob("ledger.sqlite-*"))  # the WAL folded into the one file
    assert main(["verify", str(killed)]) == 0  # this machine's key sealed it

    assert main(["seal", "--recover", str(killed)]) == 2  # sealed already
    assert "sealed already" in capsys.readouterr().err


def test_a_broken_chain_is_never_sealed(killed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(killed / "ledger.sqlite") as db:
        db.execute(
            "UPDATE records SET body = CAST(replace(CAST(body AS TEXT), '12', '99') AS BLOB) WHERE seq = 3"
        )
    assert main(["seal", "--recover", str(killed)]) == 1
    assert "NOT recovered" in capsys.readouterr().out
    assert not (killed / "manifest.json").exists()
    assert main(["verify", str(killed)]) == 1


def test_the_summary_and_the_viewer_say_recovered_and_why(
    killed: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seal", "--recover", str(killed), "--reason", "power cut", "--lang", "en"]) == 0
    capsys.readouterr()
    assert main(["report", str(killed), "--summary", "--format", "json", "--lang", "en"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["recovered"] is True and summary["recovery_reason"] == "power cut"
    assert summary["interrupted"] is True
    assert main(["report", str(killed), "--summary", "--lang", "en"]) == 0
    screen = capsys.readouterr().out
    assert "zhian seal --recover" in screen and "(reason: power cut)" in screen

    assert main(["export", str(killed), "--pack", str(tmp_path / "pack.zip")]) == 0
    with zipfile.ZipFile(tmp_path / "pack.zip") as archive:
        archive.extract("viewer.html", tmp_path / "unzipped")
    shown = """window.zhianVerification.then(r => ({
      verified: r.verified,
      recovered: document.querySelector('#summary dd.recovered')?.textContent,
    }))"""
    page = open_page(tmp_path / "unzipped" / "viewer.html", shown)
    assert page.exceptions == [] and page.console == [] and page.requests == [], page.exceptions
    assert page.value["verified"] is True
    assert "zhian seal --recover" in page.value["recovered"] and "power cut" in page.value["recovered"]
