"""What a gateway is told to do: bus actions on its children and commands on its `.../cmd` topics."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from simulator.bus import CommandHandler
from simulator.mqtt.children import Child
from simulator.mqtt.link import Link

if TYPE_CHECKING:
    from simulator.mqtt.gateway import MqttGateway


class Commands:
    """A gateway's command handling, reported through the gateway.

    Bus actions (on the gateway's id with `device=<child id>`, or on the child's own id):
    press, smoke, gas (active: bool = True), charger_load (percent), switch (on), child_offline,
    child_quiet (heartbeats stop, the status stays online), child_online. A report goes out only
    while the gateway is connected and the child reachable; the matching bus event (mqtt_alarm,
    lighting, device_offline/online) is published only then.
    """

    def __init__(self, gateway: MqttGateway) -> None:
        self.gateway = gateway
        self.tasks: set[asyncio.Task[None]] = set()  # answers to MQTT commands under way

    # --- bus actions -------------------------------------------------------------------------

    def child_handler(self, child_id: str) -> CommandHandler:
        async def handle(action: str, params: dict[str, Any]) -> None:
            await self.command(action, {**params, "device": child_id})

        return handle

    async def command(self, action: str, params: dict[str, Any]) -> None:
        """A bus action on a child (params["device"]); see the class docstring."""
        child = self.gateway.children.get(str(params.get("device")))
        if child is None:
            raise KeyError(f"gateway {self.gateway.id!r} has no device {params.get('device')!r}")
        kind = child.spec.type
        if action == "press" and kind == "emergency_button":
            self.gateway.alarm(child, "sos", True)
        elif action in ("smoke", "gas") and kind == f"{action}_detector":
            child.alarm = bool(params.get("active", True))
            self.gateway.alarm(child, action, child.alarm)
        elif action == "charger_load" and kind == "charger":
            child.load_pct = float(params["percent"])
            link = self.gateway.live()
            if link is not None and child.reports:
                self.gateway.report_telemetry(link, child)
            if (child.load_pct > 100) != child.overloaded:
                child.overloaded = child.load_pct > 100
                self.gateway.alarm(child, "overload", child.overloaded, load_pct=child.load_pct)
        elif action == "switch" and kind == "lighting_relay":
            self._switch(child, bool(params["on"]))
        elif action == "child_offline":
            self._set_reachable(child, False)
        elif action == "child_quiet":  # dies without the gateway noticing: its status stays online
            child.silent = True
        elif action == "child_online":
            self._set_reachable(child, True)
        else:
            raise ValueError(
                f"gateway {self.gateway.id!r}: no action {action!r} on a {kind} ({child.spec.id})"
            )

    def _switch(self, child: Child, on: bool) -> None:
        """Switch a relay; a relay the gateway cannot reach does not switch."""
        link = self.gateway.live()
        if link is None or not child.reports:
            return
        child.relay_on = on
        ts = self.gateway.child_ms(child)
        self.gateway.publish(link, child.spec.id, "state", {"on": on, "ts": ts})
        self.gateway.publish(link, child.spec.id, "telemetry", {"ts": ts, "on": on})
        self.gateway.event("lighting", child, {"on": on, "gateway": self.gateway.id})

    def _set_reachable(self, child: Child, reachable: bool) -> None:
        """The gateway notices a child come or go (as with a dead Zigbee node) and says so, retained."""
        child.reachable, child.silent = reachable, False
        link = self.gateway.live()
        if link is None:
            return
        body: dict[str, Any] = {
            "state": "online" if reachable else "offline",
            "ts": self.gateway.child_ms(child),
        }
        if not reachable:
            body["reason"] = "no_response"
        self.gateway.publish(link, child.spec.id, "status", body)
        if reachable:
            self.gateway.report_telemetry(link, child)
        self.gateway.event(
            "device_online" if reachable else "device_offline", child, {"gateway": self.gateway.id}
        )

    # --- MQTT commands -----------------------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        device = self.gateway.topics.device_of_command(topic)
        if device is None:
            return
        task = asyncio.get_running_loop().create_task(self._answer(device, payload))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, device: str, payload: bytes) -> None:
        """Answer a command on `.../cmd` with `.../ack`: {"id", "action": "switch", "on"} for relays."""
        await self.gateway.ctx.latency.wait("mqtt")
        link = self.gateway.live()
        if link is None:
            return
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._ack(link, device, None, "bad_json")
            return
        cmd_id = body.get("id")
        child = self.gateway.children.get(device)
        if child is None:
            self._ack(link, device, cmd_id, "unknown_device")
        elif child.silent:
            return  # forwarded to a dead node that never answers; the gateway does not know
        elif not child.reachable:
            self._ack(link, device, cmd_id, "offline")
        elif (
            body.get("action") == "switch"
            and child.spec.type == "lighting_relay"
            and isinstance(body.get("on"), bool)
        ):
            self._switch(child, body["on"])
            self._ack(link, device, cmd_id, None)
        else:
            self._ack(link, device, cmd_id, "unsupported")

    def _ack(self, link: Link, device: str, cmd_id: Any, error: str | None) -> None:
        body: dict[str, Any] = {"id": cmd_id, "ok": error is None, "ts": self.gateway.now_ms()}
        if error is not None:
            body["error"] = error
        self.gateway.publish(link, device, "ack", body)
