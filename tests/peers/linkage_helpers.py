"""What the linkage probe tests share: the operator's hand played through the simulator, the evidence
ledger, the probe context built the way `zhian run` builds it, and the site's state read from inside
the simulator (to check the restore independently of zhian's own reading)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from typing import Any

from exchange_sink import Ledger
from site_probe import site_context

from probes.base import ProbeContext
from simulator.isapi import IsapiDoorController
from simulator.modbus import FirePanel
from simulator.mqtt.gateway import MqttGateway
from simulator.onvif import OnvifCamera, OnvifDoorController
from simulator.onvif.server import OnvifDevice
from simulator.site import Site

ACTIVE = ("fire_linkage", "intrusion_linkage")
# Short test timings; the simulated linkage acts within 0.3 s (conftest scales its delays by 0.1).
QUICK: dict[str, Any] = {
    "trigger_wait_s": 3.0,
    "grace_s": 0.5,
    "poll_s": 0.2,
    "restore_timeout_s": 8.0,
    "restore_settle_s": 0.5,
}
# Deadlines with room: the site acts within 0.3 s, but zhian sees it by polling devices that share its
# process and a loaded machine. A deadline costs time only where an effect never comes; the tests
# about lateness set their own.
DEADLINE_S = 10.0
DEADLINES = {
    "deadline_camera_alarm_s": DEADLINE_S,
    "deadline_platform_alert_s": DEADLINE_S,
}
FIRE_DEADLINES = DEADLINES | {
    "deadline_doors_unlock_s": DEADLINE_S,
    "deadline_emergency_lighting_s": DEADLINE_S,
    "deadline_broadcast_s": DEADLINE_S,
}


class SiteOperator:
    """The person on site: carries every instruction out through the simulator's hand
    (`site.operator`), except the actions it is told to ignore (a deaf operator)."""

    def __init__(self, site: Site, *, ignore: Collection[str] = ()) -> None:
        self.site = site
        self.ignore = frozenset(ignore)
        self.told: list[tuple[str, str, dict[str, Any]]] = []

    async def instruct(
        self, instruction: str, *, device: str, action: str, params: Mapping[str, Any]
    ) -> None:
        self.told.append((device, action, dict(params)))
        if action not in self.ignore:
            await self.site.operator(device, action, **params)

    def actions(self) -> list[tuple[str, str]]:
        return [(device, action) for device, action, _ in self.told]


def linkage_context(
    site: Site, ledger: Ledger, operator: SiteOperator | None = None, *, call_timeout_s: float = 5.0
) -> ProbeContext:
    ctx: ProbeContext = site_context(
        site, ledger, active=ACTIVE, call_timeout_s=call_timeout_s, operator=operator
    )
    return ctx


# -- the site's state, from inside the simulator ---------------------------------------------------------
def panel(site: Site, panel_id: str) -> FirePanel:
    device = site.devices[panel_id]
    assert isinstance(device, FirePanel)
    return device


def panel_quiet(site: Site, panel_id: str) -> bool:
    """No zone in alarm, test mode off, emergency outputs off."""
    state = panel(site, panel_id).state
    return not (state.alarm or state.test_mode or state.lighting_on or state.broadcast_zone)


def door_locked(site: Site, door_id: str) -> bool:
    device = site.devices[door_id]
    if isinstance(device, OnvifDoorController):
        return device.door.mode == "Locked"
    assert isinstance(device, IsapiDoorController)
    return not device.unlocked and device.mode == "normal"


def relay_on(site: Site, gateway_id: str, relay_id: str) -> bool:
    gateway = site.devices[gateway_id]
    assert isinstance(gateway, MqttGateway)
    return gateway.children[relay_id].relay_on


def pull_points(site: Site, device_id: str) -> int:
    """Pull-point subscriptions the ONVIF device still holds (a test must leave none behind)."""
    device = site.devices[device_id]
    assert isinstance(device, OnvifDevice)
    return len(device.broker._subscriptions)


def camera_alarm(site: Site, camera_id: str) -> bool:
    camera = site.devices[camera_id]
    assert isinstance(camera, OnvifCamera)
    return any(
        n.topic == "Device/Trigger/DigitalInput" and dict(n.data).get("LogicalState") == "true"
        for n in camera.broker._properties.values()
    )


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Wait for the simulator's state to satisfy `condition` (it has no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling the simulator's plain attributes
            await asyncio.sleep(0.05)
