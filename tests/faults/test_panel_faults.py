"""Fire panels that refuse with Modbus exception codes or drop the connection, in a whole run beside a
healthy one (pymodbus' own server, the simulator's panel with a fault): each costs its own finding,
the healthy panel is judged as usual, and the chain verifies."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from panel_helpers import UNIT, ZONES, make_ctx

from simulator.modbus import FirePanel
from tests.faults.run_helpers import error_lines, findings, write_config, zhian_run
from zhian.evidence.verify import verify

pytestmark = pytest.mark.peers

AREAS = [
    {"id": "b1", "kind": "unit_entrance"},
    {"id": "ev", "kind": "charging_area"},
    {"id": "pump", "kind": "pump_room"},
    {"id": "mc", "kind": "monitoring_center"},
]
PANELS: dict[str, list[dict[str, Any]]] = {
    "panel-healthy": [],
    "panel-refuses": [{"type": "modbus_exception", "code": 4}],  # SERVER_DEVICE_FAILURE
    "panel-busy": [{"type": "modbus_exception", "code": 6}],  # SERVER_DEVICE_BUSY
    "panel-drops": [{"type": "drops_connection"}],
    "panel-drops-midway": [{"type": "drops_connection", "after": 2}],
}


@asynccontextmanager
async def panels() -> AsyncIterator[dict[str, FirePanel]]:
    async with AsyncExitStack() as stack:
        started: dict[str, FirePanel] = {}
        for i, (name, faults) in enumerate(PANELS.items()):
            panel = FirePanel(make_ctx(faults=faults, host=f"127.0.94.{i + 1}"), None)
            await panel.start()
            stack.push_async_callback(panel.stop)
            started[name] = panel
        yield started


async def test_refusing_and_dropping_panels_each_cost_their_own_finding(tmp_path: Path) -> None:
    async with panels() as running:
        inventory = {
            "panels": [
                {"id": name, "host": p.ctx.host, "port": p.port, "area": "mc", "unit_id": UNIT,
                 "profile": "generic-fire-panel", "zones": ZONES}
                for name, p in running.items()
            ]
        }  # fmt: skip
        config = write_config(
            tmp_path / "site.yaml",
            inventory,
            areas=AREAS,
            sampling={"mode": "monitoring"},
            limits={"call_timeout_s": 2, "probe_timeout_s": 30},
        )
        code, _, stderr = await zhian_run(config, tmp_path / "run", "--key-dir", str(tmp_path / "keys"))
    assert code == 0 and not error_lines(stderr), stderr
    rows = findings(tmp_path / "run")
    by_device: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["reason"] != "active_not_permitted":  # the fire linkage, not allowed in this run
            by_device.setdefault(row["device"], []).append(row)
    assert set(by_device) == set(PANELS), set(by_device)
    healthy = by_device["panel-healthy"]
    assert healthy and all(r["status"] != "error" for r in healthy), healthy
    for name in ("panel-refuses", "panel-busy"):
        assert {(r["status"], r["reason"]) for r in by_device[name]} == {("error", "device_rejected")}
    # a panel that drops every request cannot be read: not alive (panel_liveness fails it), the
    # rest cannot judge it
    dropped = {(r["probe"], r["status"], r["reason"]) for r in by_device["panel-drops"]}
    assert {(s, why) for p, s, why in dropped if p != "panel_liveness"} == {("error", "unreachable")}
    assert ("panel_liveness", "fail", "unreachable") in dropped
    # one that drops every third request is read through reconnecting (once per drop), and judged;
    # each drop stays in the evidence
    assert {r["status"] for r in by_device["panel-drops-midway"]} == {"pass"}, by_device["panel-drops-midway"]
    with sqlite3.connect(tmp_path / "run" / "ledger.sqlite") as db:
        bodies = [json.loads(b) for (b,) in db.execute(
            "SELECT body FROM records WHERE kind = 'exchange' AND device = 'panel-drops-midway'"
        )]  # fmt: skip
    assert any(not b["ok"] and "closed by the device" in (b["error"] or "") for b in bodies), bodies[:3]
    for row in (r for device in by_device.values() for r in device):
        assert row["evidence"], row  # the refusal or the dropped exchange, kept
    sealed = verify(tmp_path / "run")
    assert sealed.ok, sealed.problems
