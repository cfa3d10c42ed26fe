"""The person on site during guided active tests.

Real fire panels rarely accept a remote alarm, so zhian tells the operator what to set off by hand
and then watches for the trigger itself. With an operator hook (the simulator's control plane in
tests and the demo) the instruction is also posted as JSON, so a program can play the operator.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import aiohttp


class ConsoleOperator:
    """Prints the instruction; the probe then waits until it observes the trigger."""

    async def instruct(
        self, instruction: str, *, device: str, action: str, params: Mapping[str, Any]
    ) -> None:
        print(f"\n>>> OPERATOR: {instruction}", file=sys.stderr, flush=True)


class HookOperator:
    """Prints the instruction and posts it to a URL that carries it out (the simulator)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s

    async def instruct(
        self, instruction: str, *, device: str, action: str, params: Mapping[str, Any]
    ) -> None:
        print(f"\n>>> OPERATOR (via hook): {instruction}", file=sys.stderr, flush=True)
        body = {"device": device, "action": action, "params": dict(params), "instruction": instruction}
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(self.url, json=body) as resp,
        ):
            if resp.status >= 400:
                raise RuntimeError(f"operator hook {self.url} answered {resp.status}: {await resp.text()}")
