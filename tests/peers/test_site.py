"""A whole community on loopback: every device on its own address, the endpoints file, clean stop."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import aiomqtt
import pytest
from conftest import SiteFactory
from pymodbus.client import AsyncModbusTcpClient

pytestmark = pytest.mark.peers

KINDS = {"camera", "nvr", "door", "panel", "gateway", "platform", "broker"}


def listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


async def test_small_community_endpoints(community_site: SiteFactory, tmp_path: Path) -> None:
    async with community_site("small") as site:
        path = tmp_path / "endpoints.json"
        site.write_endpoints(path)
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["community"] == "cuihu-small" and doc["ca_file"] == str(
            site.tls.ca_file if site.tls else ""
        )
        rows = doc["devices"]
        assert {r["kind"] for r in rows} == KINDS
        for row in rows:
            assert set(row) >= {"id", "kind", "protocol", "host", "port", "path", "username", "password",
                                "area", "tags", "faults"}  # fmt: skip
            assert row["host"].startswith("127.")
        own = [r for r in rows if r["kind"] not in ("gateway",)]
        assert len({r["host"] for r in own}) == len(own), "each device has its own address"
        for row in own:
            assert await asyncio.to_thread(listening, row["host"], row["port"]), row["id"]
        gateway = next(r for r in rows if r["kind"] == "gateway")
        assert len(gateway["children"]) == 20

        # a plain client of each protocol gets an answer
        cam = next(r for r in rows if r["id"] == "cam-gate-01")
        ssl_ctx = site.tls.client_context() if site.tls else None
        async with aiohttp.ClientSession() as http:
            body = (
                '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
                '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
            )
            url = f"https://{cam['host']}:{cam['port']}{cam['path']}"
            async with http.post(url, data=body, ssl=ssl_ctx) as resp:
                assert resp.status == 200 and "UTCDateTime" in await resp.text()
        panel = next(r for r in rows if r["kind"] == "panel")
        client = AsyncModbusTcpClient(panel["host"], port=panel["port"], timeout=3)
        await client.connect()
        try:
            reply = await client.read_input_registers(0, count=4)
            assert not reply.isError()
        finally:
            client.close()
        broker = next(r for r in rows if r["kind"] == "broker")
        async with aiomqtt.Client(
            broker["host"], broker["port"], username=broker["username"], password=broker["password"],
            tls_context=ssl_ctx,
        ) as mqtt:  # fmt: skip
            await mqtt.subscribe(f"{gateway['topic_root']}/{gateway['site']}/+/+/status")
            async with asyncio.timeout(10):
                async for message in mqtt.messages:
                    assert message.retain
                    break
    for row in own:
        assert not await asyncio.to_thread(listening, row["host"], row["port"]), f"{row['id']} still listens"
