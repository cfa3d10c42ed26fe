"""The community's MQTT broker: Debian's mosquitto when installed, else amqtt in-process.

Both refuse anonymous logins and give every account a password and a topic ACL, as a site's
broker should. Which accounts exist is the site's business (`site_accounts`): one per gateway on
its own subtree, one for the platform, a read-only one for the inspector, and the default
accounts that weak_credentials faults leave open.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import sys
import tempfile
import warnings
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from amqtt.broker import Broker as AmqttBroker
from pwdlib.hashers.argon2 import Argon2Hasher

from simulator.faults import WeakCredentials
from simulator.model import Credentials
from simulator.mqtt.dialect import Speaker
from simulator.mqtt.topics import GatewayTopics
from simulator.runtime import PORTS, DeviceContext, Endpoint
from simulator.tls import SiteTls

Impl = Literal["auto", "mosquitto", "amqtt"]

READY_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
INSPECTOR_READ = ("#", "$SYS/#")  # `#` does not match $SYS topics (MQTT 4.7.2)


class BrokerError(RuntimeError):
    """The broker could not be set up or did not come up."""


@dataclass(frozen=True)
class Account:
    """One broker login and the topic filters it may subscribe to (read) and publish to (write)."""

    username: str
    password: str
    read: tuple[str, ...] = ("#",)
    write: tuple[str, ...] = ("#",)

    def __post_init__(self) -> None:
        if not self.username or any(c in self.username for c in ": \t\r\n"):
            raise ValueError(f"broker username {self.username!r} cannot go into a password file")
        if not self.password or any(c in self.password for c in "\r\n"):
            raise ValueError(f"broker account {self.username!r} needs a one-line password")


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


@dataclass(frozen=True)
class _Plan:
    host: str
    listeners: tuple[tuple[int, bool], ...]  # (port, tls)
    accounts: tuple[Account, ...]
    tls: SiteTls | None
    run_dir: Path


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
        plan = _Plan(self.host, self.listeners, tuple(self.accounts), self.tls, run_dir)
        backend: _Backend = _Mosquitto(plan) if self.impl == "mosquitto" else _Amqtt(plan)
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


async def _wait_listening(host: str, ports: Iterable[int], alive: Callable[[], bool], log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    for port in ports:
        while True:
            if not alive():
                raise BrokerError(f"mosquitto exited before listening:\n{_tail(log)}")
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                if loop.time() > deadline:
                    raise BrokerError(f"mosquitto not listening on {host}:{port}:\n{_tail(log)}") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            break


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """In the child before exec: take SIGTERM when the simulator dies, so no broker outlives it."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class _Mosquitto:
    """mosquitto as a child process with a generated config, password file and ACL file."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        plan = self._plan
        passwd = plan.run_dir / "passwd"
        passwd.touch(mode=0o600)
        passwd.write_text("".join(f"{a.username}:{a.password}\n" for a in plan.accounts))
        await _run("mosquitto_passwd", "-U", str(passwd))  # hashes the plain file in place
        acl = plan.run_dir / "acl"
        acl.write_text(_mosquitto_acl(plan.accounts))
        conf = plan.run_dir / "mosquitto.conf"
        conf.write_text(_mosquitto_conf(plan, passwd, acl))
        log = plan.run_dir / "mosquitto.log"
        with log.open("ab") as out:
            self._proc = await asyncio.create_subprocess_exec(
                "mosquitto",
                "-c",
                str(conf),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                preexec_fn=_die_with_parent,
            )
        proc = self._proc
        await _wait_listening(plan.host, (p for p, _ in plan.listeners), lambda: proc.returncode is None, log)

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        try:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
        except (ProcessLookupError, TimeoutError):
            pass  # gone already, or killed below
        finally:
            await _reap(proc)


async def _reap(proc: asyncio.subprocess.Process) -> None:
    """Kill a child still running (it did not stop in time, or we were cancelled) and wait for it."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()  # SIGKILL cannot be caught: this returns at once


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await proc.communicate()
    finally:
        await _reap(proc)
    if proc.returncode != 0:
        raise BrokerError(f"{' '.join(argv[:2])} failed: {output.decode(errors='replace').strip()}")


def _mosquitto_conf(plan: _Plan, passwd: Path, acl: Path) -> str:
    lines = [
        "# written by the zhian simulator",
        # Run as root, mosquitto would drop to a user that cannot read run_dir.
        f"user {pwd.getpwuid(os.getuid()).pw_name}",
        "persistence false",
        "allow_anonymous false",
        f"password_file {passwd}",
        f"acl_file {acl}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        "connection_messages true",
        "set_tcp_nodelay true",
        # An inspector subscribing to `#` receives every retained status at once; the default
        # queue of 1000 would drop some and make healthy devices look silent.
        "max_queued_messages 100000",
    ]
    for port, tls in plan.listeners:
        lines.append(f"listener {port} {plan.host}")
        if tls:
            if plan.tls is None:
                raise BrokerError("a TLS listener without site certificates")
            lines += [f"certfile {plan.tls.cert_file}", f"keyfile {plan.tls.key_file}"]
    return "\n".join(lines) + "\n"


def _mosquitto_acl(accounts: Iterable[Account]) -> str:
    blocks = []
    for a in accounts:
        rules = [f"topic read {f}" for f in a.read] + [f"topic write {f}" for f in a.write]
        blocks.append("\n".join([f"user {a.username}", *rules]))
    return "\n\n".join(blocks) + "\n"


class _Subscriptions(dict[str, Any]):
    """amqtt walks its subscription table across awaits while clients come and go, and loses the
    message being broadcast ("dictionary changed size during iteration"): hand out copies."""

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().__iter__()))

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]  # a snapshot, not a live view
        return dict(super().items()).items()


class _FixedAmqtt(AmqttBroker):  # type: ignore[misc]  # amqtt ships no type information
    """amqtt 0.12 with the defects a site would notice mended.

    It waits on a silent client forever, where a broker must drop it after 1.5 x its keep alive
    [MQTT-3.1.2-24] and publish its Will: that is how a hung gateway shows on a site. And it
    loses messages it has acknowledged when their publisher disconnects right after (a gateway's
    last "offline" on shutdown), or when any client leaves during a broadcast (_Subscriptions).
    """

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._subscriptions = _Subscriptions()
        self._dropping: set[asyncio.Future[Any]] = set()

    async def _initialize_client_session(self, *args: Any, **kwargs: Any) -> Any:
        handler, session = await super()._initialize_client_session(*args, **kwargs)
        if session.keep_alive > 0:
            session.keep_alive = session.keep_alive * 1.5  # the reader's wait for the next packet

            def drop() -> None:
                task = asyncio.ensure_future(handler.handle_connection_closed())
                self._dropping.add(task)
                task.add_done_callback(self._dropping.discard)

            handler.handle_read_timeout = drop
        return handler, session

    async def _handle_disconnect(self, session: Any, handler: Any, disconnect_waiter: Any) -> None:
        # Deliver what the client published (and was PUBACKed) before it left, then its Will.
        queue = session.delivered_message_queue
        while not queue.empty():
            received: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            received.set_result(queue.get_nowait())
            await self._handle_message_delivery(session, handler, received)
        await super()._handle_disconnect(session, handler, disconnect_waiter)


class _Amqtt:
    """amqtt in this process, with its password-file and topic-ACL plugins."""

    def __init__(self, plan: _Plan) -> None:
        self._plan = plan
        self._broker: _FixedAmqtt | None = None

    async def start(self) -> None:
        plan = self._plan
        passwd = plan.run_dir / "passwd"
        # Cheap argon2 parameters: the hash carries them, and a site of 50 gateways logs in at once.
        hasher = Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)
        passwd.touch(mode=0o600)
        passwd.write_text("".join(f"{a.username}:{hasher.hash(a.password)}\n" for a in plan.accounts))
        listeners: dict[str, dict[str, Any]] = {}
        for port, tls in plan.listeners:
            listener: dict[str, Any] = {"type": "tcp", "bind": f"{plan.host}:{port}"}
            if tls:
                if plan.tls is None:
                    raise BrokerError("a TLS listener without site certificates")
                listener |= {
                    "ssl": True,
                    "certfile": str(plan.tls.cert_file),
                    "keyfile": str(plan.tls.key_file),
                }
            listeners["default" if not listeners else f"listener-{port}"] = listener
        config = {
            "listeners": listeners,
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": False},
                "amqtt.plugins.authentication.FileAuthPlugin": {"password_file": str(passwd)},
                "amqtt.plugins.topic_checking.TopicAccessControlListPlugin": {
                    "acl": {a.username: list(a.read) for a in plan.accounts},
                    "publish_acl": {a.username: list(a.write) for a in plan.accounts},
                },
            },
        }
        with warnings.catch_warnings():
            # 'acl' is amqtt 0.12's only configurable name for the subscribe ACL.
            warnings.filterwarnings(
                "ignore", message="The 'acl' option is deprecated", category=DeprecationWarning
            )
            self._broker = _FixedAmqtt(config)
        # Cancelled inside asyncio.start_server, a listening socket is lost before amqtt holds it:
        # let the start finish, so stop() finds every listener it opened.
        starting = asyncio.ensure_future(self._broker.start())
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            await asyncio.gather(starting, return_exceptions=True)
            raise

    async def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        if broker.transitions.state == "started":
            await broker.shutdown()
        else:  # a start that failed half way: close the listeners it opened
            for server in broker._servers.values():
                await server.close_instance()
