"""`zhian run` stops cleanly at any moment: a signal in planning, the report or the seal, a failing
report, evidence that cannot be written. One line on stderr, a documented exit code, no traceback,
and a run directory that verifies as far as it was written. (Signals during the probes and active
tests, and a really full disk, are in tests/faults.)"""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from zhian.cli import main
from zhian.engine import session as session_module
from zhian.evidence.exchanges import ExchangeRecorder
from zhian.evidence.reader import LedgerReader
from zhian.evidence.verify import verify


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two cameras nobody answers for (a closed loopback port): a run over in a second or two."""
    monkeypatch.setenv("ZHIAN_TEST_PASSWORD", "Camera-Pass-77")
    doc = {
        "version": 1,
        "community": {"name": "翠湖", "target_level": "C"},
        "areas": [{"id": "gate", "kind": "perimeter"}],
        "credentials": {"cameras": {"username": "inspector", "password": "env:ZHIAN_TEST_PASSWORD"}},
        "inventory": {
            "cameras": [
                {
                    "id": f"cam-{n}",
                    "host": f"127.0.0.{n}",
                    "port": 9,
                    "area": "gate",
                    "credentials": "cameras",
                }
                for n in (1, 2)  # two addresses: config check refuses two devices on one
            ]
        },
        "limits": {"call_timeout_s": 1, "probe_timeout_s": 5},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def run(config: Path, out: Path) -> int:
    return main(["run", "--config", str(config), "--out", str(out), "--key-dir", str(out.parent / "keys")])


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("zhian:") and "probe jobs" not in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_run_of_unreachable_devices_completes(config: Path, tmp_path: Path) -> None:
    assert run(config, tmp_path / "run") == 0
    assert verify(tmp_path / "run").ok
    # what the limit on call-bound jobs did is evidence: the ledger's last record and run.json
    end = next(r for r in LedgerReader(tmp_path / "run").records() if r.kind == "run_end").body
    assert end["pace"]["cap"] == 256 and end["pace"]["watched_from"] and end["pace"]["lowest"] >= 1
    run_json = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert run_json["pace"]["cap"] == 256


def test_a_failing_report_costs_the_report_only(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*_: Any, **__: Any) -> Path:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(session_module, "write_report", broken)
    assert run(config, tmp_path / "run") == 7
    assert "the report could not be written (RuntimeError: template exploded)" in one_line(
        capsys.readouterr().err
    )
    assert verify(tmp_path / "run").ok and (tmp_path / "run" / "verdicts.yaml").is_file()


def test_sigterm_while_planning_leaves_nothing(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = session_module.load_rules

    def killed_while_loading() -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return real()

    monkeypatch.setattr(session_module, "load_rules", killed_while_loading)
    assert run(config, tmp_path / "run") == 143
    assert "SIGTERM: stopped before the run started" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are put back


def test_sigint_during_the_report_seals_without_it(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*_: Any, **__: Any) -> Path:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
        raise AssertionError("the signal did not stop the report")

    monkeypatch.setattr(session_module, "write_report", interrupted)
    assert run(config, tmp_path / "run") == 130
    out = capsys.readouterr()
    assert "sealed without it" in out.out and "interrupted" in one_line(out.err)
    assert verify(tmp_path / "run").ok


def test_sigterm_during_the_seal_finishes_the_seal(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = session_module.seal

    def sealing(*args: Any) -> Any:
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args)

    monkeypatch.setattr(session_module, "seal", sealing)
    assert run(config, tmp_path / "run") == 143
    capsys.readouterr()
    result = verify(tmp_path / "run")
    assert result.ok
    meta = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))
    assert meta["interrupted"] is False  # it was complete when the signal came


def test_evidence_that_cannot_be_written_stops_the_run_recoverably(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = ExchangeRecorder.__call__
    calls = []

    def full(self: ExchangeRecorder, exchange: Any) -> None:
        calls.append(exchange)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, exchange)

    monkeypatch.setattr(ExchangeRecorder, "__call__", full)
    out = tmp_path / "run"
    assert run(config, out) == 6
    assert "No space left on device" in one_line(capsys.readouterr().err)
    before = verify(out)
    assert before.unsealed and before.records >= 3  # run_start, the two exchanges written, run_end
    assert main(["seal", "--recover", str(out), "--key-dir", str(tmp_path / "keys")]) == 0
    assert verify(out).ok
