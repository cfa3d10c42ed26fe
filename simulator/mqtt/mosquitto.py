"""mosquitto as the site's broker: a child process with a generated config, password file and ACL."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import pwd
import signal
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from simulator.mqtt.broker_plan import READY_TIMEOUT_S, STOP_TIMEOUT_S, Account, BrokerError, Plan


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


class Mosquitto:
    """mosquitto as a child process with a generated config, password file and ACL file."""

    def __init__(self, plan: Plan) -> None:
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


def _mosquitto_conf(plan: Plan, passwd: Path, acl: Path) -> str:
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
