"""`zhian discover` against the simulated community on loopback: WS-Discovery unicast probes,
device information and services, an NVR's recordings mapped to cameras, ISAPI device info; the
draft passes `zhian config check`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest
from conftest import COMMUNITIES, fast
from nets import claim_net

from collectors.exchange import Exchange
from collectors.wsdiscovery import probe
from simulator.model import Credentials, load_community
from simulator.site import BROKER_ID, Site
from zhian.cli.discover import scan
from zhian.cli.main import main
from zhian.configcheck import check_config
from zhian.discover.draft import draft_config
from zhian.discover.network import Login

pytestmark = pytest.mark.peers

SHARED = Credentials(username="inspector", password="Disc-Pass!7")
WINDOW_S = 3.0  # for every device's WS-Discovery reply, on a loaded machine too


@pytest.mark.slow
async def test_discover_drafts_the_small_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with claim_net() as net:
        community = fast(load_community(COMMUNITIES / "small.yaml"), net)
        devices = [
            d.model_copy(update={"credentials": SHARED}) if d.kind in ("camera", "nvr", "door") else d
            for d in community.devices
        ]
        community = community.model_copy(update={"devices": devices})
        async with Site(community, tmp_path / "site", latency_scale=0) as site:
            hosts = sorted(
                {ep.host for ep in site.directory.values()}, key=lambda h: int(h.rsplit(".", 1)[1])
            )
            span = f"{hosts[0]}-{hosts[-1].rsplit('.', 1)[1]}"
            onvif = {e.id for e in site.directory.values() if e.protocol == "onvif"}
            heard = await probe(hosts, window_s=WINDOW_S)
            assert {m.scope("name") for m in heard} == onvif  # every ONVIF device, nothing else
            broker = site.directory[BROKER_ID]
            os.environ["ZHIAN_TEST_MQTT_PW"] = broker.password
            args = argparse.Namespace(
                range=span, multicast=False, isapi_ports="8000", window=WINDOW_S, timeout=10.0,
                ca_file=site.tls.ca_file if site.tls else None, modbus_ports="5020", unit_ids="1",
                mqtt=f"{broker.host}:{broker.port}", mqtt_login=f"{broker.username}:ZHIAN_TEST_MQTT_PW",
                mqtt_tls=broker.tls, listen=3.0, mqtt_profile_file=[],
            )  # fmt: skip
            ledger: list[Exchange] = []
            wrong = Login("login1", "inspector", "not-this-one", "WRONG_PW")
            right = Login("login2", SHARED.username, SHARED.password, "ZHIAN_DISCOVER_PW")
            result = await scan(args, [wrong, right], sink=ledger.append)
            found, count = result.found, result.exchanges
    by_id = {f.id: f for f in found}
    isapi = {e.id for e in site.directory.values() if e.protocol == "isapi"}
    assert set(by_id) == onvif | isapi and count == len(ledger)
    assert {f.login for f in found} == {"login2"} and not any(f.note for f in found), [
        (f.id, f.note) for f in found if f.note
    ]
    spec = {d.id: d for d in community.devices}
    for f in found:
        assert f.kind == spec[f.id].kind, f
        camera = spec[f.id].camera
        if camera is not None and camera.recorded_by:
            assert (f.recorded_by, f.channel) == (camera.recorded_by, camera.channel), f
        elif f.kind == "camera":
            assert f.recorded_by is None
    assert by_id["door-b2-unit1"].protocol == "isapi" and by_id["cam-gate-01"].tags["model"]
    panels = {p.host: p for p in result.panels}
    for spec_panel in (d for d in community.devices if d.kind == "panel"):
        panel = panels[site.directory[spec_panel.id].host]
        assert panel.profile == (spec_panel.panel.profile if spec_panel.panel else "generic-fire-panel"), (
            panel
        )
        assert panel.zones == len(spec_panel.panel.zones if spec_panel.panel else []) and not panel.todo
    [gateway] = result.gateways
    sim_gateway = next(d for d in community.devices if d.kind == "gateway")
    assert gateway.id == sim_gateway.id and gateway.site == site.directory[sim_gateway.id].extra["site"]
    assert sim_gateway.gateway is not None
    assert set(gateway.devices) == {c.id for c in sim_gateway.gateway.devices}
    for exchange in ledger:
        for secret in (SHARED.password, broker.password):
            assert secret not in exchange.request + exchange.response + (exchange.error or "")

    draft = tmp_path / "site.yaml"
    logins = [("login2", "inspector", "ZHIAN_DISCOVER_PW"), ("mqtt", broker.username, "ZHIAN_TEST_MQTT_PW")]
    text = draft_config(
        found, logins, span, broker=result.broker, gateways=result.gateways, panels=result.panels
    )
    draft.write_text(text, encoding="utf-8")
    assert "TODO" in text and SHARED.password not in text and broker.password not in text
    config = check_config(draft, secrets=False).config
    assert {a.id for a in config.areas} == {"todo"}
    assert len(config.inventory.panels) == len(panels) and config.inventory.gateways[0].devices
    assert main(["config", "check", "--no-secrets", str(draft)]) == 0
    assert "valid" in capsys.readouterr().out
