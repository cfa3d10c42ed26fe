"""Pace: call-bound jobs in flight follow the event loop's lag (a limit on the CPU)."""

from __future__ import annotations

import asyncio
import time

import pytest

from zhian.engine import pace
from zhian.engine.pace import Pace


def test_the_limit_halves_when_the_loop_lags_and_grows_back_when_it_keeps_time() -> None:
    p = Pace(256, start=64)
    p.observe(pace.HIGH_LAG_S + 1)
    assert p.limit == 32
    for _ in range(10):
        p.observe(5.0)
    assert p.limit == pace.FLOOR  # never below the floor
    p.observe((pace.LOW_LAG_S + pace.HIGH_LAG_S) / 2)
    assert p.limit == pace.FLOOR  # between the thresholds: unchanged
    for _ in range(100):
        p.observe(0.0)
    assert p.limit == 256  # never above the run's cap


def test_the_record_says_when_how_far_and_why_the_limit_was_cut() -> None:
    p = Pace(64, start=64)
    p.observe(pace.HIGH_LAG_S + 0.3)
    p.observe(0.0)
    p.observe(2.0)
    record = p.record()
    assert [(c["lag_s"], c["limit"]) for c in record["halvings"]] == [(pace.HIGH_LAG_S + 0.3, 32), (2.0, 20)]
    assert record["halved"] == 2 and record["lowest"] == 20 and record["max_lag_s"] == 2.0
    assert (record["cap"], record["floor"], record["start"]) == (64, pace.FLOOR, 64)
    for _ in range(pace.KEPT_CUTS + 10):
        p.observe(0.0)
        p.observe(5.0)
    assert p.record()["halved"] == pace.KEPT_CUTS + 12 and len(p.record()["halvings"]) == pace.KEPT_CUTS


def test_a_cap_below_the_floor_is_the_cap() -> None:
    p = Pace(1)
    p.observe(10.0)
    assert p.limit == 1
    p.observe(0.0)
    assert p.limit == 1


async def test_jobs_beyond_the_limit_wait_and_start_when_it_grows() -> None:
    p = Pace(10, start=2, floor=1)
    running, most = 0, 0
    release = asyncio.Event()

    async def job() -> None:
        nonlocal running, most
        async with p:
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(job()) for _ in range(6)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert running == 2 and p.active == 2
    p.observe(0.0)  # on time: the limit grows by STEP and the waiting jobs start
    for _ in range(20):
        await asyncio.sleep(0)
    assert running == 6 and most == 6
    release.set()
    await asyncio.gather(*tasks)
    assert p.active == 0


async def test_a_cancelled_waiter_leaves_no_slot_taken() -> None:
    p = Pace(1, start=1, floor=1)
    async with p:
        waiting = asyncio.create_task(p.__aenter__())
        await asyncio.sleep(0)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
    assert p.active == 0
    async with asyncio.timeout(5), p:
        assert p.active == 1


async def test_watching_measures_the_lag_of_a_blocked_loop() -> None:
    p = Pace(64, start=64)
    async with p.watching():
        await asyncio.sleep(pace.TICK_S * 1.5)
        time.sleep(pace.HIGH_LAG_S + 0.4)  # noqa: ASYNC251 (the point: the loop blocked, the next tick wakes late)
        await asyncio.sleep(pace.TICK_S * 3)
    assert p.limit < 64
    record = p.record()
    assert record["watched_from"] and record["halved"] >= 1 and record["max_lag_s"] >= pace.HIGH_LAG_S
    assert record["lowest"] == min(c["limit"] for c in record["halvings"]) and record["lowest_at_s"] > 0


@pytest.mark.slow
async def test_thousands_of_waiters_cost_linear_time() -> None:
    """20,000 jobs through 8 slots: a release wakes the first waiters without walking the queue."""
    p = Pace(8, start=8, floor=8)
    done = 0

    async def job() -> None:
        nonlocal done
        async with p:
            await asyncio.sleep(0)
            done += 1

    started = time.process_time()
    await asyncio.gather(*(job() for _ in range(20_000)))
    assert done == 20_000 and p.active == 0
    assert time.process_time() - started < 30
