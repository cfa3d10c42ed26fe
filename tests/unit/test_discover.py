"""The pieces of `zhian discover` that need no network: ranges, platform exports, the draft, the
gateways read from what a broker window held."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectors.mqtt.messages import Received, TopicSummary
from collectors.wsdiscovery import parse_matches, probe_message
from zhian.cli.main import main
from zhian.configcheck import check_config
from zhian.discover.csvimport import import_csv
from zhian.discover.draft import draft_config
from zhian.discover.found import hosts_of
from zhian.discover.gateways import gateways_heard, profiles_to_try
from zhian.errors import UsageError

# As a Hikvision platform exports its resources (GB18030, Chinese headers), abridged.
EXPORT = """监控点名称,监控点编号,IP地址,端口,设备类型,所属区域,所属录像机,通道号,接入协议
1号门岗,3dc0ef4c0a2c4d8c9b2ef7e2d1f1e3c4,10.20.1.11,80,枪机,南门,录像机A,1,ONVIF
地库入口,5b1f0e8a9c2d4e6f8a0b1c2d3e4f5a6b,10.20.1.12,80,半球,地库,录像机A,2,ONVIF
录像机A,9f8e7d6c5b4a39281706f5e4d3c2b1a0,10.20.1.2,443,NVR,监控中心,,,海康SDK
单元门1,1a2b3c4d5e6f708192a3b4c5d6e7f809,10.20.2.21,80,门禁,1号楼,,,ISAPI
未接入,,,,枪机,,,,
"""


def test_ranges() -> None:
    assert hosts_of("10.0.0.5-7") == ["10.0.0.5", "10.0.0.6", "10.0.0.7"]
    assert hosts_of("10.0.0.0/30,10.0.0.1") == ["10.0.0.1", "10.0.0.2"]
    assert len(hosts_of("10.0.0.0/22")) == 1022
    for bad in ("10.0.0.9-3", "10.0.0.0/16", "camera"):
        with pytest.raises(UsageError):
            hosts_of(bad)


def test_platform_export_becomes_a_checked_draft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    export = tmp_path / "devices.csv"
    export.write_bytes(EXPORT.encode("gb18030"))
    found = {f.host: f for f in import_csv(export)}
    assert len(found) == 4  # the row without an address is skipped
    gate, nvr, door = found["10.20.1.11"], found["10.20.1.2"], found["10.20.2.21"]
    assert (gate.kind, gate.recorded_by, gate.channel) == ("camera", nvr.id, 1)
    assert gate.tags["platform_id"] == "3dc0ef4c0a2c4d8c9b2ef7e2d1f1e3c4" and gate.tags["area_name"] == "南门"
    assert (nvr.kind, nvr.protocol, nvr.tls) == ("nvr", "isapi", True)
    assert (door.kind, door.protocol, door.path) == ("door", "isapi", "/ISAPI")
    draft = tmp_path / "site.yaml"
    draft.write_text(draft_config(list(found.values()), [], export.name), encoding="utf-8")
    config = check_config(draft, secrets=False).config
    assert len(config.inventory.cameras) == 2 and config.credentials["todo"].username == "TODO"
    assert main(["discover", "--import", str(export), "--out", str(tmp_path / "again.yaml")]) == 0
    assert main(["config", "check", "--no-secrets", str(tmp_path / "again.yaml")]) == 0
    assert "4 devices read" in capsys.readouterr().err


def test_bad_exports_get_one_line(tmp_path: Path) -> None:
    no_address = tmp_path / "a.csv"
    no_address.write_text("name,type\ncam,camera\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"a.csv:1: no address column"):
        import_csv(no_address)
    bad_port = tmp_path / "b.csv"
    bad_port.write_text("ip,port\n10.0.0.1,http\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"b.csv:2: port 'http'"):
        import_csv(bad_port)


def test_probe_matches_must_answer_our_probe() -> None:
    ours = "urn:uuid:1"
    assert b"<d:Probe/>" in probe_message(ours)
    reply = (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
        'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery"><s:Header>'
        "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</a:Action>"
        "<a:RelatesTo>{id}</a:RelatesTo></s:Header><s:Body><d:ProbeMatches><d:ProbeMatch>"
        "<a:EndpointReference><a:Address>urn:uuid:cam</a:Address></a:EndpointReference>"
        "<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/cam1</d:Scopes>"
        "<d:XAddrs>http://10.0.0.5/onvif/device_service</d:XAddrs></d:ProbeMatch></d:ProbeMatches></s:Body></s:Envelope>"
    )
    [(endpoint, types, scopes, xaddrs)] = parse_matches(reply.format(id=ours).encode(), ours)
    assert endpoint == "urn:uuid:cam" and xaddrs == ("http://10.0.0.5/onvif/device_service",)
    assert types == ("dn:NetworkVideoTransmitter",) and scopes == ("onvif://www.onvif.org/name/cam1",)
    assert parse_matches(reply.format(id="urn:uuid:other").encode(), ours) == []
    assert parse_matches(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', ours) == []


def _summary(topic: str, payload: bytes) -> TopicSummary:
    message = Received(datetime.now(UTC), payload, len(payload), 1, True)
    return TopicSummary(topic, 1, 0, message, None, None, None)


def test_a_site_profile_file_finds_what_no_shipped_profile_knows(tmp_path: Path) -> None:
    """A vendor shape (`{root}/{gateway}/online`, devices at `{root}/{gateway}/dev/{device}`): the
    site's own profile finds the gateway and its devices; without it nothing is drafted."""
    own = tmp_path / "acme.yaml"
    own.write_text(
        "name: acme\ndocument: the vendor's manual\ntopic_root: acme\nsubscribe: ['{root}/#']\n"
        "topics:\n"
        "  - {pattern: '{root}/{gateway}/online', role: status, of: gateway}\n"
        "  - {pattern: '{root}/{gateway}/dev/{device}', role: heartbeat}\n",
        encoding="utf-8",
    )
    heard: dict[str, Any] = {
        "acme/hub-7/online": b"online",
        "acme/hub-7/dev/smoke-3": b'{"smoke": false, "battery": 90}',
        "acme/hub-7/dev/button-4": b'{"battery": 80}',
    }
    topics = {t: _summary(t, p) for t, p in heard.items()}
    assert gateways_heard(topics, profiles_to_try()) == []
    [gw] = gateways_heard(topics, profiles_to_try([own]))
    assert (gw.id, gw.profile, gw.topic_root, gw.profile_file) == ("hub-7", "acme", "acme", own)
    assert set(gw.devices) == {"smoke-3", "button-4"}


def test_home_assistant_devices_no_config_places_under_a_hub() -> None:
    """Configs without via_device: every node under one gateway named after the prefix, with a TODO;
    the nodes' device classes give their types."""
    heard = {
        f"homeassistant/binary_sensor/{node}/status/config": json.dumps(
            {"~": f"hass/{node}", "stat_t": "~/state", "avty_t": "~/availability", "device_class": kind}
        ).encode()
        for node, kind in (("smoke-9", "smoke"), ("gas-9", "gas"))
    } | {"hass/smoke-9/state": b'{"ts": 1}', "hass/gas-9/availability": b"online"}
    topics = {t: _summary(t, p) for t, p in heard.items()}
    [gw] = gateways_heard(topics, profiles_to_try())
    assert (gw.id, gw.profile, gw.topic_root) == ("homeassistant", "homeassistant", "homeassistant")
    assert "via_device" in gw.todo and set(gw.devices) == {"smoke-9", "gas-9"}
    assert gw.exposes == {"smoke-9": frozenset({"smoke"}), "gas-9": frozenset({"gas"})}
