"""`zhian report`: every format renders in both languages from a run directory written by the real
writers, its numbers are the run's score.json, and bad run directories fail in one line naming the file."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from mapping.catalog import load_catalog
from zhian.cli import main
from zhian.errors import UsageError
from zhian.evidence.verify import verify
from zhian.report.build import build_report, failed_targets
from zhian.report.html import render_html
from zhian.report.model import Report
from zhian.report.remediation import load_remedies
from zhian.report.rundir import FindingIn
from zhian.report.write import EXTENSIONS, Format, write_chunks, write_report

from .fixtures.report.runs import write_run

FIXTURES = Path(__file__).parent / "fixtures" / "report"

FORMATS: tuple[Format, ...] = ("html", "md", "json", "junit")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("report") / "run")


def report_json(run: Path, **kwargs: Any) -> dict[str, Any]:
    out = run.parent / f"r{len(list(run.parent.glob('r*.json')))}.json"
    path = write_report(run, "json", kwargs.pop("lang", "zh"), kwargs.pop("evaluator", None), out, **kwargs)
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_format_renders_by_default_into_the_run_directory(run: Path, fmt: Format, lang: str) -> None:
    path = write_report(run, fmt, "zh" if lang == "zh" else "en", None, None)
    assert path == run / "reports" / f"report.{lang}.{EXTENSIONS[fmt]}"
    text = path.read_text(encoding="utf-8")
    assert "测试小区" in text and "A2.3.4" in text


def test_the_numbers_are_the_runs_score_json(run: Path) -> None:
    recorded = json.loads((run / "score.json").read_text(encoding="utf-8"))
    doc = report_json(run)
    summary = doc["summary"]
    assert summary["machine_score_matches_run"] is True
    assert summary["grade"] == recorded["grade"] == summary["machine_grade"]
    for level in summary["levels"]:
        want = recorded["levels"][level["level"]]
        assert level["total"] == want["total"] == level["machine_total"]
        assert (level["max"], level["passed"], level["exactly_80"]) == (
            want["max"],
            want["passed"],
            want["exactly_80"],
        )
        assert level["basic_failed"] == want["basic_failed"] and level["gated"] == want["gated"]
        assert {f["id"]: f["total"] for f in level["first_levels"]} == {
            k: v["total"] for k, v in want["first_levels"].items()
        }
    for row in doc["indicators"]:
        want = recorded["levels"][row["level"]]["indicators"][row["id"]]
        assert (row["awarded"], row["gated"], row["open"]) == (want["awarded"], want["gated"], want["open"])
        assert row["final_status"] == want["status"]
    assert {e["grade"]: e["eligible"] for e in summary["eligibility"]} == {
        g: e["eligible"] for g, e in recorded["eligibility"].items()
    }


def test_a_changed_score_json_is_flagged_not_trusted(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    recorded = json.loads((run / "score.json").read_text(encoding="utf-8"))
    recorded["levels"]["A"]["total"] = 99
    (run / "score.json").write_text(json.dumps(recorded), encoding="utf-8")
    doc = report_json(run)
    assert doc["summary"]["machine_score_matches_run"] is False
    assert doc["summary"]["levels"][0]["total"] == 0 and doc["summary"]["levels"][0]["machine_total"] == 99
    html = write_report(run, "html", "en", None, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "differ from the run&#x27;s score.json" in html


def test_json_follows_its_documented_schema(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = report_json(run)
    assert doc["schema"] == "zhian.report/1"
    assert Report.model_validate(doc).as_dict() == doc
    assert main(["report", "--schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "Report" and set(schema["required"]) >= {
        "run",
        "summary",
        "indicators",
        "evidence",
    }
    assert "description" in schema["$defs"]["Coverage"]["properties"]["waiting"]


def test_coverage_counts_what_machine_evidence_decided(run: Path) -> None:
    doc = report_json(run)
    for cov in doc["coverage"]:
        rows = [r for r in doc["indicators"] if r["level"] == cov["level"]]
        machine = [r for r in rows if r["decided_by"] == "machine"]
        assert cov["total"]["indicators"] == len(rows) and cov["total"]["points"] == 100
        assert cov["machine_decided"]["indicators"] == len(machine)
        assert cov["machine_decided"]["points"] == sum(r["points"] or 0 for r in machine)
        parts = ("waiting_evaluator_only", "waiting_supported", "waiting_undecided")
        assert sum(cov[p]["indicators"] for p in parts) == cov["waiting"]["indicators"]
        assert cov["machine_decided"]["indicators"] + cov["waiting"]["indicators"] == len(rows)
    a234 = next(r for r in doc["indicators"] if r["id"] == "A2.3.4")
    assert a234["decided_by"] == "machine" and a234["role"] == "decides"
    a311 = next(r for r in doc["indicators"] if r["id"] == "A3.1.1")
    assert a311["role"] == "evaluator_only" and "GB 50045" in a311["role_note"]


def test_problems_name_indicator_device_evidence_and_fix(run: Path) -> None:
    doc = report_json(run, lang="en")
    problem = next(p for p in doc["problems"]["items"] if p["indicator"] == "A2.3.4")
    (item,) = problem["findings"]
    assert (item["device"], item["reason"]) == ("cam-gate", "retention_short")
    assert item["remediation"] == load_remedies().reasons["retention_short"]["en"]
    evidence = {e["id"]: e for e in doc["evidence"]}
    assert item["evidence"] and all(evidence[i]["found"] and evidence[i]["hash"] for i in item["evidence"])
    doors = next(p for p in doc["problems"]["items"] if p["indicator"] == "A3.2.5")
    assert {f["remediation"] for f in doors["findings"]} >= {
        load_remedies().reasons["fire_linkage_doors.effect_missing"]["en"]
    }
    assert [u["device"] for u in doc["problems"]["unread"]] == ["cam-dead"]
    assert load_remedies().text("some_probe", "never_heard_of", "zh") == load_remedies().generic["zh"]


def test_languages(run: Path) -> None:
    zh = write_report(run, "html", "zh", None, run.parent / "zh.html").read_text(encoding="utf-8")
    en = write_report(run, "html", "en", None, run.parent / "en.html").read_text(encoding="utf-8")
    a234 = load_catalog().get("A2.3.4")
    assert '<html lang="zh-CN">' in zh and "一、智慧住区安全建设概况" in zh and "三、需要改善的问题" in zh
    assert a234.text_zh in zh and a234.text_en not in zh
    assert '<html lang="en">' in en and "3. Problems to improve" in en and a234.text_en in en
    assert "需要改善的问题" not in en and a234.text_zh not in en


def test_html_is_one_self_contained_page(run: Path) -> None:
    html = write_report(run, "html", "zh", None, run.parent / "page.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("<html") == 1 and html.count("<body") == 1
    assert html.count('<meta charset="utf-8">') == 1
    assert "<script" not in html and "<link" not in html and "<img" not in html
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html) and "url(" not in html
    ids = re.findall(r' id="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    targets = set(re.findall(r'href="#([^"]+)"', html))
    assert targets <= set(ids), targets - set(ids)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_written_as_it_renders_is_the_whole_report_rendered(run: Path, lang: str) -> None:
    """The run writes its page piece by piece, findings and ledger records read as they are shown:
    the same bytes as the whole report model rendered at once (what --format json holds)."""
    written = write_report(run, "html", "zh" if lang == "zh" else "en", None, run.parent / f"s.{lang}.html")
    whole = render_html(build_report(run, "zh" if lang == "zh" else "en", None))
    assert written.read_bytes().decode("utf-8") == whole
    assert 'id="f-1"' in whole and 'id="ex-' in whole


def test_a_page_stopped_halfway_leaves_the_previous_one_and_no_temporary_file(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text("the whole previous page", encoding="utf-8")

    def pieces() -> Any:
        yield "<!DOCTYPE html>"
        raise KeyboardInterrupt  # a signal while the findings are written out

    with pytest.raises(KeyboardInterrupt):
        write_chunks(pieces(), page)
    assert page.read_text(encoding="utf-8") == "the whole previous page"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]


def test_junit_has_one_testcase_per_indicator(run: Path) -> None:
    path = write_report(run, "junit", "en", None, run.parent / "junit.xml")
    root = ET.parse(path).getroot()
    catalog = load_catalog()
    assert root.tag == "testsuites" and [s.get("name") for s in root] == ["Level A", "Level B", "Level C"]
    cases = root.findall("testsuite/testcase")
    assert len(cases) == len(catalog) and int(root.get("tests", "0")) == len(catalog)
    assert len({c.get("name", "").split()[0] for c in cases}) == len(catalog)
    by_id = {c.get("name", "").split()[0]: c for c in cases}
    failure = by_id["A3.2.5"].find("failure")
    assert failure is not None and failure.get("type") == "fail" and by_id["A3.2.5"].find("skipped") is None
    assert "ledger record #" in (by_id["A3.2.5"].findtext("system-out") or "")
    assert by_id["A2.1.1"].find("failure") is not None  # the failed basic requirement itself
    assert by_id["A3.1.1"].find("skipped") is not None  # the evaluator's to judge
    gated = by_id["A2.3.4"].find("skipped")  # A2.1.1 failed: A2's scored items are not evaluated (6.2)
    assert gated is not None and "6.2" in gated.get("message", "") and "fail" in gated.get("message", "")
    suite = root.find("testsuite")
    assert suite is not None
    assert int(suite.get("failures", "0")) == len(suite.findall("testcase/failure"))
    assert int(suite.get("skipped", "0")) == len(suite.findall("testcase/skipped"))


def test_cli_prints_the_path_and_honours_out(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = run.parent / "elsewhere" / "r.md"
    sealed = (run / "manifest.json").read_bytes()
    assert main(["report", str(run), "--format", "md", "--lang", "en", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out) and out.read_text(encoding="utf-8").startswith("# ")
    assert (run / "manifest.json").read_bytes() == sealed  # a report written elsewhere leaves the seal alone
    assert main(["report", str(run), "--format", "json", "--out", "-"]) == 0
    assert json.loads(capsys.readouterr().out)["run"]["run_id"]  # `-` is stdout, not a file named -
    assert main(["report", str(run), "--lang", "en"]) == 0  # no --out: stdout as well
    assert capsys.readouterr().out.startswith("<!DOCTYPE html>")
    assert not Path("-").exists() and (run / "manifest.json").read_bytes() == sealed
    assert main(["report", str(run), "--out", str(run / "reports" / "x.html")]) == 2
    assert "add it to the run with --into-run" in capsys.readouterr().err
    assert main(["report", str(run), "--into-run", "--key-dir", str(run.parent / "keys")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == str(run / "reports" / "report.zh.html")
    assert printed[1].startswith(f"re-sealed: {run / 'manifest.json'} signed by sha256:")
    assert "reports/report.zh.html" in json.loads((run / "manifest.json").read_text("utf-8"))["files"]
    assert verify(run).ok  # a report written into the run is sealed with it


def test_an_evaluator_file_is_kept_with_the_sealed_report(run: Path) -> None:
    evaluator = FIXTURES / "evaluator.yaml"
    keys = str(run.parent / "keys")
    assert (
        main(
            [
                "report",
                str(run),
                "--evaluator",
                str(evaluator),
                "--format",
                "json",
                "--into-run",
                "--key-dir",
                keys,
            ]
        )
        == 0
    )
    kept = list((run / "evaluator").iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == evaluator.read_bytes()
    assert kept[0].name.startswith("evaluator.") and verify(run).ok


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda run: (run / "run.json").unlink(), "run.json: no such file"),
        (lambda run: (run / "run.json").write_text("{", "utf-8"), "run.json: line 1: not valid JSON"),
        (
            lambda run: (run / "run.json").write_text('{"run_id": "r"}', "utf-8"),
            "run.json: community: Field required",
        ),
        (lambda run: (run / "score.json").write_text("[]", "utf-8"), "score.json: expected a JSON object"),
        (lambda run: (run / "findings.jsonl").unlink(), "findings.jsonl: no such file"),
        (
            lambda run: (run / "findings.jsonl").write_text('{"probe": "p"}\n', "utf-8"),
            "findings.jsonl: line 1: device: Field required",
        ),
        (lambda run: (run / "verdicts.yaml").unlink(), "verdicts.yaml: no such file"),
        (
            lambda run: (run / "verdicts.yaml").write_text("verdicts: [", "utf-8"),
            "verdicts.yaml: line 1 not valid YAML",
        ),
        (lambda run: (run / "ledger.sqlite").unlink(), "ledger.sqlite: no ledger here"),
        (
            lambda run: (run / "ledger.sqlite").write_bytes(b"not sqlite" * 200),
            "ledger.sqlite: not a readable ledger",
        ),
    ],
)
def test_a_damaged_run_directory_is_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, message: str
) -> None:
    run = write_run(tmp_path / "run")
    damage(run)
    assert main(["report", str(run), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert (
        main(["report", str(run), "--into-run", "--key-dir", str(tmp_path / "keys")]) == 2
    )  # the seal stops it
    assert "will not re-seal a run that does not verify" in capsys.readouterr().err
    with pytest.raises(UsageError):
        write_report(run, "json", "zh", None, None)


def test_not_a_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "nope: not a run directory" in capsys.readouterr().err
    assert main(["report"]) == 2
    assert "give RUN_DIR" in capsys.readouterr().err


def test_the_one_screen_summary_agrees_with_the_report(run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = report_json(run, lang="en")
    sealed = (run / "manifest.json").read_bytes()
    assert main(["report", str(run), "--summary", "--lang", "en"]) == 0
    screen = capsys.readouterr().out
    assert (run / "manifest.json").read_bytes() == sealed  # writes nothing
    lines = screen.splitlines()
    assert len(lines) <= 40
    for level in doc["summary"]["levels"]:
        assert f"Level {level['level']}  {level['total']:>6g} / {level['max']:g}" in screen
    fixes = doc["problems"]["fixes"]
    assert f"Problems to fix: {len(fixes)} (touching " in screen
    for fix in fixes:
        assert any(line.strip().startswith(f"{fix['rank']}. ") and fix["fix_on"] in line for line in lines), (
            fix
        )
    failing = {p["indicator"] for p in doc["problems"]["items"]}
    assert failing <= {i for fix in fixes for i in fix["indicators"]} | {
        p["indicator"] for p in doc["problems"]["items"] if not p["findings"]
    }
    machine = sum(c["machine_decided"]["indicators"] for c in doc["coverage"])
    assert f"Machine evidence decided {machine} indicators" in screen


def test_a_linkage_that_could_not_watch_a_camera_blames_the_camera_not_the_panel() -> None:
    target = {"effect": "video", "target": "cam-9", "status": "error", "error": "unreachable"}
    ok = {"effect": "doors", "target": "door-1", "status": "on_time"}
    fire = FindingIn(
        probe="fire_linkage_video",
        device="panel-1",
        status="error",
        facts={"zones": [{"zone": 1, "targets": {"door-1": ok}}, {"zone": 2, "targets": {"cam-9": target}}]},
    )
    intrusion = FindingIn(
        probe="intrusion_linkage_video", device="cam-1", status="error", facts={"targets": {"cam-2": target}}
    )
    assert failed_targets(fire) == ["cam-9"]
    assert failed_targets(intrusion) == ["cam-9"]  # the target's own name wins over the key
    assert failed_targets(FindingIn(probe="retention", device="cam-3", status="error")) == []
