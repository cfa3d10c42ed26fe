"""`zhian report --format oscal`: an OSCAL 1.2 assessment-results document that compliance-trestle's
models (generated from NIST's OSCAL JSON schema) accept, whose observations cite the ledger records
by their hashes, and whose findings carry each decided indicator's final status."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError
from trestle.oscal.assessment_results import Model

from tests.unit.fixtures.report.runs import write_run
from zhian.cli import main
from zhian.evidence.reader import LedgerReader


def oscal(run_dir: Path, out: Path, *extra: str) -> dict[str, object]:
    assert main(["report", str(run_dir), "--format", "oscal", "--out", str(out), *extra]) == 0
    doc: dict[str, object] = json.loads(out.read_text(encoding="utf-8"))
    return doc


def test_the_document_validates_and_cites_the_ledger(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    doc = oscal(run_dir, tmp_path / "ar.json")
    Model.model_validate(doc)  # raises on anything the OSCAL schema forbids

    ar = doc["assessment-results"]
    assert isinstance(ar, dict)
    result = ar["results"][0]
    resources = {r["uuid"]: r for r in ar["back-matter"]["resources"]}
    reader = LedgerReader(run_dir)
    hashes = {row.seq: row.hash for row in reader.rows()}
    reader.close()
    findings = [json.loads(line) for line in (run_dir / "findings.jsonl").read_text("utf-8").splitlines()]
    assert len(result["observations"]) == len(findings)
    cited = 0
    for observation in result["observations"]:
        for evidence in observation.get("relevant-evidence", []):
            resource = resources[evidence["href"].removeprefix("#")]
            link = resource["rlinks"][0]
            seq = int(link["href"].removeprefix("ledger.sqlite#record-"))
            assert link["hashes"] == [{"algorithm": "SHA-256", "value": hashes[seq]}]
            cited += 1
    assert cited == sum(len(f["evidence"]) for f in findings)

    states = {f["target"]["target-id"]: f["target"]["status"]["state"] for f in result["findings"]}
    assert states["A2.3.4"] == "not-satisfied"  # cam-gate keeps 12 days of 90
    observation_ids = {o["uuid"] for o in result["observations"]}
    for finding in result["findings"]:
        assert {r["observation-uuid"] for r in finding.get("related-observations", [])} <= observation_ids
    assert ar["import-ap"]["href"].removeprefix("#") in resources
    assert oscal(run_dir, tmp_path / "again.json") == doc  # the same run gives the same document


def test_the_validation_is_not_vacuous(tmp_path: Path) -> None:
    doc = oscal(write_run(tmp_path / "run"), tmp_path / "ar.json")
    ar = doc["assessment-results"]
    assert isinstance(ar, dict)
    ar["results"][0]["findings"][0]["target"]["status"]["state"] = "pending"
    with pytest.raises(ValidationError):
        Model.model_validate(doc)


def test_summary_has_no_oscal_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = write_run(tmp_path / "run")
    assert main(["report", str(run_dir), "--summary", "--format", "oscal"]) == 2
    assert "--summary has no --format oscal" in capsys.readouterr().err
