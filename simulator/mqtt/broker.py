"""The community's MQTT broker: Debian's mosquitto when installed, else amqtt in-process.

Both refuse anonymous logins and give every account a password and a topic ACL, as a site's
broker should. Which accounts exist is the site's business (`site_accounts`): one per gateway on
its own subtree, one for the platform, a read-only one for the inspector, and the default
accounts that weak_credentials faults leave open.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from simulator.faults import WeakCredentials
from simulator.model import Credentials
from simulator.mqtt.amqtt_broker import Amqtt
from simulator.mqtt.broker_plan import Account, BrokerError, Plan
from simulator.mqtt.dialect import Speaker
from simulator.mqtt.mosquitto import Mosquitto
from simulator.mqtt.topics import GatewayTopics
from simulator.runtime import PORTS, DeviceContext, Endpoint
from simulator.tls import SiteTls

__all__ = ["Account", "Broker", "BrokerError", "Impl", "site_accounts"]

Impl = Literal["auto", "mosquitto", "amqtt"]

INSPECTOR_READ = ("#", "$SYS/#")  # `#` does not match $SYS topics (MQTT 4.7.2)


def site_accounts(
    gateways: Iterable[DeviceContext], *, platform: Credentials, inspector: Credentials
) -> list[Account]:
    """The logins of a site's broker.

    Each gateway reads and writes its own subtree only; the platform reads and writes everything;
    the inspector may only read. A gateway's weak_credentials fault opens the default account on
    the broker with full rights, as a factory admin account has.
    """
    accounts = [
        Account(platform.username, platform.password),
        Account(inspector.username, inspector.password, read=INSPECTOR_READ, write=()),
    ]
    for ctx in gateways:
        if ctx.spec.gateway is None:
            raise ValueError(f"device {ctx.spec.id!r} is not a gateway")
        topics = GatewayTopics.of(ctx.spec.gateway.topic_root, ctx.community.name, ctx.spec.id)
        subtrees = Speaker(ctx.spec.gateway.mqtt_profile, topics).subtrees
        accounts.append(Account(ctx.credentials.username, ctx.credentials.password, subtrees, subtrees))
        weak = ctx.spec.fault(WeakCredentials)
        if weak is not None:
            accounts.append(Account(weak.username, weak.password))
    return _unique(accounts)


def _unique(accounts: Iterable[Account]) -> list[Account]:
    """One account per username; the same default account left open on two gateways is one login."""
    out: dict[str, Account] = {}
    for account in accounts:
        known = out.setdefault(account.username, account)
        if known != account:
            raise ValueError(f"broker username {account.username!r} is given twice with different rights")
    return list(out.values())


class _Backend(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Broker:
    """The site's MQTT broker, listening on its own loopback address.

    `port` serves plain MQTT and `tls_port` MQTT over TLS with the site certificate. With TLS on,
    the plain listener is open only when `plaintext_listener` says so: plain MQTT offered beside
    TLS is itself a finding. `accounts` is either Account rows or {username: password} (full
    rights). `impl` picks mosquitto (subprocess) or amqtt (in-process); "auto" prefers mosquitto.
    """

    def __init__(
        self,
        host: str,
        *,
        accounts: Iterable[Account] | Mapping[str, str],
        port: int = PORTS["mqtt"],
        tls: SiteTls | None = None,
        tls_port: int = PORTS["mqtts"],
        plaintext_listener: bool = False,
        impl: Impl = "auto",
        run_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.tls = tls
        self.plaintext = tls is None or plaintext_listener
        if isinstance(accounts, Mapping):
            self.accounts = _unique(Account(u, p) for u, p in accounts.items())
        else:
            self.accounts = _unique(accounts)
        self.impl: Literal["mosquitto", "amqtt"] = _resolve(impl)
        self._run_dir = run_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._backend: _Backend | None = None

    @property
    def listeners(self) -> tuple[tuple[int, bool], ...]:
        plain = ((self.port, False),) if self.plaintext else ()
        return plain + (((self.tls_port, True),) if self.tls else ())

    def endpoint(self, *, username: str, password: str, area: str, device_id: str = "broker") -> Endpoint:
        """The broker's row in the endpoints file: TLS when offered, the plain port in extra if open."""
        tls = self.tls is not None
        extra: dict[str, Any] = {"impl": self.impl}
        if tls and self.plaintext:
            extra["plain_port"] = self.port
        return Endpoint(
            id=device_id,
            kind="broker",
            protocol="mqtt",
            host=self.host,
            port=self.tls_port if tls else self.port,
            path="",
            username=username,
            password=password,
            area=area,
            tags={},
            faults=[],
            tls=tls,
            extra=extra,
        )

    async def start(self) -> None:
        if self._backend is not None:
            raise BrokerError("broker already started")
        for port, _ in self.listeners:
            _ensure_free(self.host, port)
        if self._run_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="zhian-mqtt-")
            run_dir = Path(self._tmp.name)
        else:
            run_dir = self._run_dir
            run_dir.mkdir(parents=True, exist_ok=True)
        plan = Plan(self.host, self.listeners, tuple(self.accounts), self.tls, run_dir)
        backend: _Backend = Mosquitto(plan) if self.impl == "mosquitto" else Amqtt(plan)
        self._backend = backend
        try:
            await backend.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        backend, self._backend = self._backend, None
        try:
            if backend is not None:
                await backend.stop()
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()
                self._tmp = None

    async def __aenter__(self) -> Broker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _resolve(impl: Impl) -> Literal["mosquitto", "amqtt"]:
    if impl == "amqtt":
        return "amqtt"
    if shutil.which("mosquitto") and shutil.which("mosquitto_passwd"):
        return "mosquitto"
    if impl == "mosquitto":
        raise BrokerError("mosquitto and mosquitto_passwd are not installed")
    return "amqtt"


def _ensure_free(host: str, port: int) -> None:
    """Refuse to start beside a leftover broker: a readiness probe would happily talk to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BrokerError(f"cannot listen on {host}:{port}: {exc}") from exc
