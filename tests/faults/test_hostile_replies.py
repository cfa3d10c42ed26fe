"""Replies no device should send: each costs its own typed error and evidence, never the run's
memory or its parser."""

from __future__ import annotations

import time

import pytest

from collectors.errors import ProtocolViolation, ReplyTooLarge, Unreachable
from collectors.http import HttpSession, decode_bytes, decode_xml
from collectors.isapi import IsapiClient
from collectors.onvif import OnvifClient
from tests.faults.hostile_peers import BOMB, EXTERNAL, HEAD, Exchanges, Sent, conn, drip, fixed, flood, serve

TOTAL = 64 << 20  # what the hostile device would send, were it let


@pytest.mark.parametrize("declare", [False, True])
async def test_oversize_http_reply_stops_at_the_bound(declare: bool) -> None:
    sent, seen = Sent(), Exchanges()
    async with (
        serve({("GET", "/big"): flood(sent, TOTAL, declare=declare)}) as port,
        HttpSession(conn(port, seen), protocol="isapi") as s,
    ):
        with pytest.raises(ReplyTooLarge) as too_large:
            await s.request("GET", "/big", operation="big", decode=decode_bytes)
    assert too_large.value.reason == "reply_too_large"
    exchange = seen.get(too_large.value.exchange_id)
    assert not exchange.ok and exchange.facts["max_reply_bytes"] == 65536
    assert HEAD.decode() in exchange.response  # the first bytes are the evidence
    assert sent.bytes < TOTAL // 4  # reading stopped; the device was not drained


async def test_oversize_stream_is_refused_too() -> None:
    sent, seen = Sent(), Exchanges()
    async with (
        serve({("GET", "/events"): flood(sent, TOTAL)}) as port,
        HttpSession(conn(port, seen), protocol="isapi") as s,
    ):
        with pytest.raises(ReplyTooLarge):
            await s.read_window("/events", operation="stream", window_s=5)
    assert sent.bytes < TOTAL // 4


async def test_oversize_onvif_reply_through_the_soap_transport() -> None:
    sent, seen = Sent(), Exchanges()
    async with (
        serve({("POST", "/onvif/device_service"): flood(sent, TOTAL)}) as port,
        OnvifClient(conn(port, seen)) as c,
    ):
        with pytest.raises(ReplyTooLarge) as too_large:
            await c.device_info()
    exchange = seen.get(too_large.value.exchange_id)
    assert HEAD.decode() in exchange.response and len(exchange.response) < 20_000
    assert exchange.raw is None or len(exchange.raw) <= 65536
    assert sent.bytes < TOTAL // 4


async def test_slow_drip_is_cut_by_the_call_deadline() -> None:
    seen = Exchanges()
    async with serve({("GET", "/ISAPI/System/deviceInfo"): drip(0.2)}) as port:
        began = time.monotonic()
        async with IsapiClient(conn(port, seen, timeout_s=1.0)) as c:
            with pytest.raises(Unreachable) as hung:
                await c.device_info()
    # cut at its 1 s deadline, not drawn out by the drip (the slack: a loaded machine)
    assert hung.value.timed_out and time.monotonic() - began < 4


@pytest.mark.parametrize("body", [BOMB, EXTERNAL, b"<DeviceInfo><unclosed></DeviceInfo>"])
async def test_hostile_xml_is_refused_by_the_parser(body: bytes) -> None:
    seen = Exchanges()
    async with (
        serve({("GET", "/ISAPI/System/deviceInfo"): fixed(body)}) as port,
        IsapiClient(conn(port, seen)) as c,
    ):
        with pytest.raises(ProtocolViolation) as refused:
            await c.device_info()
    assert not seen.get(refused.value.exchange_id).ok
    assert "root:" not in seen.get(refused.value.exchange_id).response  # nothing was fetched


def test_decode_xml_refuses_dtds_outright() -> None:
    for body in (BOMB, EXTERNAL):
        with pytest.raises(ValueError, match="refused"):
            decode_xml(body)
