"""Clause 7.4: how many members of a homogeneous population an evaluation must look at.

a) fewer than 100 -> at least 30 %; b) more than 100 and fewer than 500 -> at least 20 %;
c) more than 500 -> at least 10 %. The text leaves exactly 100 and exactly 500 open; we take
the stricter neighbour (30 % at 100, 20 % at 500) and say so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class SamplePlan:
    population: int
    ratio: Decimal
    size: int
    rule: str
    seed: int | None = None
    items: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "population": self.population,
            "ratio": float(self.ratio),
            "size": self.size,
            "rule": self.rule,
            "seed": self.seed,
            "items": list(self.items) if self.items is not None else None,
        }


def sampling_rule(population: int) -> tuple[Decimal, str]:
    """The minimum ratio for a population and the words of 7.4 that set it."""
    if population < 1:
        raise ValueError(f"population must be at least 1, not {population}")
    if population < 100:
        return Decimal("0.3"), "7.4 a): fewer than 100 -> at least 30 %"
    if population == 100:
        return Decimal("0.3"), (
            "7.4 leaves exactly 100 open (a) is fewer than 100, b) more than 100); "
            "the stricter neighbour a) applies: at least 30 %"
        )
    if population < 500:
        return Decimal("0.2"), "7.4 b): more than 100 and fewer than 500 -> at least 20 %"
    if population == 500:
        return Decimal("0.2"), (
            "7.4 leaves exactly 500 open (b) is fewer than 500, c) more than 500); "
            "the stricter neighbour b) applies: at least 20 %"
        )
    return Decimal("0.1"), "7.4 c): more than 500 -> at least 10 %"


def plan(population: int, seed: int | None = None, items: Sequence[str] | None = None) -> SamplePlan:
    """Size = ceil(N x ratio), at least 1; with items, a reproducible pick for the seed."""
    ratio, rule = sampling_rule(population)
    size = max(1, math.ceil(population * ratio))
    picked: tuple[str, ...] | None = None
    if items is not None:
        if len(items) != population:
            raise ValueError(f"{len(items)} items given for a population of {population}")
        if len(set(items)) != len(items):
            raise ValueError("the item list repeats an ID")
        chosen = set(random.Random(seed).sample(range(population), size))
        picked = tuple(item for i, item in enumerate(items) if i in chosen)
    return SamplePlan(population, ratio, size, rule, seed, picked)
