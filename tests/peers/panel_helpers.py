"""One simulated fire panel from a DeviceContext, shared by the simulator's and the collector's tests."""

from __future__ import annotations

from typing import Any

from simulator.bus import SiteBus
from simulator.latency import Latency
from simulator.model import Area, Community, Credentials, DeviceSpec
from simulator.runtime import DeviceContext

UNIT = 3
ZONES = [{"id": 1, "area": "b1"}, {"id": 2, "area": "ev"}, {"id": 5, "area": "pump"}]
AREAS = [
    Area(id="b1", kind="unit_entrance"),
    Area(id="ev", kind="charging_area"),
    Area(id="pump", kind="pump_room"),
    Area(id="mc", kind="monitoring_center"),
]


def make_ctx(
    *,
    faults: list[dict[str, Any]] | None = None,
    profile: str = "generic-fire-panel",
    host: str = "127.0.0.1",
    password: str = "not-used-by-modbus",
) -> DeviceContext:
    """Panel fp1 (unit 3, zones 1/2/5) with a platform beside it, on `host`, port chosen at start."""
    panel = {"profile": profile, "unit_id": UNIT, "zones": ZONES}
    spec = DeviceSpec.model_validate(
        {
            "id": "fp1",
            "kind": "panel",
            "protocol": "modbus",
            "area": "mc",
            "panel": panel,
            "faults": faults or [],
        }
    )
    platform = DeviceSpec(id="platform", kind="platform", protocol="http", area="mc")
    return DeviceContext(
        spec=spec,
        community=Community(name="test", areas=AREAS, devices=[spec, platform]),
        host=host,
        port=0,
        credentials=Credentials(username="admin", password=password),
        bus=SiteBus(),
        latency=Latency({}, scale=0),
        server_tls=None,
        client_tls=None,
        directory={},
    )
