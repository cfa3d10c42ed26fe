"""Clause 7.4 at and around its boundaries; the open cases take the stricter neighbour."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scorer.sampling import plan

CASES = [
    (1, "0.3", 1, "7.4 a)"),
    (99, "0.3", 30, "7.4 a)"),  # 29.7 -> 30
    (100, "0.3", 30, "leaves exactly 100 open"),
    (101, "0.2", 21, "7.4 b)"),  # 20.2 -> 21
    (499, "0.2", 100, "7.4 b)"),  # 99.8 -> 100
    (500, "0.2", 100, "leaves exactly 500 open"),
    (501, "0.1", 51, "7.4 c)"),  # 50.1 -> 51
]


@pytest.mark.parametrize(("n", "ratio", "size", "rule"), CASES)
def test_sizes(n: int, ratio: str, size: int, rule: str) -> None:
    p = plan(n)
    assert p.ratio == Decimal(ratio) and p.size == size and rule in p.rule


def test_open_boundaries_say_which_neighbour_applies() -> None:
    assert "stricter neighbour a)" in plan(100).rule
    assert "stricter neighbour b)" in plan(500).rule


def test_pick_is_reproducible_and_keeps_file_order() -> None:
    items = [f"cam-{i:03d}" for i in range(240)]
    a = plan(240, 7, items)
    assert a.items is not None and len(a.items) == a.size == 48
    assert a.items == plan(240, 7, items).items
    assert list(a.items) == sorted(a.items, key=items.index)
    assert a.items != plan(240, 8, items).items


def test_bad_populations() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        plan(0)
    with pytest.raises(ValueError, match="3 items given for a population of 4"):
        plan(4, 1, ["a", "b", "c"])
    with pytest.raises(ValueError, match="repeats"):
        plan(2, 1, ["a", "a"])
