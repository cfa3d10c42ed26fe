"""Hand-worked cases an evaluator can redo on paper with the appendix tables."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mapping.catalog import Catalog, load_catalog
from scorer.results import Result, ResultError, Verdict, merge_verdicts, parse_result
from scorer.score import score


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def all_pass(catalog: Catalog, *levels: str, **overrides: Result) -> dict[str, Verdict]:
    verdicts = {
        i.id: Verdict(evaluator=Result("pass", "evaluator")) for lv in levels for i in catalog.level(lv)
    }
    for key, result in overrides.items():
        verdicts[key.replace("_", ".")] = Verdict(**{result.source: result})  # type: ignore[arg-type]
    return verdicts


def ev(status: str, ratio: str | None = None) -> Result:
    return Result(status, "evaluator", Decimal(ratio) if ratio else None)  # type: ignore[arg-type]


def test_all_pass_level_c_gives_grade_c(catalog: Catalog) -> None:
    report = score(catalog, all_pass(catalog, "C"))
    c = report.level("C")
    assert c.total == 100 and c.passed and not c.open
    assert report.level("B").total == 0 and not report.level("B").passed
    assert report.grade == "C"


def test_failed_basic_gates_its_first_level_and_eligibility(catalog: Catalog) -> None:
    report = score(catalog, all_pass(catalog, "A", "B", "C", C1_1_3=ev("fail")))
    c = report.level("C")
    # C1 (25 points) is not evaluated: 100 - 25 = 75.
    assert c.total == 75 and not c.passed
    assert c.gated == ("C1",) and c.basic_failed == ("C1.1.3",)
    c1 = {s.indicator.id: s for s in c.indicators if s.indicator.first_level.id == "C1"}
    assert all(s.gated and s.awarded == 0 for s in c1.values() if s.indicator.kind == "scored")
    assert not c.open  # gated items are not "open"
    eligibility = {e.grade: e for e in report.eligibility}
    assert not eligibility["C"].eligible and eligibility["C"].reasons == ("C1.1.3 failed",)
    assert not eligibility["A"].eligible and not eligibility["B"].eligible
    assert report.grade is None


def test_failed_basic_in_a_only_blocks_grade_a(catalog: Catalog) -> None:
    report = score(catalog, all_pass(catalog, "A", "B", "C", A5_1_2=ev("fail")))
    assert report.level("A").total == 80  # A5 (20 points) gated
    eligibility = {e.grade: e.eligible for e in report.eligibility}
    assert eligibility == {"A": False, "B": True, "C": True}
    assert report.grade == "B"


@pytest.mark.parametrize("status", ["not_assessed", "partial", "error"])
def test_basic_not_passed_makes_pending_never_a_pass(catalog: Catalog, status: str) -> None:
    result = ev(status, "0.9" if status == "partial" else None)
    report = score(catalog, all_pass(catalog, "C", C5_1_4=result))
    c = report.level("C")
    assert c.total == 100 and c.meets_threshold
    assert not c.passed and c.basic_pending == ("C5.1.4",)
    assert {f.id: f.status for f in c.first_levels}["C5"] == "pending"
    assert report.grade is None


def test_missing_basic_verdict_is_pending(catalog: Catalog) -> None:
    verdicts = all_pass(catalog, "C")
    del verdicts["C2.1.1"]
    c = score(catalog, verdicts).level("C")
    assert c.basic_pending == ("C2.1.1",) and not c.passed


def test_partial_awards_points_times_ratio(catalog: Catalog) -> None:
    # C2.3.3 is worth 0.5; 0.5 x 0.5 = 0.25 lost of 100.
    c = score(catalog, all_pass(catalog, "C", C2_3_3=ev("partial", "0.5"))).level("C")
    assert c.total == Decimal("99.75")
    # A4.2.2 is worth 0.3; a third of it is 0.1 exactly, no float drift.
    a = score(catalog, all_pass(catalog, "A", A4_2_2=ev("partial", "0.3333333333"))).level("A")
    assert a.total == Decimal("100") - Decimal("0.3") + Decimal("0.3") * Decimal("0.3333333333")
    assert a.as_dict()["total"] == 99.8


def test_not_assessed_and_error_are_open_and_score_zero(catalog: Catalog) -> None:
    c = score(catalog, all_pass(catalog, "C", C1_2_1=ev("not_assessed"), C1_2_2=ev("error"))).level("C")
    assert c.total == 93 and c.open == ("C1.2.1", "C1.2.2")


# C3: 3.2.2 (5) + 3.3.1 (3) + 3.3.2 (2) + 3.4.1 (6) + 3.4.2 (4) = 20 points failed -> exactly 80.
EIGHTY = {"C3_2_2": "fail", "C3_3_1": "fail", "C3_3_2": "fail", "C3_4_1": "fail", "C3_4_2": "fail"}


def test_exactly_80_fails_under_gt_and_is_flagged(catalog: Catalog) -> None:
    overrides = {k: ev(v) for k, v in EIGHTY.items()}
    report = score(catalog, all_pass(catalog, "C", **overrides), "gt")
    c = report.level("C")
    assert c.total == 80 and c.exactly_80 and not c.passed
    assert report.grade is None


def test_exactly_80_passes_under_ge_and_is_flagged(catalog: Catalog) -> None:
    overrides = {k: ev(v) for k, v in EIGHTY.items()}
    report = score(catalog, all_pass(catalog, "C", **overrides), "ge")
    c = report.level("C")
    assert c.total == 80 and c.exactly_80 and c.passed
    assert report.grade == "C"


def test_above_80_is_not_flagged(catalog: Catalog) -> None:
    c = score(catalog, all_pass(catalog, "C", C3_2_2=ev("fail"))).level("C")
    assert c.total == 95 and not c.exactly_80


def test_grade_a_needs_b_and_c(catalog: Catalog) -> None:
    assert score(catalog, all_pass(catalog, "A", "B", "C")).grade == "A"
    # A and C pass, B does not reach 80 -> only C (9.2: A needs B, B needs B).
    b_low = {f"B3_2_{k}": ev("fail") for k in range(1, 5)} | {"B3_4_1": ev("fail"), "B3_4_2": ev("fail")}
    report = score(catalog, all_pass(catalog, "A", "B", "C", **b_low))
    assert report.level("A").passed and not report.level("B").passed
    assert report.grade == "C"
    # A passes alone: no grade at all.
    assert score(catalog, all_pass(catalog, "A")).grade is None


def test_evaluator_overrides_machine_and_both_are_kept(catalog: Catalog) -> None:
    verdicts = all_pass(catalog, "C")
    verdicts["C2.3.2"] = Verdict(
        machine=Result("fail", "machine", note="admin/12345 accepted"),
        evaluator=Result("pass", "evaluator", note="password changed on site"),
    )
    report = score(catalog, verdicts)
    row = report.as_dict()["levels"]["C"]["indicators"]["C2.3.2"]
    assert row["status"] == "pass" and row["awarded"] == 1
    assert row["machine"]["status"] == "fail" and row["evaluator"]["status"] == "pass"


def test_json_shape(catalog: Catalog) -> None:
    doc = score(catalog, {}).as_dict()
    assert doc["schema"] == "zhian.score/1" and doc["threshold"] == "gt" and doc["grade"] is None
    assert set(doc["levels"]) == {"A", "B", "C"}
    for level in doc["levels"].values():
        assert level["total"] == 0 and level["max"] == 100 and level["passed"] is False
        assert set(level["first_levels"]) and all(
            set(f) == {"total", "max", "status"} for f in level["first_levels"].values()
        )
    assert set(doc["eligibility"]) == {"A", "B", "C"}


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"status": "passed"}, "status 'passed' is not one of"),
        ({"status": "partial"}, "needs a ratio"),
        ({"status": "partial", "ratio": 1.5}, "outside"),
        ({"status": "partial", "ratio": -0.1}, "outside"),
        ({"status": "partial", "ratio": "x"}, "not a number"),
        ({"status": "pass", "ratio": 0.5}, "only for a partial"),
        ({"status": "pass", "source": "robot"}, "source 'robot'"),
        ({"status": "pass", "colour": "red"}, "unknown keys"),
        ("pass", "expected a mapping"),
    ],
)
def test_bad_entries_are_refused_with_the_entry_named(raw: object, message: str) -> None:
    with pytest.raises(ResultError, match=message) as info:
        parse_result("C1.2.1", raw)
    assert "entry C1.2.1" in str(info.value)


def test_merge_refuses_unknown_ids_and_double_sources(catalog: Catalog) -> None:
    ids = [i.id for i in catalog]
    with pytest.raises(ResultError, match=r"entry Z9\.9\.9: unknown indicator id"):
        merge_verdicts(ids, [{"Z9.9.9": {"status": "pass"}}])
    with pytest.raises(ResultError, match="two machine results"):
        merge_verdicts(ids, [{"C1.2.1": {"status": "pass"}}, {"C1.2.1": {"status": "fail"}}])
    merged = merge_verdicts(
        ids, [{"C1.2.1": {"status": "fail"}}, {"C1.2.1": {"status": "pass", "source": "evaluator"}}]
    )
    assert merged["C1.2.1"].final == Result("pass", "evaluator")
