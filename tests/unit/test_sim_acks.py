"""A gateway's start waits on its broker's acknowledgements by their pace, not by the batch's total."""

from __future__ import annotations

import asyncio

import pytest

from simulator.mqtt.link import MqttGatewayError, acknowledged


async def acks_in_turn(n: int, every_s: float) -> list[asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    acks: list[asyncio.Future[None]] = [loop.create_future() for _ in range(n)]
    for k, ack in enumerate(acks):
        loop.call_later(every_s * (k + 1), ack.set_result, None)
    return acks


def test_a_batch_acknowledged_steadily_past_the_quiet_limit_is_waited_for() -> None:
    async def go() -> None:
        acks = await acks_in_turn(6, 0.1)  # 0.6 s in all, never 0.3 s without one
        await acknowledged(acks, quiet_s=0.3)
        assert all(a.done() for a in acks)

    asyncio.run(go())


def test_a_broker_that_stops_acknowledging_or_a_lost_connection_is_an_error() -> None:
    async def quiet() -> None:
        acks = await acks_in_turn(2, 0.05)
        acks.append(asyncio.get_running_loop().create_future())  # never acknowledged
        with pytest.raises(TimeoutError, match="1 outstanding"):
            await acknowledged(acks, quiet_s=0.3)
        assert acks[-1].cancelled()

    async def lost() -> None:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        ack.set_exception(MqttGatewayError("connection lost"))
        with pytest.raises(MqttGatewayError):
            await acknowledged([ack], quiet_s=5)

    asyncio.run(quiet())
    asyncio.run(lost())
