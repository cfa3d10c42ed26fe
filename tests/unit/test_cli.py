"""The command line: outputs in their documented shapes, bad input in one line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhian.cli import main

ROOT = Path(__file__).resolve().parents[2]
CATALOG_FIELDS = [
    "id", "level", "first_level", "second_level", "kind", "points",
    "printed_label", "text_zh", "text_en", "text_lost", "note",
]  # fmt: skip


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_catalog_json_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--level", "B", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 68
    assert all(list(r) == CATALOG_FIELDS for r in rows)
    assert all(set(r["first_level"]) == {"id", "name", "name_en", "points"} for r in rows)
    b431 = next(r for r in rows if r["id"] == "B4.3.4")
    assert b431["printed_label"] == "A4.3.4" and b431["second_level"] == {
        "id": "B4.3",
        "name": "访客控制",
        "name_en": b431["second_level"]["name_en"],
        "points": 4,
    }


def test_catalog_table_shows_both_languages(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--level", "A")
    assert code == 0
    assert "A2.3.4" in out and "不少于 30d" in out and "at least 90 days" in out
    assert "(printed A1.4.2)" in out


def test_catalog_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "catalog", "--format", "yaml")
    assert code == 0 and out.count("- id: ") == 209


def test_score_example_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "score", str(ROOT / "examples" / "verdicts.example.yaml"), "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["schema"] == "zhian.score/1" and doc["grade"] == "B"
    assert doc["eligibility"]["A"] == {"eligible": False, "reasons": ["A5.1.2 failed"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("verdicts: {Z1.1.1: {status: pass}}", "entry Z1.1.1: unknown indicator id"),
        ("verdicts: {C1.2.1: {status: good}}", "entry C1.2.1: status 'good'"),
        ("verdicts: {C1.2.1: {status: partial, ratio: 2}}", "entry C1.2.1: ratio 2 is outside [0, 1]"),
        ("verdicts: [1, 2]", "expected a mapping with a 'verdicts' mapping"),
        ("verdicts: {C1.2.1: {status: pass}\n", "not valid YAML"),
        ("scores: {}", "unknown top-level keys ['scores']"),
    ],
)
def test_score_errors_are_one_line_naming_file_and_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    path = tmp_path / "v.yaml"
    path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "score", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(path) in err and message in err


def test_score_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "score", str(tmp_path / "nope.yaml"))
    assert code == 2 and "nope.yaml: no such file" in err


def test_score_threshold_modes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["verdicts:"]
    from mapping.catalog import load_catalog

    failing = {"C3.2.2", "C3.3.1", "C3.3.2", "C3.4.1", "C3.4.2"}  # 20 points
    for ind in load_catalog().level("C"):
        lines.append(f"  {ind.id}: {{status: {'fail' if ind.id in failing else 'pass'}}}")
    path = tmp_path / "eighty.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    _, out, _ = run(capsys, "score", str(path), "--format", "json")
    gt = json.loads(out)["levels"]["C"]
    _, out, _ = run(capsys, "score", str(path), "--format", "json", "--threshold", "ge")
    ge = json.loads(out)["levels"]["C"]
    assert (gt["total"], gt["passed"], gt["exactly_80"]) == (80, False, True)
    assert (ge["total"], ge["passed"], ge["exactly_80"]) == (80, True, True)
    _, out, _ = run(capsys, "score", str(path))
    assert "exactly 80" in out


def test_sample_json_with_items(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "doors.txt"
    items.write_text("\n".join(f"door-{i}" for i in range(101)) + "\n", encoding="utf-8")
    code, out, _ = run(capsys, "sample", "--items", str(items), "--seed", "3", "--format", "json")
    doc = json.loads(out)
    assert code == 0
    assert (doc["population"], doc["ratio"], doc["size"], doc["seed"]) == (101, 0.2, 21, 3)
    assert len(doc["items"]) == 21 and "7.4 b)" in doc["rule"]


def test_sample_population_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sample", "--population", "100")
    assert code == 0 and "at least 30" in out and "stricter neighbour" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample"], "give --population N or --items FILE"),
        (["sample", "--population", "0"], "population must be at least 1"),
        (["sample", "--items", "/nonexistent/x.txt"], "/nonexistent/x.txt"),
    ],
)
def test_sample_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err
