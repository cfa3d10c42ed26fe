"""`zhian run` end to end against the virtual community, as a separate process on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SiteFactory

from simulator.site import Site
from zhian.cli.sim import operator_endpoint
from zhian.cli.simconfig import site_config
from zhian.evidence.verify import verify

pytestmark = pytest.mark.peers

# One simulator process carries the whole site on 2 cores: under load a gateway's tick can slip
# by a couple of seconds, so silence is judged over 5 missed heartbeats.
HEARTBEAT_S = 1.0
FAST_THRESHOLDS = {
    "heartbeat_interval_s": HEARTBEAT_S,
    "heartbeat_misses": 5,
    "observe_s": 7,
    "offline_alert_window_s": 6,
    "recording_fresh_s": 600,
    # The site acts within 0.3 s. Only the doors' deadline tells late from on time here (the slow
    # garage door); the others leave room for a loaded machine (they cost time only when missed).
    "linkage": {
        "doors_unlock_s": 3,
        "camera_alarm_s": 10,
        "emergency_lighting_s": 10,
        "broadcast_s": 10,
        "platform_alert_s": 10,
        "lighting_s": 10,
    },
}


ALL_ACTIVE = ["fire_linkage", "intrusion_linkage", "offline_alert", "credentials", "lockout"]


async def write_config(
    site: Site, tmp: Path, hook: str | None, allow: list[str], *, call_timeout_s: float = 15
) -> tuple[Path, dict[str, str]]:
    """The site's config with test thresholds. The call timeout leaves room for a simulator that
    serves every device from one process on a loaded machine; a site with hung devices pays it per
    call to them, so it may ask for less."""
    config, secrets = site_config(site, hook)
    config["thresholds"] = FAST_THRESHOLDS
    config["sampling"] = {"mode": "monitoring"}
    config["active"] = {"allow": allow, "guided": True, "operator_hook": hook, "restore_settle_s": 2}
    config["limits"] = {"call_timeout_s": call_timeout_s, "probe_timeout_s": 120}
    path = tmp / "site.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    return path, secrets


async def start_zhian(
    config: Path, out: Path, env: dict[str, str], *extra: str
) -> asyncio.subprocess.Process:
    """`zhian run` as its own process, its signing key beside the run directory (never inside)."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "zhian.cli",
        "run",
        "--config",
        str(config),
        "--out",
        str(out),
        *extra,
        env={**os.environ, "ZHIAN_KEY_DIR": str(out.parent / "keys"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def zhian_run(config: Path, out: Path, env: dict[str, str], *extra: str) -> tuple[int, str, str]:
    proc = await start_zhian(config, out, env, *extra)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=420)
    assert proc.returncode is not None
    return proc.returncode, stdout.decode(), stderr.decode()


def findings(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
async def test_run_small_passes_what_is_built_right(community_site: SiteFactory, tmp_path: Path) -> None:
    # Passive only: each active test is run on the small site by its own peer test; here the
    # run's planning, concurrency, outputs and evidence are what is checked.
    async with community_site("small", heartbeat_s=HEARTBEAT_S) as site:
        config, secrets = await write_config(site, tmp_path, None, [])
        code, _, stderr = await zhian_run(config, tmp_path / "run", secrets, "--fail-on", "fail")
    assert code == 0, stderr  # nothing failed: --fail-on fail lets it through
    out = tmp_path / "run"
    rows = findings(out)
    bad = [
        (r["probe"], r["device"], r["status"], r["reason"]) for r in rows if r["status"] in ("fail", "error")
    ]
    assert not bad, bad
    verdicts = yaml.safe_load((out / "verdicts.yaml").read_text(encoding="utf-8"))["verdicts"]
    assert verdicts["A2.3.4"]["status"] == "pass"
    assert all(v["status"] != "fail" for v in verdicts.values()), verdicts
    score = json.loads((out / "score.json").read_text(encoding="utf-8"))
    assert score["schema"] == "zhian.score/1"
    for row in rows:
        if row["status"] == "pass":
            assert row["evidence"], row
    written = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for password in secrets.values():
        assert password.encode() not in written
    result = verify(out)
    assert result.ok and result.records > len(rows), result.problems


# Each fault of faulty.yaml, found by the probe that should find it, on the device that has it.
EXPECTED_FAILS = {
    ("transport_security", "cam-perimeter-01"): "plaintext",
    ("retention", "cam-garage-01"): "retention_short",
    ("retention", "cam-charging-01"): "recording_gap",
    ("retention", "cam-pump-01"): "data_deleted",
    ("video_signal", "cam-perimeter-02"): "video_signal_lost",
    ("clock_skew", "panel-b2"): "clock_skew",
    ("heartbeat", "smoke-b1-0102"): "stale_online",
    ("offline_alert", "platform"): "alert_missing",
    ("weak_credentials", "door-pump-room"): "default_credentials_accepted",
    ("login_lockout", "cam-gate-01"): "no_lockout",
    ("fire_linkage_doors", "panel-b2"): "effect_missing",
    # the garage door, in panel-b1's zone 2, unlocks after its deadline (monitoring: every zone)
    ("fire_linkage_doors", "panel-b1"): "effect_late",
}
# The platform never raises device_offline: every offline test of an intercom fails.
INTERCOMS = ("intercom-b1-01", "intercom-b1-02", "intercom-b2-01", "intercom-b2-02")
BROKEN = {"cam-roof-b1", "cam-garage-02", "cam-b2-lobby", "cam-b1-lobby", "door-roof-b1"}  # errors
DEAF = "door-gate-01"  # its pull points go deaf: its event service's finding is an error, nothing else
EXPECTED_FAILED_INDICATORS = {
    "A2.1.1",
    "A2.3.4",
    "A4.2.2",
    "B4.2.1",
    "C1.1.3",
    "B1.5.2",
    "A4.3.2",
    "B4.3.4",
    "C4.3.3",
    "C2.3.2",
    "B2.3.2",
    "A3.2.5",
    "B3.2.3",
}


@pytest.mark.slow
async def test_run_faulty_finds_each_fault_and_nothing_else(
    community_site: SiteFactory, tmp_path: Path
) -> None:
    # the garage door's 40 s become 3.6 s (+0.2 s of the platform's command): late against its 3 s
    # deadline, and seen well inside the probe's 2 s of grace after it even when polls lag under load
    async with community_site("faulty", heartbeat_s=HEARTBEAT_S, linkage_slow_scale=0.09) as site:
        runner, hook = await operator_endpoint(site, 0)
        try:
            config, secrets = await write_config(site, tmp_path, hook, ALL_ACTIVE, call_timeout_s=5)
            code, stdout, stderr = await zhian_run(
                config, tmp_path / "run", secrets, "--allow-active", "--fail-on", "gate"
            )
        finally:
            await runner.cleanup()
    # a faulty site is a finding, not a failure of zhian: only --fail-on turns it into exit 3
    assert code == 3, stderr
    assert "zhian: fail-on gate: C1.1.3 failed: a basic requirement (6.2)" in stderr
    rows = findings(tmp_path / "run")
    failed = {(r["probe"], r["device"]): r["reason"] for r in rows if r["status"] == "fail"}
    expected = dict(EXPECTED_FAILS) | {("offline_alert_test", i): "alert_missing" for i in INTERCOMS}
    assert failed == expected
    errors = {r["device"] for r in rows if r["status"] == "error"}
    assert errors <= BROKEN | {DEAF, "panel-b1", "panel-b2"}, errors - BROKEN
    deaf = [(r["probe"], r["reason"]) for r in rows if r["device"] == DEAF and r["status"] == "error"]
    assert deaf == [("event_service", "subscription_silent")], deaf
    # a panel's linkage cannot be timed on a camera that is itself broken (malformed, slow)
    panel_errors = {r["probe"] for r in rows if r["status"] == "error" and r["device"].startswith("panel")}
    assert panel_errors <= {"fire_linkage_video"}, panel_errors
    verdicts = yaml.safe_load((tmp_path / "run" / "verdicts.yaml").read_text(encoding="utf-8"))["verdicts"]
    assert {k for k, v in verdicts.items() if v["status"] == "fail"} == EXPECTED_FAILED_INDICATORS
    # C2.3.3 combines by ratio: one device of many without lockout makes it partial, not failed
    assert verdicts["C2.3.3"]["status"] == "partial" and 0 < verdicts["C2.3.3"]["ratio"] < 1
    for row in rows:  # every finding names the indicators it bears on
        assert row["indicators"], row
    assert "Grade:" in stdout


@pytest.mark.slow
async def test_interrupt_keeps_what_was_collected(community_site: SiteFactory, tmp_path: Path) -> None:
    async with community_site("small", heartbeat_s=HEARTBEAT_S) as site:
        config, secrets = await write_config(site, tmp_path, None, [])
        out = tmp_path / "run"
        proc = await start_zhian(config, out, secrets)
        async with asyncio.timeout(60):
            while not (out / "findings.jsonl").exists() or not findings(out):  # noqa: ASYNC110 - another process writes it
                await asyncio.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 130
    meta = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert meta["interrupted"] is True and meta["findings"] == len(findings(out)) > 0
    assert (out / "verdicts.yaml").exists() and (out / "score.json").exists()
    sealed = verify(out)  # an interrupted run is sealed too, with what it holds
    assert sealed.ok, sealed.problems
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["interrupted"] is True
