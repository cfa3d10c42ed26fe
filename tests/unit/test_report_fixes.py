"""Part 3 as fixes: grouped by cause and the device to fix, ranked by impact, and holding every
failed finding whoever decides its indicators."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhian.report.build import build_report
from zhian.report.fixes import fix_devices
from zhian.report.remediation import load_remedies
from zhian.report.rundir import FindingIn

from .fixtures.report.runs import write_run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("fixes") / "run")


def test_every_failed_finding_is_in_a_fix_and_the_order_is_by_impact(run: Path) -> None:
    report = build_report(run, "en", None)
    failing = {f.n for f in report.findings if f.status in ("fail", "partial")}
    fixes = report.problems.fixes
    assert failing and failing == {n for fix in fixes for n in fix.findings}
    assert [f.rank for f in fixes] == list(range(1, len(fixes) + 1))
    gated = [bool(f.gates) for f in fixes]
    assert gated == sorted(gated, reverse=True)  # failed basic requirements first
    rest = [f.points for f in fixes if not f.gates]
    assert rest == sorted(rest, reverse=True)  # then the points at stake
    plaintext = next(f for f in fixes if f.reason == "plaintext")
    assert plaintext.gates == ["A2.1.1"] and plaintext.rank == 1
    assert plaintext.indicator_titles["A2.1.1"]  # the indicator's text beside its id
    assert plaintext.points > 0 and plaintext.remediation


def test_the_device_to_fix() -> None:
    remedies, first = load_remedies(), {"platform": "platform-1", "door": "door-1"}
    unplugged = FindingIn(
        probe="offline_alert_test", device="intercom-3", status="fail", reason="alert_missing"
    )
    assert fix_devices(unplugged, remedies, first) == ["platform-1"]  # the platform raises no alert
    deaf = FindingIn(
        probe="fire_linkage_doors",
        device="panel-1",
        status="fail",
        reason="effect_missing",
        facts={
            "zones": [
                {"targets": {"door-garage": {"target": "door-garage", "status": "missing"}}},
                {"targets": {"door-hall": {"target": "door-hall", "status": "on_time"}}},
            ]
        },
    )
    assert fix_devices(deaf, remedies, first) == ["door-garage"]  # the door that did not open
    weak = FindingIn(
        probe="weak_credentials", device="door-2", status="fail", reason="default_credentials_accepted"
    )
    assert fix_devices(weak, remedies, first) == ["door-2"]
