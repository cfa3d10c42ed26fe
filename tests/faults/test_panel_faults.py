"""Fire panels that answer with Modbus exception codes or drop the connection, in a whole run beside a
healthy one (the simulator's panels on pymodbus' own server): each costs its own finding, the
healthy panel is judged as usual, and the chain verifies.

The refusal: the inventory names a unit id the panel does not serve, which pymodbus answers with
exception 0x0B (gateway target failed to respond) to every request. The drop: another client holds
the panel's one Modbus slot for the whole run, so the panel closes each connection zhian opens."""

from __future__ import annotations

import asyncio
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
PANELS = ("panel-healthy", "panel-refuses", "panel-drops")


@asynccontextmanager
async def panels() -> AsyncIterator[dict[str, FirePanel]]:
    async with AsyncExitStack() as stack:
        started: dict[str, FirePanel] = {}
        for i, name in enumerate(PANELS):
            panel = FirePanel(make_ctx(host=f"127.0.94.{i + 1}"), None)
            await panel.start()
            stack.push_async_callback(panel.stop)
            started[name] = panel
        yield started


@pytest.mark.slow
async def test_refusing_and_dropping_panels_each_cost_their_own_finding(tmp_path: Path) -> None:
    async with panels() as running:
        drops = running["panel-drops"]
        _, holder = await asyncio.open_connection(drops.ctx.host, drops.port)  # the one slot, taken
        try:
            inventory = {
                "panels": [
                    {"id": name, "host": p.ctx.host, "port": p.port, "area": "mc",
                     "unit_id": UNIT + 1 if name == "panel-refuses" else UNIT,
                     "profile": "generic-fire-panel", "zones": ZONES}
                    for name, p in running.items()
                ]
            }  # fmt: skip
            config = write_config(
                tmp_path / "site.yaml",
                inventory,
                areas=AREAS,
                sampling={"mode": "monitoring"},
                # the refusal and the drop answer at once: the timeout only bounds the healthy panel's
                # reads, which a loaded machine delayed past 2 s (clock_skew: unreachable)
                limits={"call_timeout_s": 5, "probe_timeout_s": 30},
            )
            code, _, stderr = await zhian_run(config, tmp_path / "run", "--key-dir", str(tmp_path / "keys"))
        finally:
            holder.close()
    assert code == 0 and not error_lines(stderr), stderr
    rows = findings(tmp_path / "run")
    by_device: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["reason"] != "active_not_permitted":  # the fire linkage, not allowed in this run
            by_device.setdefault(row["device"], []).append(row)
    assert set(by_device) == set(PANELS), set(by_device)
    healthy = by_device["panel-healthy"]
    assert healthy and all(r["status"] != "error" for r in healthy), healthy
    refused = {(r["probe"], r["status"], r["reason"]) for r in by_device["panel-refuses"]}
    assert {(s, why) for p, s, why in refused if p != "panel_liveness"} == {("error", "device_rejected")}
    # a panel that cannot be read is not alive (panel_liveness fails it), the rest cannot judge it
    dropped = {(r["probe"], r["status"], r["reason"]) for r in by_device["panel-drops"]}
    assert {(s, why) for p, s, why in dropped if p != "panel_liveness"} == {("error", "unreachable")}
    assert ("panel_liveness", "fail", "unreachable") in dropped
    for row in (r for device in by_device.values() for r in device):
        assert row["evidence"], row  # the refusal or the dropped exchange, kept
    sealed = verify(tmp_path / "run")
    assert sealed.ok, sealed.problems
