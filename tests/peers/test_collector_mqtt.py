"""The MQTT collector against real brokers (mosquitto as a subprocess, amqtt in-process) and against
small asyncio peers that misbehave (silent, garbage, hanging up). Ports are chosen at run time."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import aiomqtt
import pytest
from exchange_sink import Ledger

from collectors.connection import Connection
from collectors.errors import AuthFailed, DeviceRejected, ProtocolViolation, Unreachable
from collectors.mqtt import window
from collectors.mqtt.client import MqttClient
from collectors.mqtt.errors import AUTH_REFUSED
from collectors.mqtt.messages import Observation
from collectors.mqtt.session import HandOn
from simulator.mqtt.broker import Account, Broker, Impl
from simulator.tls import SiteTls, make_site_tls

pytestmark = pytest.mark.peers

HOST = "127.0.0.1"
INSPECTOR = Account("inspector", "inspector-pass-7781", read=("#",), write=())
PUBLISHER = Account("publisher", "publisher-pass-4412")
RESTRICTED = Account("restricted", "restricted-pass-9034", read=("site/#",), write=())
IMPLS = [
    pytest.param(
        "mosquitto", marks=pytest.mark.skipif(shutil.which("mosquitto") is None, reason="no mosquitto")
    ),
    "amqtt",
]
MOSQUITTO: Impl = "mosquitto" if shutil.which("mosquitto") else "amqtt"  # where one broker is enough
SECRET = "pass-1234"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Peer:
    """A broker with TLS (and a plain listener for the publisher) on ports chosen at run time."""

    def __init__(self, impl: Impl, tmp: Path) -> None:
        self.tls: SiteTls = make_site_tls(tmp / "tls", "test", [HOST])
        self.port, self.tls_port = free_port(), free_port()
        self.broker = Broker(
            HOST,
            accounts=[INSPECTOR, PUBLISHER, RESTRICTED],
            port=self.port,
            tls=self.tls,
            tls_port=self.tls_port,
            plaintext_listener=True,
            impl=impl,
            run_dir=tmp / "broker",
        )
        self.ledger = Ledger()

    def conn(self, account: Account = INSPECTOR, **changes: Any) -> Connection:
        base = Connection(
            device="broker",
            host=HOST,
            port=self.tls_port,
            tls=self.tls.client_context(),
            username=account.username,
            password=account.password,
            timeout_s=5.0,
            sink=self.ledger,
        )
        return replace(base, **changes)

    @asynccontextmanager
    async def publisher(self) -> AsyncIterator[aiomqtt.Client]:
        async with aiomqtt.Client(
            HOST, self.port, username=PUBLISHER.username, password=PUBLISHER.password
        ) as client:
            yield client


@pytest.fixture(params=IMPLS)
async def peer(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Peer]:
    p = Peer(cast(Impl, request.param), tmp_path)
    async with p.broker:
        yield p


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[Peer]:
    p = Peer(MOSQUITTO, tmp_path)
    async with p.broker:
        yield p


@asynccontextmanager
async def talker(reply: bytes, *, close: bool, heard: asyncio.Event | None = None) -> AsyncIterator[int]:
    """A TCP peer that answers the first bytes it gets with `reply`, then hangs up or stays silent;
    `heard` is set once those first bytes came."""
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read(1024)
        if heard is not None:
            heard.set()
        writer.write(reply)
        await writer.drain()
        if close:
            writer.close()
        else:
            await reader.read()

    server = await asyncio.start_server(handle, HOST, 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


def open_sockets() -> set[str]:
    """This process's sockets by identity (`socket:[inode]`): a count would be fooled by a socket of
    an earlier test closing meanwhile."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed between the listing and the read
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


async def settles(check: Callable[[], bool], within: float = 3.0) -> bool:
    """True once `check` holds, polling (sockets close a loop turn or two after the call returns)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


def window_opened(client: MqttClient, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Set once the client's subscription is acknowledged: its observation window opens there, so a
    test publishes only then (a fixed pause before publishing is too short on a loaded machine)."""
    opened = asyncio.Event()
    subscription = client.subscription

    @asynccontextmanager
    async def signalling(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async with subscription(*args, **kwargs) as got:
            opened.set()
            yield got

    monkeypatch.setattr(client, "subscription", signalling)
    return opened


# -- observe ---------------------------------------------------------------------------------------
# The beats take about 2 s; the window leaves them room on a loaded machine.
WINDOW_S = 6.0
SILENCE_S = 1.5


async def test_observe_tallies_retained_and_live_messages(
    peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with peer.publisher() as pub:
        await pub.publish("site/gw/dev/status", b'{"state":"online","ts":1}', qos=1, retain=True)

        async def beats() -> int:
            for i in range(12):
                if i == 6:
                    await asyncio.sleep(SILENCE_S)  # a deliberate silence in the middle
                await pub.publish("site/gw/dev/heartbeat", json.dumps({"seq": i}).encode())
                await asyncio.sleep(0.05)
            return 12

        async with MqttClient(peer.conn()) as client:
            opened = window_opened(client, monkeypatch)
            observing = asyncio.create_task(
                client.observe(["site/+/+/status", "site/+/+/heartbeat"], WINDOW_S)
            )
            async with asyncio.timeout(30):
                await opened.wait()
            sent = await beats()
            obs = await observing

    assert obs.filters == ("site/+/+/status", "site/+/+/heartbeat")
    # never shorter than asked; later by as much as a loaded machine wakes the timer late
    assert WINDOW_S - 0.01 <= obs.window_s <= WINDOW_S + 3.0
    status = obs.topic("site/gw/dev/status")
    assert status is not None and status.retained is not None and status.live == 0
    assert status.retained.retain and json.loads(status.retained.payload) == {"state": "online", "ts": 1}
    assert status.latest is status.retained
    beat = obs.topic("site/gw/dev/heartbeat")
    assert beat is not None and beat.live == sent == 12 and beat.retained is None
    assert beat.first_live is not None and json.loads(beat.first_live.payload) == {"seq": 0}
    assert beat.last_live is not None and json.loads(beat.last_live.payload) == {"seq": 11}
    # MQTT delivers at min(published, subscribed); amqtt 0.12 at the subscription's QoS
    assert beat.first_live.qos == (1 if peer.broker.impl == "amqtt" else 0) and not beat.first_live.retain
    assert obs.started_at < beat.first_live.at < beat.last_live.at < obs.ended_at

    [exchange] = peer.ledger
    assert exchange.ok and exchange.protocol == "mqtt" and exchange.id == obs.exchange_id
    assert exchange.facts["topics"] == 2 and exchange.facts["messages"] == obs.messages >= 13
    assert exchange.facts["tls"] is True and exchange.facts["granted"] == [1, 1]
    assert "site/gw/dev/heartbeat messages=12 live=12" in exchange.response
    raw = json.loads(exchange.raw or b"")
    assert {row["topic"] for row in raw["topics"]} == {"site/gw/dev/status", "site/gw/dev/heartbeat"}
    assert raw["sample"][0]["topic"] == "site/gw/dev/status" and raw["sample"][0]["retain"] is True
    # the longest silence is the largest gap between the arrivals the sample holds, and it holds
    # the deliberate one (an arrival is never earlier than its publication)
    arrivals = [datetime.fromisoformat(m["at"]) for m in raw["sample"] if m["topic"].endswith("/heartbeat")]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(arrivals)]
    assert beat.max_live_gap_s == max(gaps)
    assert beat.max_live_gap_s >= SILENCE_S / 2  # the slack: a late delivery of the beat before it
    assert "username=inspector password=[redacted]" in exchange.request
    assert INSPECTOR.password not in peer.ledger.dumped()


async def test_observation_memory_is_bounded(peer: Peer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(window, "MAX_TOPICS", 5)
    monkeypatch.setattr(window, "SAMPLE_LIMIT", 3)
    monkeypatch.setattr(window, "PAYLOAD_LIMIT", 16)
    async with peer.publisher() as pub:
        await pub.publish("site/big", b"x" * 2000, qos=1, retain=True)
        for i in range(8):
            await pub.publish(f"site/t{i}", b"small", qos=1, retain=True)
    async with MqttClient(peer.conn()) as client:
        obs = await client.observe(["site/#"], 1.0)
    assert len(obs.topics) == 5
    assert obs.untracked >= 4 and obs.messages >= 9  # amqtt may replay retained messages twice
    big = obs.topic("site/big")
    assert big is not None and big.retained is not None
    assert big.retained.size == 2000 and len(big.retained.payload) == 16 and big.retained.truncated
    [exchange] = peer.ledger
    raw = json.loads(exchange.raw or b"")
    assert len(raw["sample"]) == 3 and len(raw["topics"]) == 5
    assert exchange.facts["untracked"] == obs.untracked


async def test_a_payload_past_the_bound_is_cut_on_arrival(mosquitto: Peer) -> None:
    """limits.max_reply_bytes holds for MQTT too: a larger payload is cut to its first bytes as it
    arrives, counted per topic and in the evidence; smaller ones are untouched."""
    async with mosquitto.publisher() as pub:
        await pub.publish("site/flood", b"{" + b"x" * 300_000, qos=1, retain=True)
        await pub.publish("site/fine", b"y" * 1000, qos=1, retain=True)
    async with MqttClient(mosquitto.conn(max_reply_bytes=100_000)) as client:
        obs = await client.observe(["site/#"], 0.5)
    flood, fine = obs.topic("site/flood"), obs.topic("site/fine")
    assert flood is not None and flood.retained is not None and fine is not None and fine.retained is not None
    assert (flood.oversize, flood.oversize_bytes) == (1, 300_001)
    assert flood.retained.oversize and flood.retained.size == 300_001 and len(flood.retained.payload) <= 512
    assert flood.retained.payload.startswith(b"{xxx")
    assert (fine.oversize, fine.retained.oversize, fine.retained.size) == (0, False, 1000)
    assert obs.max_payload_bytes == 100_000
    [exchange] = mosquitto.ledger
    assert exchange.facts["oversize"] == 1 and exchange.facts["max_payload_bytes"] == 100_000
    assert (
        "site/flood messages=1 live=0 retained=1 max_gap_s=- oversize=1 largest=300001" in exchange.response
    )
    assert len(exchange.raw or b"") < 20_000


async def test_the_window_takes_messages_as_paho_reads_them(
    mosquitto: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once subscribed, paho hands each message straight to the tally (HandOn.read_directly): no
    aiomqtt Message is built for it, a payload past the bound is cut there too, and a tally that
    fails is the window's error, not a lost broker to subscribe to again."""
    installed = asyncio.Event()
    read_directly = HandOn.read_directly

    def spy(self: HandOn, client: aiomqtt.Client, limit: int) -> None:
        read_directly(self, client, limit)
        installed.set()

    built: list[object] = []
    from_paho = aiomqtt.Message._from_paho_message

    def counted(message: Any) -> aiomqtt.Message:
        built.append(message)
        return from_paho(message)

    monkeypatch.setattr(HandOn, "read_directly", spy)
    monkeypatch.setattr(aiomqtt.Message, "_from_paho_message", counted)

    async def observed(*payloads: tuple[str, bytes]) -> Observation:
        installed.clear()
        async with MqttClient(mosquitto.conn(max_reply_bytes=100_000)) as client:
            task = asyncio.create_task(client.observe(["site/#"], 3.0))
            await asyncio.wait_for(installed.wait(), 20)
            async with mosquitto.publisher() as pub:
                for topic, payload in payloads:
                    await pub.publish(topic, payload, qos=1)
            return await task

    obs = await observed(("site/flood", b"{" + b"x" * 300_000), ("site/fine", b"y" * 1000))
    flood, fine = obs.topic("site/flood"), obs.topic("site/fine")
    assert flood is not None and flood.last_live is not None and fine is not None and fine.last_live
    assert (flood.oversize, flood.last_live.size, len(flood.last_live.payload)) == (1, 300_001, 512)
    assert (fine.live, fine.last_live.size, fine.last_live.oversize) == (1, 1000, False)
    assert built == []  # nothing went through aiomqtt's Message and queue

    def fail(self: object, topic: str, *_: object) -> None:
        raise RuntimeError(f"tally broke on {topic}")

    monkeypatch.setattr(window._Tally, "add", fail)
    with pytest.raises(RuntimeError, match="tally broke on site/bad"):
        await observed(("site/bad", b"z"))
    assert mosquitto.ledger[-1].error and "tally broke" in mosquitto.ledger[-1].error
    assert "subscribing again" not in mosquitto.ledger[-1].response


async def test_gate_holds_the_session_back(mosquitto: Peer) -> None:
    gate = asyncio.Semaphore(1)
    async with gate, MqttClient(mosquitto.conn(gate=gate)) as client:
        task = asyncio.create_task(client.observe(["site/#"], 0.2))
        await asyncio.sleep(0.3)
        assert not task.done() and mosquitto.ledger == []
    obs = await asyncio.wait_for(task, 20)
    assert obs.exchange_id == mosquitto.ledger[0].id


# -- logins ----------------------------------------------------------------------------------------
async def test_single_login_trials(peer: Peer) -> None:
    wrong = "not-the-password-5521"
    async with MqttClient(peer.conn()) as client:
        right = await client.try_login(INSPECTOR.username, INSPECTOR.password)
        bad = await client.try_login(INSPECTOR.username, wrong)
        anonymous = await client.try_anonymous()
    assert right.accepted and right.reason_code == 0
    assert not bad.accepted and bad.reason_code in AUTH_REFUSED
    assert not anonymous.accepted and anonymous.reason_code in AUTH_REFUSED
    assert [e.id for e in peer.ledger] == [right.exchange_id, bad.exchange_id, anonymous.exchange_id]
    assert all(e.ok for e in peer.ledger)
    assert peer.ledger[1].facts == {"accepted": False, "reason_code": bad.reason_code, "reason": bad.reason}
    assert "anonymous" in peer.ledger[2].request and "password" not in peer.ledger[2].request
    dumped = peer.ledger.dumped()
    assert INSPECTOR.password not in dumped and wrong not in dumped


async def test_observe_with_a_wrong_password_is_auth_failed(peer: Peer) -> None:
    async with MqttClient(peer.conn(password="wrong-password-1234")) as client:
        with pytest.raises(AuthFailed) as caught:
            await client.observe(["#"], 1.0)
    [exchange] = peer.ledger
    assert caught.value.exchange_id == exchange.id and not exchange.ok
    assert exchange.facts["reason_code"] in AUTH_REFUSED and "refused the login" in (exchange.error or "")
    assert "wrong-password-1234" not in peer.ledger.dumped()


async def test_subscription_outside_the_acl_is_rejected(tmp_path: Path) -> None:
    """amqtt refuses a filter its ACL denies (SUBACK 0x80); mosquitto grants it and sends nothing."""
    p = Peer("amqtt", tmp_path)
    async with p.broker, MqttClient(p.conn(RESTRICTED)) as client:
        with pytest.raises(DeviceRejected) as caught:
            await client.observe(["site/#", "other/#"], 1.0)
    assert caught.value.code == "128" and caught.value.exchange_id == p.ledger[0].id
    assert "SUBACK" in p.ledger[0].response


# -- transport failures ----------------------------------------------------------------------------
async def test_a_certificate_that_does_not_verify_is_a_protocol_violation(mosquitto: Peer) -> None:
    system_store = ssl.create_default_context()  # does not know the site's private CA
    async with MqttClient(mosquitto.conn(tls=system_store)) as client:
        with pytest.raises(ProtocolViolation) as caught:
            await client.try_login(INSPECTOR.username, INSPECTOR.password)
    [exchange] = mosquitto.ledger
    assert caught.value.exchange_id == exchange.id and not exchange.ok
    assert exchange.facts["tls_verified"] is False and "does not verify" in str(caught.value)
    assert INSPECTOR.password not in mosquitto.ledger.dumped()


async def test_a_closed_port_is_unreachable() -> None:
    ledger = Ledger()
    conn = Connection("broker", HOST, free_port(), username="u", password=SECRET, sink=ledger)
    async with MqttClient(conn) as client:
        with pytest.raises(Unreachable) as caught:
            await client.observe(["#"], 1.0)
    assert not caught.value.timed_out and caught.value.exchange_id == ledger[0].id and not ledger[0].ok


@pytest.mark.parametrize(
    ("reply", "close", "error", "timed_out"),
    [
        (b"", False, Unreachable, True),  # accepts and says nothing
        (b"", True, Unreachable, False),  # hangs up on CONNECT
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", True, Unreachable, False),  # not MQTT, and gone
        (b"\x20\x05\x00\x00\x00\x00\x00", False, ProtocolViolation, None),  # a CONNACK of the wrong size
        (b"\x20\x02\x00\x03", False, DeviceRejected, None),  # CONNACK: server unavailable
    ],
)
async def test_misbehaving_peers(
    reply: bytes, close: bool, error: type[Exception], timed_out: bool | None
) -> None:
    ledger = Ledger()
    # the silent peer costs the timeout; every other answers at once, given room on a loaded machine
    timeout_s = 0.5 if timed_out else 10.0
    async with talker(reply, close=close) as port:
        conn = Connection(
            "broker", HOST, port, username="u", password=SECRET, timeout_s=timeout_s, sink=ledger
        )
        async with MqttClient(conn) as client:
            with pytest.raises(error) as caught:
                await client.try_login("u", SECRET)
    assert getattr(caught.value, "exchange_id", None) == ledger[-1].id and not ledger[-1].ok
    if timed_out:  # an unanswered CONNECT is sent once more; both attempts are evidence
        assert len(ledger) == 2 and "attempt 1" in (ledger[0].error or "")
    else:
        assert len(ledger) == 1
    if timed_out is not None:
        assert cast(Unreachable, caught.value).timed_out is timed_out
    if error is DeviceRejected:
        assert cast(DeviceRejected, caught.value).code == "136"  # 3.1.1's 3 in MQTT 5 numbering


async def test_losing_the_broker_for_the_rest_of_the_window_is_a_gap_to_its_end(
    mosquitto: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """zhian tries to subscribe again until the window ends; the window is kept, the gap recorded."""
    async with MqttClient(mosquitto.conn(timeout_s=1.0)) as client:
        opened = window_opened(client, monkeypatch)
        observing = asyncio.create_task(client.observe(["#"], 4.0))
        async with asyncio.timeout(30):
            await opened.wait()
        await mosquitto.broker.stop()
        obs = await asyncio.wait_for(observing, 30)
    [(lost, back)] = obs.gaps
    assert obs.started_at < lost < back <= obs.ended_at
    assert (obs.ended_at - back).total_seconds() < 1  # away until the window's end
    [exchange] = mosquitto.ledger
    assert exchange.ok and exchange.id == obs.exchange_id and len(exchange.facts["gaps"]) == 1
    assert "the connection was lost" in exchange.response and "subscribing again failed" in exchange.response


# -- cancellation ----------------------------------------------------------------------------------
async def test_cancelled_window_closes_its_connection(
    mosquitto: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await asyncio.sleep(0.1)
    baseline = open_sockets()
    async with MqttClient(mosquitto.conn()) as client:
        opened = window_opened(client, monkeypatch)
        observing = asyncio.create_task(client.observe(["#"], 60.0))
        async with asyncio.timeout(30):
            await opened.wait()
        assert open_sockets() - baseline  # the session is open
        observing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await observing
    assert await settles(lambda: not open_sockets() - baseline)
    [exchange] = mosquitto.ledger
    assert not exchange.ok and exchange.facts == {"cancelled": True}


async def test_cancelled_connect_drops_the_socket_when_paho_is_done() -> None:
    ledger = Ledger()
    heard = asyncio.Event()
    async with talker(b"", close=False, heard=heard) as port:
        await asyncio.sleep(0.1)
        baseline = open_sockets()
        # cancelled while paho waits for the CONNACK, well before its timeout, when it lets go
        conn = Connection("broker", HOST, port, username="u", password=SECRET, timeout_s=3.0, sink=ledger)
        async with MqttClient(conn) as client:
            connecting = asyncio.create_task(client.try_login("u", SECRET))
            async with asyncio.timeout(20):
                await heard.wait()
            connecting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await connecting
        # the talker's own end of the connection stays open until the talker closes: count ours only
        assert await settles(lambda: len(open_sockets() - baseline) <= 1, within=15.0)
    assert len(ledger) == 1 and not ledger[0].ok
