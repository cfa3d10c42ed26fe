"""A limit on the CPU: call-bound jobs in flight follow how well the run's event loop keeps time.

Every reply a job waits for needs this process's CPU to be read, parsed and recorded. When the
process gets less CPU than its jobs need (thousands of devices, or a machine busy with other
work), replies wait unread in the sockets until their call timeouts run out, and a healthy
device gets an error finding. The loop's lag (how late a short sleep wakes) says how far behind
the process is: while it stays small, the limit grows towards the run's cap; when it passes
`high_lag_s`, the limit halves (not below `floor`), so that the jobs already in flight get the CPU
they need before more start. `record()` is what it did, for the run's evidence: when and how far the
process fell behind, how low the limit went and how long it stayed at the floor (an expert reading
a run's error findings sees whether the machine was starved of CPU while they were made).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

TICK_S = 0.1
HIGH_LAG_S = 0.5  # a ready callback waited this long: the process is behind
LOW_LAG_S = 0.1  # on time: room for more jobs
STEP = 8  # jobs added per tick on time
FLOOR = 8
KEPT_CUTS = 100  # halvings listed in the record (all are counted)


class Pace:
    """An async context manager like a semaphore whose size follows the loop's lag, measured
    while `watching()` runs."""

    def __init__(self, cap: int, *, start: int | None = None, floor: int = FLOOR) -> None:
        self.cap = max(1, cap)
        self.floor = min(floor, self.cap)
        self.limit = min(self.cap, start if start is not None else max(self.floor, self.cap // 4))
        self.active = 0
        self.lag_s = 0.0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._first = self.limit
        self._since: tuple[float, str] | None = None  # when watching began: monotonic, ISO
        self._lowest: tuple[int, float | None] = (self.limit, None)  # and when (s since watching)
        self._max_lag_s = 0.0
        self._at_floor_s = 0.0
        self._cuts: list[dict[str, float]] = []
        self._cut_count = 0

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    async def acquire(self) -> None:
        while self.active >= self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)  # _wake takes it off the queue when it wakes it
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, then cancelled: the slot goes to the next in line
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
        self.active += 1

    def release(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        """Wake as many of the first waiters as there are free slots (each checks again when it
        runs). Thousands wait on a large site: nothing here walks the whole queue."""
        free = self.limit - self.active
        while free > 0 and self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                free -= 1

    def observe(self, lag_s: float) -> None:
        """Adjust the limit to one lag measurement."""
        self.lag_s = lag_s
        before = self.limit
        if lag_s > HIGH_LAG_S:
            self.limit = max(self.floor, self.limit // 2)
        elif lag_s < LOW_LAG_S:
            self.limit = min(self.cap, self.limit + STEP)
        self._note(lag_s, before)
        self._wake()

    def _note(self, lag_s: float, before: int) -> None:
        at = round(time.monotonic() - self._since[0], 1) if self._since else None
        self._max_lag_s = max(self._max_lag_s, lag_s)
        if self.limit < before:
            self._cut_count += 1
            if len(self._cuts) < KEPT_CUTS:
                self._cuts.append({"at_s": at or 0.0, "lag_s": round(lag_s, 3), "limit": self.limit})
        if self.limit < self._lowest[0]:
            self._lowest = (self.limit, at)

    def record(self) -> dict[str, Any]:
        """What the limit did while watched: `halvings` lists the first KEPT_CUTS cuts, each with
        its time (seconds since `watched_from`), the lag that caused it and the limit after it."""
        return {
            "cap": self.cap,
            "floor": self.floor,
            "start": self._first,
            "watched_from": self._since[1] if self._since else None,
            "lowest": self._lowest[0],
            "lowest_at_s": self._lowest[1],
            "max_lag_s": round(self._max_lag_s, 3),
            "at_floor_s": round(self._at_floor_s, 1),
            "halved": self._cut_count,
            "halvings": list(self._cuts),
        }

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK_S)
            elapsed = time.monotonic() - before
            if self.limit == self.floor < self.cap:
                self._at_floor_s += elapsed
            self.observe(max(0.0, elapsed - TICK_S))

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Pace]:
        """The lag measured every TICK_S while the block runs."""
        self._since = (time.monotonic(), datetime.now(UTC).isoformat())
        watcher = asyncio.create_task(self._watch())
        try:
            yield self
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
