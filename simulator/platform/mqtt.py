"""The platform's MQTT link: it reads the gateways' status/heartbeat/alarm topics and publishes alerts.

Gateways in zhian's tree are read as is (simulator.platform.topics); a gateway speaking zigbee2mqtt
or Home Assistant discovery is read back through its dialect (Speaker.hear), so the platform's
device list and alerts are the same whichever shape a gateway speaks. Commands go to zhian's tree
only: a relay behind a gateway of another dialect is switched over the site's wiring instead (the
linkage falls back to the bus when `send` says no).

It connects to the broker in ctx.directory["broker"] under its device id with its own password (the
broker account the site makes for the platform), over TLS when the broker endpoint says so, with a
retained last will on its status topic. It reconnects after a lost connection; alerts raised
meanwhile wait in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiomqtt

from simulator.mqtt.dialect import Report, Speaker
from simulator.mqtt.topics import GatewayTopics
from simulator.platform import topics
from simulator.platform.state import Alert, PlatformState

RECONNECT_S = 1.0
Handler = Callable[[str, bytes, bool], None]  # topic, payload, retained


class MqttLink:
    def __init__(self, state: PlatformState, on_message: Handler) -> None:
        self.state = state
        self.on_message = on_message
        community = state.ctx.community
        self.site = topics.site_level(community.name)
        roots = [d.gateway.topic_root for d in community.devices if d.gateway is not None]
        self.roots = sorted(set(roots)) or ["zhian-sim"]
        gateways = [(d.id, d.gateway) for d in community.devices if d.gateway is not None]
        self.gateway_roots = {gid: gw.topic_root for gid, gw in gateways if gw.mqtt_profile == "zhian"}
        self.speakers = [
            (
                Speaker(gw.mqtt_profile, GatewayTopics.of(gw.topic_root, community.name, gid)),
                frozenset({gid, *(c.id for c in gw.devices)}),
            )
            for gid, gw in gateways
            if gw.mqtt_profile != "zhian"
        ]
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None

    def alert_topic(self, alert: Alert) -> str:
        return topics.alert_topic(self.roots[0], self.site, alert.type)

    async def run(self) -> None:
        broker = self.state.ctx.directory.get("broker")
        if broker is None:
            self.state.record("mqtt_unavailable", reason="no broker in the directory")
            return
        status = topics.status_topic(self.roots[0], self.site)
        creds = self.state.ctx.credentials
        while True:
            try:
                async with aiomqtt.Client(
                    broker.host,
                    broker.port,
                    username=self.state.ctx.spec.id,
                    password=creds.password,
                    identifier=f"platform-{self.state.ctx.spec.id}",
                    tls_context=self.state.ctx.client_tls if broker.tls else None,
                    will=aiomqtt.Will(
                        status, json.dumps({"state": "offline", "reason": "lwt"}), qos=1, retain=True
                    ),
                    keepalive=30,
                ) as client:
                    await client.publish(status, json.dumps({"state": "online"}), qos=1, retain=True)
                    patterns = [p for root in self.roots for p in topics.subscriptions(root, self.site)]
                    patterns += [f"{speaker.root}/#" for speaker, _ in self.speakers]
                    for pattern in dict.fromkeys(patterns):
                        await client.subscribe(pattern, qos=1)
                    self.state.record("mqtt_connected", broker=f"{broker.host}:{broker.port}")
                    self._client = client
                    self.connected.set()
                    publisher = asyncio.get_running_loop().create_task(self._publish(client))
                    try:
                        async for message in client.messages:
                            raw = message.payload
                            payload = (
                                bytes(raw) if isinstance(raw, bytes | bytearray) else str(raw or "").encode()
                            )
                            self.on_message(message.topic.value, payload, message.retain)
                    finally:
                        self.connected.clear()
                        self._client = None
                        publisher.cancel()
                        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                            await publisher
                        with contextlib.suppress(aiomqtt.MqttError):
                            body = json.dumps({"state": "offline", "reason": "shutdown"})
                            await client.publish(status, body, qos=1, retain=True, timeout=1)
            except aiomqtt.MqttError as exc:
                self.state.record("mqtt_disconnected", error=str(exc))
                await asyncio.sleep(RECONNECT_S)

    def hear(self, topic: str, payload: bytes) -> list[Report]:
        """A message of a gateway speaking another dialect, in zhian's terms; [] for none."""
        for speaker, devices in self.speakers:
            reports = speaker.hear(topic, payload, devices)
            if reports:
                return reports
        return []

    async def send(self, gateway: str, device: str, body: dict[str, Any]) -> bool:
        """A `cmd` to a gateway's device; False when not connected (the caller falls back)."""
        client, root = self._client, self.gateway_roots.get(gateway)
        if client is None or root is None:
            return False
        try:
            await client.publish(
                topics.command_topic(root, self.site, gateway, device), json.dumps(body), qos=1
            )
        except aiomqtt.MqttError:
            return False
        self.state.record("mqtt_command", gateway=gateway, device=device, command=body)
        return True

    async def _publish(self, client: aiomqtt.Client) -> None:
        while True:
            alert = await self.state.outbox.get()
            try:
                body = json.dumps(alert.to_json(), ensure_ascii=False)
                await client.publish(self.alert_topic(alert), body, qos=1, retain=False)
            except aiomqtt.MqttError:
                self.state.outbox.put_nowait(alert)  # sent after the reconnect
                raise
