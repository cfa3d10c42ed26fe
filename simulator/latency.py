"""Reply latency as embedded devices have it, so that concurrency matters as on a site."""

from __future__ import annotations

import asyncio
import math
import random

from simulator.model import LatencySpec


class Latency:
    """Samples lognormal delays per protocol; a scale of 0 turns every delay off (tests)."""

    def __init__(self, specs: dict[str, LatencySpec], *, scale: float = 1.0, seed: int = 0) -> None:
        self._specs = specs
        self._scale = scale
        self._rng = random.Random(seed)

    def sample(self, protocol: str) -> float:
        spec = self._specs.get(protocol)
        if spec is None or self._scale == 0 or spec.median_ms == 0:
            return 0.0
        ms = spec.median_ms * math.exp(self._rng.gauss(0.0, spec.sigma))
        return min(ms, spec.max_ms) * self._scale / 1000.0

    async def wait(self, protocol: str) -> None:
        delay = self.sample(protocol)
        if delay > 0:
            await asyncio.sleep(delay)
