"""amqtt in this process as the site's broker, with the defects a site would notice mended."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import ItemsView, Iterator
from typing import Any

from amqtt.broker import Broker as AmqttBroker
from pwdlib.hashers.argon2 import Argon2Hasher

from simulator.mqtt.broker_plan import BrokerError, Plan


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


class Amqtt:
    """amqtt in this process, with its password-file and topic-ACL plugins."""

    def __init__(self, plan: Plan) -> None:
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
