"""A limit on the CPU: call-bound jobs in flight follow how well the run's event loop keeps time.

Every reply a job waits for needs this process's CPU to be read, parsed and recorded. When the
process gets less CPU than its jobs need (thousands of devices, or a machine busy with other
work), replies wait unread in the sockets until their call timeouts run out, and a healthy
device gets an error finding. The loop's lag (how late a short sleep wakes) says how far behind
the process is: while it stays small, the limit grows towards the run's cap; when it passes
`high_lag_s`, the limit halves (not below `floor`), so that the jobs already in flight get the CPU
they need before more start.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator
from types import TracebackType

TICK_S = 0.1
HIGH_LAG_S = 0.5  # a ready callback waited this long: the process is behind
LOW_LAG_S = 0.1  # on time: room for more jobs
STEP = 8  # jobs added per tick on time
FLOOR = 8


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

    async def __aenter__(self) -> None:
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

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
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
        if lag_s > HIGH_LAG_S:
            self.limit = max(self.floor, self.limit // 2)
        elif lag_s < LOW_LAG_S:
            self.limit = min(self.cap, self.limit + STEP)
        self._wake()

    async def _watch(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(TICK_S)
            self.observe(max(0.0, time.monotonic() - before - TICK_S))

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[Pace]:
        """The lag measured every TICK_S while the block runs."""
        watcher = asyncio.create_task(self._watch())
        try:
            yield self
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
