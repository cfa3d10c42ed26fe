"""Waivers and the evaluator's file: what a waiver does to the score (and what it never does), expiry,
the evaluator's last word, `zhian score` agreeing with the report, and the sign-off and label data."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mapping.catalog import load_catalog
from scorer import waivers
from scorer.results import Result, Verdict
from zhian.cli import main
from zhian.report.write import write_report

from .fixtures.report.runs import write_run

WAIVER = """
date: {date}
evaluator: 某评价中心
evaluators: [张三, 李四]
issuer: 王五
label_number: ZA-2026-001
waivers:
  - indicator: A2.1.1
    justification: "<b>camera replaced</b>; TLS firmware due in January"
    approver: 物业安全经理
    expires: {expires}
verdicts: {{}}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("waivers") / "run")


def evaluator_file(run: Path, text: str) -> Path:
    path = run.parent / f"evaluator-{abs(hash(text))}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def report(run: Path, evaluator: Path | None, lang: str = "zh") -> dict[str, Any]:
    out = run.parent / f"{evaluator.stem if evaluator else 'machine'}.{lang}.json"
    doc: dict[str, Any] = json.loads(
        write_report(run, "json", "en" if lang == "en" else "zh", evaluator, out).read_text(encoding="utf-8")
    )
    return doc


def level(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(lv for lv in doc["summary"]["levels"] if lv["level"] == name)


def indicator(doc: dict[str, Any], ind: str) -> dict[str, Any]:
    return next(r for r in doc["indicators"] if r["id"] == ind)


def test_a_waiver_in_force_sets_the_machines_fail_aside_but_never_passes_it(run: Path) -> None:
    machine = report(run, None)
    assert level(machine, "A")["basic_failed"] == ["A2.1.1"] and level(machine, "A")["gated"] == ["A2"]
    assert not next(e for e in machine["summary"]["eligibility"] if e["grade"] == "A")["eligible"]

    doc = report(run, evaluator_file(run, WAIVER.format(date="2026-12-01", expires="2027-01-31")))
    a = level(doc, "A")
    assert a["basic_failed"] == [] and a["gated"] == [] and "A2.1.1" in a["basic_pending"]
    assert a["passed"] is False  # pending basic requirement: no pass without the evaluator
    assert next(e for e in doc["summary"]["eligibility"] if e["grade"] == "A")["eligible"]
    row = indicator(doc, "A2.1.1")
    assert row["machine"]["status"] == "fail"  # the proposal as the run wrote it stays visible
    assert row["final_status"] == "not_assessed" and row["decided_by"] is None
    assert row["waiver"]["state"] == "applied" and row["waiver"]["judged_on"] == "2026-12-01"
    problem = next(p for p in doc["problems"]["items"] if p["indicator"] == "A2.1.1")
    assert problem["waiver"]["approver"] == "物业安全经理"
    assert doc["waivers"] == [row["waiver"]]
    assert a["total"] == sum(r["awarded"] for r in doc["indicators"] if r["level"] == "A")


def test_an_expired_waiver_no_longer_applies_and_the_report_says_so(run: Path) -> None:
    machine = report(run, None)
    expired = evaluator_file(run, WAIVER.format(date="2026-12-01", expires="2026-11-30"))
    doc = report(run, expired)
    assert doc["waivers"][0]["state"] == "expired"
    assert [lv["total"] for lv in doc["summary"]["levels"]] == [
        lv["total"] for lv in machine["summary"]["levels"]
    ]
    assert level(doc, "A")["basic_failed"] == ["A2.1.1"]
    html = write_report(run, "html", "zh", expired, run.parent / "expired.html").read_text(encoding="utf-8")
    assert "已于 2026-11-30 过期（按 2026-12-01 判断），不再适用" in html
    assert "&lt;b&gt;camera replaced&lt;/b&gt;" in html and "<b>camera replaced" not in html


def test_a_waiver_holds_through_its_expiry_day(run: Path) -> None:
    doc = report(run, evaluator_file(run, WAIVER.format(date="2026-11-30", expires="2026-11-30")))
    assert doc["waivers"][0]["state"] == "applied"


def test_the_evaluators_verdict_prevails_over_a_waiver(run: Path) -> None:
    text = WAIVER.format(date="2026-12-01", expires="2027-01-31").replace(
        "verdicts: {}", "verdicts:\n  A2.1.1: {status: fail, source: evaluator, note: checked on site}"
    )
    doc = report(run, evaluator_file(run, text))
    row = indicator(doc, "A2.1.1")
    assert (
        row["waiver"]["state"] == "superseded"
        and row["final_status"] == "fail"
        and row["decided_by"] == "evaluator"
    )
    assert level(doc, "A")["basic_failed"] == ["A2.1.1"]


def test_a_waiver_on_what_the_machine_did_not_fail_changes_nothing() -> None:
    w = waivers.Waiver("A2.3.4", "why", "who", date(2027, 1, 1))
    verdicts = {"A2.3.4": Verdict(machine=Result("partial", "machine", ratio=None))}
    (outcome,) = waivers.assess([w], verdicts, date(2026, 12, 1))
    assert outcome.state == "no_effect" and waivers.apply(verdicts, [outcome]) == verdicts
    (outcome,) = waivers.assess([w], {}, date(2026, 12, 1))
    assert outcome.state == "no_effect"


def test_zhian_score_applies_the_same_waivers(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = evaluator_file(run, WAIVER.format(date="2026-12-01", expires="2027-01-31"))
    doc = report(run, path)
    assert main(["score", str(run / "verdicts.yaml"), str(path), "--format", "json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    for lv in doc["summary"]["levels"]:
        want = scored["levels"][lv["level"]]
        assert (lv["total"], lv["basic_failed"], lv["gated"]) == (
            want["total"],
            want["basic_failed"],
            want["gated"],
        )
    assert "waived until 2027-01-31" in scored["levels"]["A"]["indicators"]["A2.1.1"]["machine"]["note"]


@pytest.mark.parametrize(
    ("waiver", "message"),
    [
        ("[{indicator: A2.1.1}]", "waiver 1 (A2.1.1): missing keys ['approver', 'expires', 'justification']"),
        ("[{indicator: Z9.9.9, justification: j, approver: a, expires: 2027-01-01}]", "unknown indicator id"),
        (
            "[{indicator: A2.1.1, justification: j, approver: a, expires: soon}]",
            "expires: 'soon' is not a date",
        ),
        (
            "[{indicator: A2.1.1, justification: ' ', approver: a, expires: 2027-01-01}]",
            "justification must be",
        ),
        (
            "[{indicator: A2.1.1, justification: j, approver: a, expires: 2027-01-01, why: x}]",
            "unknown keys ['why']",
        ),
        ("{A2.1.1: x}", "waivers: expected a list"),
        (
            "[{indicator: A2.1.1, justification: j, approver: a, expires: 2027-01-01},"
            " {indicator: A2.1.1, justification: k, approver: b, expires: 2027-02-01}]",
            "waiver 2 (A2.1.1): a second waiver for A2.1.1",
        ),
    ],
)
def test_bad_waivers_are_refused_naming_the_file_and_entry(
    run: Path, capsys: pytest.CaptureFixture[str], waiver: str, message: str
) -> None:
    path = evaluator_file(run, f"verdicts: {{}}\nwaivers: {waiver}\n")
    assert main(["report", str(run), "--evaluator", str(path), "--out", str(run.parent / "x.html")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and message in err, err
    assert main(["score", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_the_evaluator_file_gives_grade_names_date_issuer_and_label(run: Path) -> None:
    passes = "\n".join(f"  {i.id}: {{status: pass, source: evaluator}}" for i in load_catalog().level("C"))
    text = WAIVER.format(date="2026-12-01", expires="2027-01-31").replace(
        "verdicts: {}", "verdicts:\n" + passes
    )
    doc = report(run, evaluator_file(run, text), lang="en")
    assert doc["summary"]["grade"] == "C" and doc["conclusion"]["target_met"] is True
    assert doc["report_date"] == "2026-12-01"
    assert doc["sign_off"] == {
        "community": "测试小区",
        "registered_entity": "某物业公司",
        "evaluation_body": "某评价中心",
        "evaluators": ["张三", "李四"],
        "issuer": "王五",
        "report_date": "2026-12-01",
        "date_from": "evaluator_file",
    }
    assert doc["label"] == {
        "topic": "Smart residential community safety",
        "grade": "C",
        "issuer": "某评价中心",
        "valid_from": "2026-12-01",
        "valid_until": "2031-11-30",
        "number": "ZA-2026-001",
    }
    assert doc["conclusion"]["opinion"][0].startswith("On the machine evidence and the evaluators' verdicts")
    cov = next(c for c in doc["coverage"] if c["level"] == "C")
    assert cov["waiting"]["indicators"] == 0 and cov["evaluator_decided"]["indicators"] == 51


def test_without_an_evaluator_file_the_report_is_the_machines_proposal(run: Path) -> None:
    doc = report(run, None, lang="en")
    assert doc["sign_off"]["date_from"] == "today" and doc["sign_off"]["evaluators"] == []
    assert doc["label"]["grade"] is None and doc["label"]["valid_from"] is None
    assert any("machine's proposal only" in p for p in doc["conclusion"]["opinion"])


def test_the_documented_example_evaluator_file(run: Path) -> None:
    example = Path(__file__).parent / "fixtures" / "report" / "evaluator.yaml"
    doc = report(run, example)
    assert {w["indicator"]: w["state"] for w in doc["waivers"]} == {"A2.3.4": "applied", "A2.1.1": "expired"}
    assert indicator(doc, "A3.2.5")["decided_by"] == "evaluator"
    summary = doc["summary"]
    assert summary["evaluator_file"] == "evaluator.yaml" and len(summary["evaluator_sha256"]) == 64
