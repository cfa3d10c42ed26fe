"""The Markdown report of a small fixed run, against a golden file: any change to what a report says
shows up in review. Regenerate with ZHIAN_UPDATE_GOLDEN=1 after checking the diff is intended.

Hashes and the signing key differ on every run (record ids are random, each test makes a key), so
they are replaced by placeholders before the comparison; everything else is fixed.
"""

from __future__ import annotations

import os
import re
from datetime import date
from pathlib import Path

from zhian.report.write import write_report

from .fixtures.report.runs import write_run

FIXTURES = Path(__file__).parent / "fixtures" / "report"
GOLDEN = FIXTURES / "golden.zh.md"


def normalise(text: str) -> str:
    text = re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", text)
    text = re.sub(r"sha256:[0-9a-f]{32}", "sha256:<fingerprint>", text)
    text = re.sub(r"Ed25519 `[A-Za-z0-9+/=]+`", "Ed25519 `<public key>`", text)
    return re.sub(r"zhian \d+\.\d+\.\d+\S*", "zhian <version>", text)


def test_the_markdown_report_matches_the_golden_file(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", levels=("C",))
    path = write_report(
        run, "md", "zh", FIXTURES / "evaluator.yaml", tmp_path / "r.md", today=date(2026, 12, 1)
    )
    text = normalise(path.read_text(encoding="utf-8"))
    if os.environ.get("ZHIAN_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), "the report changed: see the module docstring"
