"""One language per report: every reason code a probe can emit has a phrase in both catalogues,
a Chinese report carries none of the probes' English sentences, and times are the site's, to the
second."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from zhian.report.messages import load_table, placeholders
from zhian.report.write import write_report

from .fixtures.report.runs import write_run

ROOT = Path(__file__).resolve().parents[2]
STATUSES = {"pass", "fail", "partial", "error", "not_assessed"}


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _strings(node.body) + _strings(node.orelse)
    return []


def emitted_reasons() -> set[str]:
    """Reason codes written in the probes and collectors: the literal after a status, a `reason=`
    keyword, a `reason = "..."` assignment, or a code passed to a *finding / *not_assessed helper."""
    codes: set[str] = set()
    for path in [*(ROOT / "probes").rglob("*.py"), *(ROOT / "collectors").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                for before, arg in zip(node.args, node.args[1:], strict=False):
                    if set(_strings(before)) & STATUSES or (
                        isinstance(before, ast.Name) and before.id == "status"
                    ):
                        codes.update(_strings(arg))
                codes.update(s for kw in node.keywords if kw.arg == "reason" for s in _strings(kw.value))
                func = node.func
                name = (
                    func.id
                    if isinstance(func, ast.Name)
                    else func.attr
                    if isinstance(func, ast.Attribute)
                    else ""
                )
                if name.endswith(("finding", "not_assessed")):
                    codes.update(
                        s for a in node.args for s in _strings(a) if re.fullmatch(r"[a-z][a-z_]+", s)
                    )
            elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "reason" for t in node.targets
            ):
                codes.update(_strings(node.value))
    return {c for c in codes if re.fullmatch(r"[a-z][a-z0-9_]*", c)} - STATUSES


def test_every_reason_code_has_a_phrase_in_both_languages() -> None:
    table = load_table()
    codes = emitted_reasons()
    assert len(codes) > 80  # the scan itself still finds what the probes write
    missing = sorted(c for c in codes if f"reason.{c}" not in table)
    assert not missing, f"add reason.<code> to both report.po catalogues: {missing}"


def test_catalogues_agree_on_placeholders() -> None:
    for key, texts in load_table().items():
        assert placeholders(texts["zh"]) == placeholders(texts["en"]), key
        assert texts["zh"] and texts["en"], key


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("i18n") / "run")


def test_a_chinese_report_speaks_chinese(run: Path) -> None:
    doc = json.loads(write_report(run, "json", "zh", None, run.parent / "r.json").read_text("utf-8"))
    html = write_report(run, "html", "zh", None, run.parent / "r.html").read_text("utf-8")
    recorded = [json.loads(line) for line in (run / "findings.jsonl").read_text("utf-8").splitlines()]
    body = html.split('id="a5"')[0]  # all but the raw evidence appendix
    for f in recorded:
        if re.search(r"[a-z]{3,} [a-z]{3,}", f["detail"]):  # a sentence, not a value ("TLSv1.3", "1.3 s")
            assert f["detail"] not in body, f["detail"]
        assert load_table()[f"reason.{f['reason']}"]["zh"] in html
    for f in doc["findings"]:
        assert not re.search(r"[A-Za-z]{4,} [a-z]{3,} [a-z]{3,}", f["detail"]), f["detail"]
    for ind in doc["indicators"]:
        if ind["machine"]:
            assert not re.search(r"\d (fail|pass|error)", ind["machine"]["note"] or ""), ind["machine"][
                "note"
            ]


def test_times_are_the_sites_to_the_second(run: Path) -> None:
    doc = json.loads(write_report(run, "json", "en", None, run.parent / "t.json").read_text("utf-8"))
    assert doc["overview"]["community"]["timezone"] == "Asia/Shanghai"
    assert doc["run"]["started_at"] == "2026-11-25T20:00:00+08:00"
    times = [f["started_at"] for f in doc["findings"]] + [
        e["started_at"] for e in doc["evidence"] if e["found"]
    ]
    assert times and all(t.endswith("+08:00") and "." not in t for t in times)
    html = write_report(run, "html", "en", None, run.parent / "t.html").read_text("utf-8")
    assert "2026-11-25 20:00:00+08:00" in html and "+00:00" not in html


def test_an_unknown_time_zone_is_a_config_error(tmp_path: Path) -> None:
    from zhian.configcheck import check_config
    from zhian.errors import UsageError

    config = tmp_path / "site.yaml"
    config.write_text("community: {name: t, timezone: Mars/Olympus}\ninventory: {}\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not an IANA time zone"):
        check_config(config)
