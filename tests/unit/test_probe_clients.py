"""A device's clients (sessions, connections, parsed services) live while its jobs run: closed once
its last planned job has ended, or when the job of another device that still reads it leaves, and
every one still open at the run's end."""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import ClassVar

from collectors.connection import Connection
from collectors.exchange import Exchange
from probes.base import ProbeContext
from probes.targets import SiteView, Target

A = Target("nvr-1", "nvr", "onvif", "127.0.0.1", 80, "a")
B = Target("cam-1", "camera", "onvif", "127.0.0.2", 80, "a")


def no_io(exchange: Exchange) -> None:
    raise AssertionError("no I/O expected")


class Client:
    """Notes each client opened and whether it was closed."""

    made: ClassVar[list[Client]] = []

    def __init__(self, conn: Connection) -> None:
        self.device, self.closed = conn.device, False
        Client.made.append(self)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closed = True


def context() -> ProbeContext:
    Client.made = []
    return ProbeContext(SiteView("t", (A, B)), no_io)


async def settled() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_devices_clients_close_when_its_last_planned_job_ends() -> None:
    ctx = context()
    ctx.plan(["nvr-1", "nvr-1", "cam-1"])
    async with ctx.client(Client, A) as first:
        pass
    async with ctx.client(Client, A) as again:
        assert again is first  # one client per device for the run's jobs
    ctx.job_ended("nvr-1")
    await settled()
    assert not first.closed  # one of its jobs is still to come
    ctx.job_ended("nvr-1")
    await settled()
    assert first.closed
    async with ctx.client(Client, B) as other:
        pass
    await ctx.close()
    assert other.closed and len(Client.made) == 2


async def test_a_client_in_use_by_another_devices_job_closes_when_that_job_leaves() -> None:
    ctx = context()
    ctx.plan(["nvr-1", "cam-1"])
    async with ctx.client(Client, A) as client:  # a camera's job reading its recorder
        ctx.job_ended("nvr-1")
        await settled()
        assert not client.closed
    await settled()
    assert client.closed
    async with ctx.client(Client, A) as reopened:  # asked again later: a new one, kept to the end
        assert reopened is not client
    await settled()
    assert not reopened.closed
    await ctx.close()
    assert reopened.closed


async def test_without_a_plan_clients_stay_until_the_end() -> None:
    ctx = context()
    async with ctx.client(Client, A) as client:
        pass
    ctx.job_ended("nvr-1")
    await settled()
    assert not client.closed
    await ctx.close()
    assert client.closed


class Fetched:
    """What a shared fetch returns (a window's observation, say)."""


async def test_a_rounds_shared_fetches_are_let_go_when_it_ends() -> None:
    """The monitor keeps one context for the life of the service: a round's fetches must not stay
    referenced from it until the next round (they did: an hour of a whole site's observations)."""
    ctx = context()

    async def fetch() -> Fetched:
        return Fetched()

    fetched = weakref.ref(await ctx.shared(("observe", "broker"), fetch))
    assert await ctx.shared(("observe", "broker"), fetch) is fetched()  # fetched once, judged many
    await ctx.close_shared()
    await asyncio.sleep(0)  # the loop's step that woke this one lets go of the gathered results
    gc.collect()
    assert fetched() is None
    assert await ctx.shared(("observe", "broker"), fetch) is not None  # a new round fetches anew
