"""Request templates (collectors/onvif_soap): the bytes zeep itself would send, for every shape."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from zeep.wsdl.utils import etree_to_string

from collectors.connection import Connection
from collectors.onvif_client import OnvifSession
from collectors.onvif_soap import _FIELDS, Requests, _make_template, _message_id, values

# an address and a username with characters XML must escape
ADDRESS = "http://192.0.2.7:80/onvif/Subscription?Idx=3&x=<1>"
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("devicemgmt", "GetSystemDateAndTime", {}),
    ("devicemgmt", "GetServices", {"IncludeCapability": False}),
    ("events", "GetEventProperties", {}),
    ("events", "CreatePullPointSubscription", {"InitialTerminationTime": "PT60S"}),
    ("pullpoint", "PullMessages", {"Timeout": timedelta(seconds=5), "MessageLimit": 100}),
    ("pullpoint", "SetSynchronizationPoint", {}),
    ("subscription", "Renew", {"TerminationTime": "PT60S"}),
    ("subscription", "Unsubscribe", {}),
]


def _zeep_request(client: Any, binding: Any, operation: str, params: dict[str, Any]) -> str:
    """What zeep's own send path writes (SoapBinding.send_async before the transport)."""
    envelope, _ = binding._create(operation, (), dict(params), client=client, options={"address": ADDRESS})
    return str(etree_to_string(envelope).decode("utf-8"))  # type: ignore[no-untyped-call]


def _fields(text: str) -> dict[str, str]:
    root = etree.fromstring(text.encode())
    return {_FIELDS[e.tag]: str(e.text) for e in root.iter(*_FIELDS)}


@pytest.mark.parametrize("skew", [None, timedelta(hours=-2)])
@pytest.mark.parametrize(("key", "operation", "params"), CASES)
async def test_template_gives_zeeps_bytes(
    key: str, operation: str, params: dict[str, Any], skew: timedelta | None
) -> None:
    conn = Connection(device="cam", host="192.0.2.7", port=80, username="op&<r>", password="pa&ss")
    session = OnvifSession(conn)
    await session.open()
    try:
        if skew is not None:
            session.adjust_clock(skew)
        service = await session.service(key, ADDRESS)
        for client in (service.signed, service.authless):
            expected = _zeep_request(client, service.binding, operation, params)
            template = _make_template(client, service.binding, operation, params, ADDRESS)
            assert template is not None
            assert template.render(_fields(expected)) == expected
            fresh = _fields(template.render(values(client, ADDRESS)))
            assert fresh.keys() == _fields(expected).keys()
            if "to" in fresh:  # WS-Addressing (event operations only)
                assert fresh["to"] == ADDRESS and fresh["message_id"] != _fields(expected)["message_id"]
            if client.wsse is not None:  # Created on the device's clock, as zeep's token writes it
                made, zeeps = (datetime.fromisoformat(f["created"]) for f in (fresh, _fields(expected)))
                assert abs((made - zeeps).total_seconds()) < 5
    finally:
        await session.close()


async def test_unkept_parameters_go_through_zeep() -> None:
    """A parameter that is not a plain value makes no template; the request is zeep's each time."""
    session = OnvifSession(Connection(device="cam", host="192.0.2.7", port=80, username="u", password="p"))
    await session.open()
    try:
        service = await session.service("subscription", ADDRESS)
        requests = Requests()
        when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
        text, headers = requests.build(
            service.signed, service.binding, "Renew", {"TerminationTime": when}, ADDRESS
        )
        assert "2026-01-02T03:04:05" in text and "application/soap+xml" in headers["Content-Type"]
        assert not requests._kept
    finally:
        await session.close()


@given(st.binary(min_size=16, max_size=16))
def test_message_id_is_a_version_4_uuid(random: bytes) -> None:
    text = _message_id(random)
    assert text.startswith("urn:uuid:")
    parsed = uuid.UUID(text.removeprefix("urn:uuid:"))
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text[9:]
