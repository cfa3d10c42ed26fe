"""list, show and prune against a real PostgreSQL: the label's validity and re-checks (4.10), what has
degraded since the graded run, the open problems, and six years kept before anything is deleted (4.9)."""

from __future__ import annotations

import json
from datetime import date

import psycopg
import pytest

from scorer.validity import anniversary
from tests.archive.helpers import archive


def test_list_gives_validity_recheck_and_degradation(
    two_communities: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert archive("list", "--db", two_communities, "--format", "json", "--as-of", "2027-06-01") == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["communities"]}
    graded = rows["测试小区"]
    assert graded["runs"] == 2 and graded["latest_run_id"] == "r2"
    label = graded["label"]
    assert label["grade"] == "C" and label["graded_by"] == "evaluator" and label["run_id"] == "r1"
    assert (label["awarded_on"], label["valid_until"]) == ("2026-12-01", "2031-11-30")
    assert label["next_recheck"] == "2027-12-01" and label["recheck_overdue"] is None
    assert graded["degraded"] == 1  # C4.3.3: the evaluator passed it, the later run's machine fails it
    assert rows["另一小区"]["label"] is None and rows["另一小区"]["degraded"] == 0

    assert archive("list", "--db", two_communities, "--as-of", "2028-01-05") == 0
    out = capsys.readouterr().out
    assert "next re-check 2028-12-01; re-check OVERDUE since 2027-12-01" in out
    assert "1 indicators DEGRADED since the graded run" in out
    assert archive("list", "--db", two_communities, "--as-of", "2031-12-01") == 0
    assert "label EXPIRED 2031-11-30" in capsys.readouterr().out


def test_show_gives_runs_history_problems_and_what_degraded(
    two_communities: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert archive("show", "测试小区", "--db", two_communities, "--format", "json") == 0
    detail = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in detail["runs"]] == ["r2", "r1"]
    assert [(r["awarded_on"], r["grade"]) for r in detail["grade_history"]] == [("2026-12-01", "C")]
    assert detail["degraded"] == [{"indicator": "C4.3.3", "before": "pass", "now": "fail", "since": None}]
    problems = {p["indicator"]: p for p in detail["problems"]}
    assert problems["A2.3.4"]["devices"] == ["cam-gate"] and problems["A2.3.4"]["reasons"] == [
        "retention_short"
    ]
    assert problems["C4.3.3"]["devices"] == ["smoke-01"]
    assert archive("show", "nowhere", "--db", two_communities) == 2
    assert "no community 'nowhere'" in capsys.readouterr().err


def _age(db_url: str, run_id: str, years: int) -> None:
    sealed = anniversary(date.today(), -years)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE runs SET sealed_at = %s WHERE run_id = %s", (sealed, run_id))


def test_prune_keeps_six_years_and_dry_run_deletes_nothing(
    two_communities: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _age(two_communities, "r1", 7)
    _age(two_communities, "r3", 5)
    limit = anniversary(date.today(), -6)
    capsys.readouterr()

    too_recent = anniversary(date.today(), -5).isoformat()
    assert archive("prune", "--db", two_communities, "--before", too_recent) == 2
    assert "refused" in capsys.readouterr().err
    assert archive("prune", "--db", two_communities, "--before", limit.isoformat(), "--dry-run") == 0
    out = capsys.readouterr().out
    assert "would delete #1 测试小区 r1" in out and "would delete 1 runs" in out
    with psycopg.connect(two_communities) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (3,)

    assert archive("prune", "--db", two_communities, "--before", limit.isoformat()) == 0
    assert "deleted 1 runs" in capsys.readouterr().out
    with psycopg.connect(two_communities) as conn:
        assert [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY id")] == ["r2", "r3"]
        orphans = conn.execute(
            "SELECT count(*) FROM blobs b"
            " WHERE NOT EXISTS (SELECT 1 FROM run_files f WHERE f.sha256 = b.sha256)"
        ).fetchone()
        assert orphans == (0,)
    for run in ("2", "3"):  # what is left still verifies: shared files were kept
        assert archive("verify", run, "--db", two_communities) == 0
