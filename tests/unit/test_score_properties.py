"""Properties: a total never exceeds its maximum and never falls when a result improves."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from mapping.catalog import load_catalog
from scorer.results import Result, Verdict
from scorer.score import score

CATALOG = load_catalog()
IDS = [i.id for i in CATALOG]

ratios = st.decimals(min_value=0, max_value=1, places=2)
results = st.one_of(
    st.sampled_from(["pass", "fail", "not_assessed", "error"]).map(lambda s: Result(s, "evaluator")),  # type: ignore[arg-type]
    ratios.map(lambda r: Result("partial", "evaluator", r)),
)
verdict_maps = st.dictionaries(
    st.sampled_from(IDS), results.map(lambda r: Verdict(evaluator=r)), max_size=120
)


def rank(result: Result | None, basic: bool) -> Decimal:
    """An order on results in which 'better' can only help: fail < undecided < partial < pass."""
    if result is None or result.status in ("not_assessed", "error"):
        return Decimal("0.5") if basic else Decimal(0)
    if result.status == "fail":
        return Decimal(0)
    if result.status == "partial":
        return Decimal("0.5") if basic else (result.ratio or Decimal(0))
    return Decimal(2)


@settings(max_examples=150, deadline=None)
@given(verdict_maps)
def test_total_never_exceeds_max(verdicts: dict[str, Verdict]) -> None:
    for level in score(CATALOG, verdicts).levels:
        assert Decimal(0) <= level.total <= level.max == 100
        for fl in level.first_levels:
            assert fl.total <= fl.max


@settings(max_examples=150, deadline=None)
@given(verdict_maps, st.sampled_from(IDS), results)
def test_improving_a_result_never_lowers_the_total(
    verdicts: dict[str, Verdict], target: str, better: Result
) -> None:
    basic = CATALOG.get(target).kind == "basic"
    current = verdicts.get(target, Verdict()).final
    if rank(better, basic) < rank(current, basic):
        return
    before = score(CATALOG, verdicts)
    after = score(CATALOG, {**verdicts, target: Verdict(evaluator=better)})
    for b, a in zip(before.levels, after.levels, strict=True):
        assert a.total >= b.total, (target, current, better)
