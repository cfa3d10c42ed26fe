"""How a run stops when it is told to (SIGINT, SIGTERM) or cannot go on (the disk is full): cleanly,
at any moment, keeping what was collected.

The handlers are installed before the event loop starts and stay until the run directory is
sealed, so a signal during setup, the probes, an active test, the report or the seal each has one
known effect:

- before the probes start or while the report is written, the step in progress is abandoned
  (`Stopped` is raised there) and the run goes straight to closing its ledger and sealing;
- while probes run, the running jobs are cancelled: active tests restore the site first, and each
  one cut short leaves an `interrupted` finding;
- while the ledger is closed and the run sealed, the signal is only noted: the seal is finished.

A second signal while the first is being honoured (a site being restored) is noted and ignored.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """Raised in the step a signal abandons (planning or the report); a BaseException, like
    KeyboardInterrupt, so that no `except Exception` on the way swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Stopper:
    """The run's signal handling, from before the event loop until the seal is written."""

    def __init__(self, say: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> None:
        self.signum: int | None = None
        self.why: str | None = None  # a stop that is not a signal (disk full)
        self.deferred = False  # noting only: the seal is being written
        self._say = say
        self._previous: dict[int, Any] = {}
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def stopped(self) -> bool:
        return self.signum is not None or self.why is not None

    def install(self) -> None:
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def attach(self, task: asyncio.Task[Any]) -> None:
        """Signals now cancel this task (the probes) instead of raising."""
        self._task, self._loop = task, task.get_loop()

    def detach(self) -> None:
        self._task = self._loop = None

    def stop(self, why: str) -> None:
        """Stop for a reason of the run's own (evidence can no longer be written)."""
        if self.stopped:
            return
        self.why = why
        self._cancel()

    def _cancel(self) -> None:
        if self._task is not None and self._loop is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)

    def _handle(self, signum: int, _: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stopped:
            self._say(f"zhian: {name} again: still stopping (restoring the site, sealing what was kept)")
            return
        self.signum = signum
        if self._task is not None:
            self._say(f"zhian: {name}: stopping; active tests restore the site first")
            self._cancel()
        elif not self.deferred:
            raise Stopped(signum)
