"""SIGINT and SIGTERM in the middle of an active test, against the simulated community: zhian
restores the site first, records the test as `interrupted` with each restore step and its outcome,
keeps every finding recorded before the signal, seals, and exits 130 or 143 in plain lines."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from linkage_helpers import camera_alarm, door_locked, panel_quiet, until

from simulator.isapi import IsapiDoorController
from simulator.modbus import FirePanel
from simulator.mqtt.gateway import MqttGateway
from simulator.onvif import OnvifCamera, OnvifDoorController
from simulator.site import Site
from tests.faults.conftest import SiteFactory
from tests.faults.run_helpers import error_lines, start_zhian
from tests.faults.site_helpers import THRESHOLDS, write_site_config
from zhian.cli.sim import operator_endpoint
from zhian.evidence.verify import verify

pytestmark = pytest.mark.peers


def panels_in_alarm(site: Site) -> list[str]:
    return [d for d, dev in site.devices.items() if isinstance(dev, FirePanel) and not panel_quiet(site, d)]


def doors_released(site: Site) -> list[str]:
    doors = (OnvifDoorController, IsapiDoorController)
    return [d for d, dev in site.devices.items() if isinstance(dev, doors) and not door_locked(site, d)]


def relays_on(site: Site) -> list[str]:
    return [
        f"{g}/{c}"
        for g, dev in site.devices.items()
        if isinstance(dev, MqttGateway)
        for c, child in dev.children.items()
        if getattr(child, "relay_on", False)
    ]


def unplugged(site: Site) -> list[str]:
    """The gateways' children the operator took away (the offline alert test)."""
    return [
        c
        for dev in site.devices.values()
        if isinstance(dev, MqttGateway)
        for c, child in dev.children.items()
        if not child.reachable
    ]


def cameras_alarmed(site: Site) -> list[str]:
    return [d for d, dev in site.devices.items() if isinstance(dev, OnvifCamera) and camera_alarm(site, d)]


def moved(site: Site) -> dict[str, list[str]]:
    """What the site shows out of its normal state (empty when it is at rest)."""
    found = {
        "panels": panels_in_alarm(site),
        "doors": doors_released(site),
        "relays": relays_on(site),
        "cameras": cameras_alarmed(site),
        "unplugged": unplugged(site),
    }
    return {k: v for k, v in found.items() if v}


# (signal, the test allowed, the moment to send it: the test has moved the site, the steps it restores)
CASES = [
    (signal.SIGINT, "fire_linkage", lambda s: bool(panels_in_alarm(s) and doors_released(s)),
     {"panel_reset", "panel_normal", "door_locked"}),
    (signal.SIGTERM, "intrusion_linkage", lambda s: bool(relays_on(s)), {"relay_off"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("signum", "test", "moving", "steps"), CASES, ids=["sigint-fire", "sigterm-intrusion"]
)
@pytest.mark.slow
async def test_a_stop_during_an_active_test_restores_the_site_and_records_each_step(
    community_site: SiteFactory,
    tmp_path: Path,
    signum: signal.Signals,
    test: str,
    moving: Callable[[Site], bool],
    steps: set[str],
) -> None:
    out = tmp_path / "run"
    async with community_site("small", heartbeat_s=1.0) as site:
        runner, hook = await operator_endpoint(site, 0)
        try:
            assert not moved(site)
            secrets = write_site_config(site, tmp_path / "site.yaml", hook, [test])
            proc = await start_zhian(
                tmp_path / "site.yaml",
                out,
                "--allow-active",
                "--key-dir",
                str(tmp_path / "keys"),
                env=secrets,
            )
            communicate = asyncio.ensure_future(proc.communicate())
            await until(lambda: moving(site) or communicate.done(), timeout_s=240)
            assert not communicate.done(), "the run ended before its active test moved the site"
            before = (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()
            proc.send_signal(signum)
            stdout, stderr = await asyncio.wait_for(communicate, timeout=120)
            left = moved(site)  # read before the site stops: what zhian did not put back
        finally:
            await runner.cleanup()
    text = stderr.decode()
    assert proc.returncode == 128 + signum, text
    lines = error_lines(text)
    assert lines and signum.name in lines[0], text
    rows = [json.loads(line) for line in (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()]
    assert not left, (left, [r for r in rows if r["reason"] == "interrupted"])
    assert before and rows[: len(before)] == [json.loads(line) for line in before]  # nothing lost
    cut = [r for r in rows if r["reason"] == "interrupted"]
    assert len(cut) == 1, cut
    finding = cut[0]
    assert finding["status"] == "error" and finding["probe"].startswith(test), finding
    restore = finding["facts"]["restore"]
    assert restore["complete"] is True, restore
    done = {s["step"] for s in restore["steps"]}
    assert steps <= done, restore["steps"]
    assert all(s["ok"] and s["detail"] for s in restore["steps"]), restore["steps"]
    assert finding["evidence"]
    with sqlite3.connect(out / "ledger.sqlite") as db:
        ids = {row[0] for row in db.execute("SELECT id FROM records")}
    assert set(finding["evidence"]) <= ids  # each step's reading is in the chain
    sealed = verify(out)
    assert sealed.ok, sealed.problems
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["interrupted"] is True
    assert stdout  # the summary of what was kept is still printed


@pytest.mark.slow
async def test_a_stop_during_the_offline_alert_test_reconnects_each_device_it_took_away(
    community_site: SiteFactory, tmp_path: Path
) -> None:
    """The platform never alerts, so each intercom stays unplugged for the whole alert window: SIGINT
    then, and every test cut short says it had the operator reconnect its intercom, and did."""
    out, config = tmp_path / "run", tmp_path / "site.yaml"
    silent = {"platform": [{"type": "platform_no_offline_alert"}]}
    async with community_site("small", heartbeat_s=1.0, faults=silent) as site:
        runner, hook = await operator_endpoint(site, 0)
        try:
            assert not moved(site)
            thresholds = THRESHOLDS | {"offline_alert_window_s": 60}
            secrets = write_site_config(site, config, hook, ["offline_alert"], thresholds=thresholds)
            doc = yaml.safe_load(config.read_text(encoding="utf-8"))
            # what the offline test needs: the intercoms' gateway, its broker and the platform
            kept = ("brokers", "gateways", "platform")
            doc["inventory"] = {k: v for k, v in doc["inventory"].items() if k in kept}
            config.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
            keys = str(tmp_path / "keys")
            proc = await start_zhian(
                config, out, "--allow-active", "--level", "C", "--key-dir", keys, env=secrets
            )
            communicate = asyncio.ensure_future(proc.communicate())
            await until(lambda: bool(unplugged(site)) or communicate.done(), timeout_s=120)
            assert not communicate.done(), "the run ended before its offline test unplugged anything"
            away = set(unplugged(site))
            before = (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()
            proc.send_signal(signal.SIGINT)
            stdout, stderr = await asyncio.wait_for(communicate, timeout=120)
            left = moved(site)
        finally:
            await runner.cleanup()
    text = stderr.decode()
    assert proc.returncode == 130, text
    lines = error_lines(text)
    assert lines and "SIGINT" in lines[0], text
    assert not left, left  # every intercom is back
    rows = [json.loads(line) for line in (out / "findings.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows[: len(before)] == [json.loads(line) for line in before]  # nothing lost
    cut = {r["device"]: r for r in rows if r["reason"] == "interrupted"}
    assert away <= set(cut), (away, cut)
    for finding in cut.values():
        assert finding["status"] == "error" and finding["probe"] == "offline_alert_test", finding
        restore = finding["facts"]["restore"]
        assert restore["complete"] is True, restore
        [step] = restore["steps"]
        assert (step["step"], step["target"], step["ok"]) == (
            "operator_told_reconnect",
            finding["device"],
            True,
        )
        assert step["operator_told"] and step["detail"]
    sealed = verify(out)
    assert sealed.ok, sealed.problems
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["interrupted"] is True
    assert stdout
