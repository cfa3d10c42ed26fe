"""The HTTP-side collectors (ISAPI, platform, ONVIF login, TLS check) against simulated devices and
small servers made to misbehave: typed data, one redacted exchange per request, typed errors."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ipaddress
import json
import re
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web
from conftest import SiteFactory
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from security_helpers import PASSWORD, Ledger, Starter, assert_absent, connection, isapi, isapi_community

from collectors.connection import Connection
from collectors.errors import AuthFailed, DeviceRejected, ProtocolViolation, Unreachable
from collectors.http import HttpSession, decode_json
from collectors.isapi import IsapiClient
from collectors.onvif_auth import OnvifAuthClient
from collectors.platform import PlatformClient
from collectors.tlscheck import TlsClient
from simulator.bus import SiteBus
from simulator.isapi import IsapiDoorController, IsapiNvr
from simulator.tls import make_site_tls

pytestmark = pytest.mark.peers
__all__ = ["isapi"]  # the fixture, imported for pytest
DIGEST_RESPONSE = re.compile(r'response="([0-9a-f]{32})"')


def assert_one_exchange_each(ledger: Ledger) -> None:
    assert len({e.id for e in ledger}) == len(ledger)
    for e in ledger:
        assert not DIGEST_RESPONSE.search(e.request), "a digest response in evidence"


# -- ISAPI --------------------------------------------------------------------------------------


async def test_isapi_door_reads_controls_and_streams(isapi: Starter) -> None:
    bus = SiteBus()
    door = await isapi(IsapiDoorController, bus=bus)
    door.alerts.heartbeat_s = 0.2
    ledger = Ledger()
    async with IsapiClient(connection(door, ledger)) as c:
        info = await c.device_info()
        assert (info.name, info.model, info.device_type) == ("door1", "DS-K1T671M", "ACS")
        clock, clock_id = await c.device_time()
        assert abs((clock - datetime.now(UTC)).total_seconds()) < 5 and clock.tzinfo is UTC
        lock = await c.login_lock()
        assert (lock.enabled, lock.max_failures, lock.lock_s) == (True, 5, 60)
        assert (await c.door_status()).lock_status == (0,)
        await c.door_control(1, "open")
        assert (await c.door_status()).lock_status == (1,)
        await c.door_control(1, "close")
        after = await c.door_status()
        assert (after.lock_status, after.door_status) == ((0,), (4,))
        with pytest.raises(DeviceRejected) as refused:
            await c.door_control(2, "open")
        assert refused.value.code == "badParameters"
        assert not ledger.get(refused.value.exchange_id).ok

        log = await c.acs_events(
            datetime.now(UTC) - timedelta(days=4), datetime.now(UTC) + timedelta(minutes=1)
        )
        assert log.complete and len(log.evidence) >= 3  # 30 per page whatever is asked
        assert len(log.events) >= 60 and [e.time for e in log.events] == sorted(e.time for e in log.events)
        remote = [e for e in log.events if (e.major, e.minor) == (3, 0x400)]
        assert len(remote) == 1 and remote[0].fields["netUser"] == "inspector"

        async def force() -> None:  # once the stream is open (the door pushes live events only)
            while not door.alerts._queues:  # noqa: ASYNC110 - the simulator's plain attribute
                await asyncio.sleep(0.02)
            await bus.command("door1", "force_open")

        pushing = asyncio.create_task(force())
        stream = await c.alert_stream(3.0)
        await pushing
    kinds = {(e.event_type, e.heartbeat) for e in stream.events}
    assert ("videoloss", True) in kinds and ("AccessControllerEvent", False) in kinds
    forced = next(e for e in stream.events if e.event_type == "AccessControllerEvent")
    assert forced.fields["AccessControllerEvent"]["subEventType"] == 0x1B
    assert forced.time is not None and abs((forced.time - datetime.now(UTC)).total_seconds()) < 5
    assert ledger.get(clock_id).operation == "time"
    assert_one_exchange_each(ledger)
    assert all("Authorization: [redacted]" in e.request for e in ledger)
    assert_absent(ledger, PASSWORD)


async def test_isapi_nvr_search_pages_and_holes(isapi: Starter) -> None:
    community = isapi_community(
        nvr={"nvr": {"retention_days": 3}},
        cameras=[
            {"id": "cam1", "camera": {"recorded_by": "nvr1", "channel": 1}},
            {"id": "cam2", "camera": {"recorded_by": "nvr1", "channel": 2},
             "faults": [{"type": "recording_gap", "days_ago": 1.0, "hours": 3}]},
        ],
    )  # fmt: skip
    nvr = await isapi(IsapiNvr, community)
    ledger = Ledger()
    async with IsapiClient(connection(nvr, ledger)) as c:
        now, _ = await c.device_time()
        one = await c.recordings(1, now - timedelta(days=10), now)
        two = await c.recordings(2, now - timedelta(days=10), now)
        none = await c.recordings(7, now - timedelta(days=10), now)
        together = await c.recordings_of([1, 2, 7], now - timedelta(days=10), now)
        storage = await c.storage()
    assert one.complete and one.track == 101 and len(one.evidence) == 2  # 72 files, 40 a page
    assert abs((one.spans[0].start - (now - timedelta(days=3))).total_seconds()) < 5
    assert all(a.end == b.start for a, b in zip(one.spans, one.spans[1:], strict=False))
    holes = [(a.end, b.start) for a, b in zip(two.spans, two.spans[1:], strict=False) if a.end != b.start]
    assert len(holes) == 1 and abs((holes[0][1] - holes[0][0]).total_seconds() - 3 * 3600) < 5
    assert none.spans == () and none.complete
    # one search for three channels: each file to its channel by trackID, every page cited by all
    assert [r.track for r in together.values()] == [101, 201, 701]
    assert [len(r.spans) for r in together.values()] == [len(one.spans), len(two.spans), 0]
    assert len({r.evidence for r in together.values()}) == 1 and len(together[1].evidence) == 4
    search = ledger.get(together[7].evidence[0])
    assert "<trackIDList><trackID>101</trackID><trackID>201</trackID><trackID>701</trackID>" in search.request
    assert storage.disks and storage.disks[0].status == "ok" and storage.disks[0].capacity_mb == 3815447
    search = next(e for e in ledger if e.operation.startswith("ContentMgmt/search track 101"))
    assert "<searchResultPostion>0</searchResultPostion>" in search.request and search.ok


async def test_isapi_errors_are_typed_and_cited(isapi: Starter, tmp_path: Path) -> None:
    door = await isapi(IsapiDoorController)
    ledger = Ledger()
    async with IsapiClient(connection(door, ledger, password="wrong-password")) as c:
        with pytest.raises(AuthFailed) as denied:
            await c.device_info()
    failed = ledger.get(denied.value.exchange_id)
    assert not failed.ok and failed.facts["status"] == 401 and "<lockStatus>unlock" in failed.response
    async with IsapiClient(connection(door, ledger)) as c:
        with pytest.raises(DeviceRejected) as missing:
            await c.storage()  # a door has no storage
    assert missing.value.code == "HTTP 404"

    broken = await isapi(IsapiNvr, isapi_community(nvr={"faults": [{"type": "malformed_xml"}]}))
    hung = await isapi(IsapiNvr, isapi_community(nvr={"faults": [{"type": "hung"}]}))
    async with IsapiClient(connection(broken, ledger)) as c:
        with pytest.raises(ProtocolViolation):
            await c.device_info()
    async with IsapiClient(connection(hung, ledger, timeout_s=0.5)) as c:
        with pytest.raises(Unreachable) as slow:
            await c.device_info()
    assert slow.value.timed_out and not ledger.get(slow.value.exchange_id).ok
    closed = dataclasses.replace(connection(door, ledger), port=1)
    async with IsapiClient(closed) as c:
        with pytest.raises(Unreachable) as refused:
            await c.device_info()
    assert not refused.value.timed_out

    site = make_site_tls(tmp_path / "a", "a", ["127.0.0.1"])
    other = make_site_tls(tmp_path / "b", "b", ["127.0.0.1"])
    secure = await isapi(IsapiDoorController, tls=site.server_context())
    async with IsapiClient(connection(secure, ledger, tls=other.client_context())) as c:
        with pytest.raises(ProtocolViolation) as untrusted:
            await c.device_info()
    assert ledger.get(untrusted.value.exchange_id).facts["tls"] == "certificate_verify_failed"
    async with IsapiClient(connection(door, ledger, tls=site.client_context())) as c:
        with pytest.raises(ProtocolViolation) as plain:
            await c.device_info()  # TLS to a plain HTTP port
    assert ledger.get(plain.value.exchange_id).facts["tls"] == "handshake_failed"
    async with IsapiClient(connection(secure, ledger, tls=site.client_context())) as c:
        assert (await c.device_info()).model == "DS-K1T671M"
    assert_absent(ledger, PASSWORD, "wrong-password")


# -- the shared session on a misbehaving server ------------------------------------------------


@pytest.fixture
async def odd_server() -> AsyncIterator[int]:
    async def bad_json(_: web.Request) -> web.Response:
        return web.Response(text='{"half": ', content_type="application/json")

    async def boom(_: web.Request) -> web.Response:
        return web.Response(status=500, text="internal")

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPFound("http://127.0.0.1:1/elsewhere")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"seen": dict(request.headers), "body": await request.text()})

    app = web.Application()
    app.add_routes([web.get("/bad", bad_json), web.get("/boom", boom), web.get("/moved", moved),
                    web.post("/echo", echo)])  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_session_error_typing_and_redaction(odd_server: int) -> None:
    ledger = Ledger()
    conn = Connection("odd", "127.0.0.1", odd_server, None, "u", "Secret-Value-9", "", 2.0, ledger)
    async with HttpSession(conn, protocol="http") as s:
        with pytest.raises(ProtocolViolation):
            await s.request("GET", "/bad", operation="bad", decode=decode_json)
        with pytest.raises(DeviceRejected) as boom:
            await s.request("GET", "/boom", operation="boom", decode=decode_json)
        assert boom.value.code == "HTTP 500"
        with pytest.raises(DeviceRejected) as moved:
            await s.request("GET", "/moved", operation="moved", decode=decode_json)
        assert moved.value.code == "HTTP 302"  # not followed: credentials stay where the inventory says
        s.add_secret("tok-abcdef-123")
        reply = await s.request(
            "POST", "/echo", operation="echo", decode=decode_json,
            json_body={"password": "Secret-Value-9", "note": "tok-abcdef-123"},
            headers={"Authorization": "Bearer tok-abcdef-123"},
        )  # fmt: skip
    assert reply.data["seen"]["Authorization"] == "Bearer tok-abcdef-123"  # sent, yet never recorded
    assert [e.ok for e in ledger] == [False, False, False, True]
    assert_absent(ledger, "Secret-Value-9", "tok-abcdef-123")


# -- the platform and ONVIF login on a whole site ----------------------------------------------


async def test_platform_client_on_a_site(community_site: SiteFactory) -> None:
    async with community_site("small") as site:
        ep = site.directory["platform"]
        ledger = Ledger()
        tls = site.tls.client_context() if site.tls else None
        conn = Connection("platform", ep.host, ep.port, tls, ep.username, ep.password, ep.path, 3.0, ledger)
        platform = site.devices["platform"]
        unmasked_id, unmasked_mobile = "11010519491231002X", "13812345678"
        platform.api._residents[0] |= {"id_number": unmasked_id, "mobile": unmasked_mobile}  # type: ignore[attr-defined]
        async with PlatformClient(conn) as p:
            refused = await p.status_of("GET", "/devices", authenticated=False)
            assert refused.status == 401
            await p.login()
            now, _ = await p.time()
            assert abs((now - datetime.now(UTC)).total_seconds()) < 5
            devices = await p.devices()
            assert {d.id for d in devices.rows} >= {"cam-gate-01", "door-b2-unit1", "gw-01"}
            events = await p.events(limit=5)
            assert 0 < len(events.rows) <= 5 and events.rows[0].seq >= 1
            alerts = await p.alerts(since=datetime.now(UTC) - timedelta(hours=1), type="fire_alarm")
            assert alerts.rows == ()
            residents = await p.residents()
            assert residents.rows[0]["id_number"] == unmasked_id  # the caller sees it, in memory
            tokens = list(platform.api._tokens)  # type: ignore[attr-defined]
            wrong = await p.try_login("nobody-here", "not-the-password")
            assert (wrong.status, wrong.accepted, wrong.remaining_attempts) == (401, False, 4)
        bad = dataclasses.replace(conn, password="definitely-wrong")
        async with PlatformClient(bad) as p:
            with pytest.raises(AuthFailed):
                await p.devices()
        assert tokens
        assert_absent(ledger, ep.password, *tokens, unmasked_id, unmasked_mobile, "definitely-wrong")
        shown = ledger.get(residents.exchange_id).response
        assert "110105********" in shown and "138********" in shown
        assert json.loads(shown.split("\n\n", 1)[1])["residents"]


async def test_onvif_login_and_tls_check_on_a_site(community_site: SiteFactory) -> None:
    async with community_site("faulty") as site:
        ledger = Ledger()
        trust = site.tls.client_context() if site.tls else None

        def conn(device: str, **kw: object) -> Connection:
            ep = site.directory[device]
            base = Connection(device, ep.host, ep.port, trust if ep.tls else None, ep.username, ep.password,
                              ep.path, 3.0, ledger)  # fmt: skip
            return dataclasses.replace(base, **kw)  # type: ignore[arg-type]

        async with OnvifAuthClient(conn("cam-gate-01")) as o:
            clock, _ = await o.device_time()
            info = await o.device_information(clock - datetime.now(UTC))
        assert info.manufacturer == "Hikvision" and info.model
        async with OnvifAuthClient(conn("cam-gate-01", password="wrong-password")) as o:
            with pytest.raises(AuthFailed) as denied:
                await o.device_information()
        assert "ter:NotAuthorized" in (denied.value.args[0])
        async with OnvifAuthClient(conn("cam-b1-lobby")) as o:  # malformed_xml
            with pytest.raises(ProtocolViolation):
                await o.device_time()
        for e in ledger:
            if "GetDeviceInformation" in e.operation:
                assert "<wsse:Nonce" in e.request and "[redacted]</wsse:Password>" in e.request

        async with TlsClient(conn("cam-gate-01")) as t:
            good = await t.handshake()
            knock = await t.plain_http("/onvif/device_service")
        assert good.spoken and good.verified and good.version in ("TLSv1.2", "TLSv1.3")
        assert good.certificate is not None and site.directory["cam-gate-01"].host in good.certificate.sans
        assert not knock.answered
        async with TlsClient(conn("cam-perimeter-01", tls=trust)) as t:  # plain_http fault
            plain = await t.handshake()
            knock = await t.plain_http("/onvif/device_service")
        assert not plain.spoken and plain.handshake_error and knock.answered and knock.status == 405
        async with TlsClient(conn("cam-gate-01", tls=ssl.create_default_context())) as t:
            untrusted = await t.handshake()
        assert untrusted.spoken and not untrusted.verified and "certificate" in (untrusted.verify_error or "")
        async with TlsClient(conn("cam-roof-b1")) as t:  # offline
            with pytest.raises(Unreachable):
                await t.handshake()
        assert_absent(ledger, *(ep.password for ep in site.directory.values()), "wrong-password")


def _cert(
    ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate, *, san: str, days: tuple[int, int]
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=days[0]))
        .not_valid_after(now + dt.timedelta(days=days[1]))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    return pem + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
async def test_tls_check_sees_expired_and_misnamed_certificates_and_old_protocols(tmp_path: Path) -> None:
    """A certificate that verifies takes one handshake, which shows all the check reports; one
    that does not, or a protocol the verifying context refuses, a second that observes it."""
    own_key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    own_ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(own_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400))
        .not_valid_after(now + dt.timedelta(days=400))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(own_key, hashes.SHA256())
    )
    trust = ssl.create_default_context(cadata=own_ca.public_bytes(serialization.Encoding.PEM).decode())
    results = {}
    cases = (
        ("good", "127.0.0.1", (-1, 30), None),
        ("expired", "127.0.0.1", (-30, -1), None),
        ("misnamed", "127.0.0.9", (-1, 30), None),
        ("old", "127.0.0.1", (-1, 30), ssl.TLSVersion.TLSv1_1),
    )
    for name, san, days, newest in cases:
        pem = tmp_path / f"{name}.pem"
        pem.write_bytes(_cert(own_key, own_ca, san=san, days=days))
        server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ctx.load_cert_chain(pem)
        if newest is not None:  # a device that stopped at TLS 1.1
            server_ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            server_ctx.maximum_version = newest
            server_ctx.set_ciphers("ALL:@SECLEVEL=0")

        async def hold(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            w.close()

        server = await asyncio.start_server(hold, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        try:
            async with TlsClient(Connection(name, "127.0.0.1", port, trust, timeout_s=2.0)) as t:
                results[name] = await t.handshake()
        finally:
            server.close()
            await server.wait_closed()
    assert results["expired"].spoken and not results["expired"].verified
    assert "expired" in (results["expired"].verify_error or "")
    assert results["expired"].certificate is not None and results["expired"].certificate.not_after < now
    assert not results["misnamed"].verified and results["misnamed"].certificate is not None
    assert results["misnamed"].certificate.sans == ("127.0.0.9",)
    good, old = results["good"], results["old"]
    assert good.verified and good.version in ("TLSv1.2", "TLSv1.3") and good.cipher
    assert good.certificate is not None and good.certificate.sans == ("127.0.0.1",)
    assert len(good.evidence) == 1
    assert old.spoken and not old.verified and old.version == "TLSv1.1" and old.certificate is not None
    assert all(len(r.evidence) == 2 for r in (results["expired"], results["misnamed"], old))
