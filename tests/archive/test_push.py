"""push and verify against a real PostgreSQL: stored once, refused runs leave nothing, and a stored
run re-verifies from the database alone, naming what was altered there."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.archive.helpers import archive, sealed_run, trusted
from zhian.archive import blobs, db
from zhian.evidence.chain import sha256
from zhian.evidence.keys import load_or_create
from zhian.evidence.manifest import seal
from zhian.evidence.reader import LedgerReader

EDIT_RECORD_3 = (
    "UPDATE records SET body = convert_to(replace(convert_from(body, 'UTF8'), %s, %s), 'UTF8') WHERE seq = 3"
)
TABLES = ("communities", "runs", "records", "findings", "verdicts", "run_files", "blobs", "blob_parts")


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        return {t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in TABLES}  # type: ignore[index]


def test_push_stores_once_and_verifies_from_the_database(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = sealed_run(tmp_path, "run")
    assert archive("push", str(run_dir), "--db", db_url, *trusted(tmp_path)) == 0
    assert "stored as #1" in capsys.readouterr().out
    first = counts(db_url)
    reader = LedgerReader(run_dir)
    assert first["records"] == sum(1 for _ in reader.rows())
    reader.close()
    sealed = json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    assert first["run_files"] == len(sealed["files"])
    assert first["verdicts"] > 0 and first["findings"] == 10

    assert archive("push", str(run_dir), "--db", db_url, *trusted(tmp_path)) == 0
    assert "already archived as #1" in capsys.readouterr().out
    assert counts(db_url) == first

    assert archive("verify", "1", "--db", db_url) == 0
    out = capsys.readouterr().out
    assert f"ledger records {first['records']}" in out and "verified from the database" in out
    assert archive("verify", "r1", "--db", db_url) == 0  # by run id too


def test_untrusted_or_broken_runs_are_refused_and_nothing_is_written(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = sealed_run(tmp_path, "run")
    other = load_or_create(tmp_path / "other-keys")
    assert archive("push", str(run_dir), "--db", db_url, "--key-dir", str(tmp_path / "other-keys")) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "not a trusted key" in out and "nothing was written" in out
    assert set(counts(db_url).values()) == {0}

    (run_dir / "verdicts.yaml").write_text("verdicts: {}\n", encoding="utf-8")  # altered after sealing
    assert archive("push", str(run_dir), "--db", db_url, *trusted(tmp_path)) == 1
    assert "verdicts.yaml: altered since it was sealed" in capsys.readouterr().out
    assert set(counts(db_url).values()) == {0}

    # a run re-sealed by an untrusted key is refused even though it verifies
    seal(run_dir, other, json.loads((run_dir / "run.json").read_text(encoding="utf-8")))
    assert archive("push", str(run_dir), "--db", db_url, *trusted(tmp_path)) == 1
    assert "not a trusted key" in capsys.readouterr().out
    assert set(counts(db_url).values()) == {0}


def test_archive_verify_names_what_was_altered_in_the_database(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = sealed_run(tmp_path, "run")
    assert archive("push", str(run_dir), "--db", db_url, *trusted(tmp_path)) == 0
    capsys.readouterr()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(EDIT_RECORD_3, ("cam-gate", "cam-gat3"))
    assert archive("verify", "1", "--db", db_url) == 1
    out = capsys.readouterr().out
    assert "BROKEN: record 3 (finding" in out and "does not match its hash" in out
    assert "the chain holds up to record 2" in out

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(EDIT_RECORD_3, ("cam-gat3", "cam-gate"))
        conn.execute("UPDATE blobs SET data = 'x'::bytea WHERE sha256 = (SELECT sha256 FROM run_files"
                     " WHERE path = 'score.json')")  # fmt: skip
    assert archive("verify", "1", "--db", db_url) == 1
    assert "score.json: its stored bytes are missing or altered" in capsys.readouterr().out

    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE runs SET manifest = manifest || ' '::bytea")
    assert archive("verify", "1", "--db", db_url) == 1
    assert "the signature does not match the stored manifest" in capsys.readouterr().out


def test_large_artefacts_live_outside_the_row_and_are_stored_once(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(blobs, "LARGE", 64)  # the fixture's MQTT artefact is larger than that
    monkeypatch.setattr(blobs, "CHUNK", 100)  # several chunks each way
    first, second = sealed_run(tmp_path, "a"), sealed_run(tmp_path, "b", run_id="r2")
    assert archive("push", str(first), str(second), "--db", db_url, *trusted(tmp_path)) == 0
    with psycopg.connect(db_url) as conn:
        large = conn.execute(
            "SELECT count(*), sum(ceil(size / 100.0)) FROM blobs WHERE data IS NULL"
        ).fetchone()
        parts = conn.execute("SELECT count(*), max(length(data)) FROM blob_parts").fetchone()
        shared = conn.execute(
            "SELECT count(*) FROM (SELECT sha256 FROM run_files GROUP BY sha256 HAVING count(*) = 2) s"
        ).fetchone()
    assert large and large[0] > 0 and parts  # outside the row, in parts of CHUNK bytes
    assert parts[0] == large[1] and parts[1] <= 100
    assert shared and shared[0] > 0  # the same artefacts and ledger-independent files, stored once
    assert archive("verify", "2", "--db", db_url) == 0
    assert "verified from the database" in capsys.readouterr().out


def test_a_bad_database_url_is_one_line_without_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = sealed_run(tmp_path, "run")
    url = "postgresql://someone:hunter22@127.0.0.1:1/nothing"
    assert archive("push", str(run_dir), "--db", url) == 2
    err = capsys.readouterr().err
    assert err.startswith("zhian: error: ") and "cannot connect" in err and "hunter22" not in err
    assert len(err.strip().splitlines()) == 1


def test_the_migration_moves_large_objects_into_parts(db_url: str) -> None:
    """An archive pushed before migration 0003 kept large files as large objects: moved, not lost."""
    data = bytes(range(256)) * 5000  # two parts of 1 MiB
    with db.connect(db_url) as conn:
        conn.execute(
            "CREATE TABLE zhian_schema (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for version, name, sql in db.migrations()[:2]:
            conn.execute(sql.encode())
            conn.execute("INSERT INTO zhian_schema (version, name) VALUES (%s, %s)", (version, name))
        conn.execute(
            "INSERT INTO blobs (sha256, size, large_object) VALUES (%s, %s, lo_from_bytea(0, %s))",
            (sha256(data), len(data), data),
        )
        assert db.migrate(conn) == db.latest_version()
        assert b"".join(blobs.chunks(conn, sha256(data))) == data
        left = conn.execute("SELECT count(*) FROM pg_largeobject_metadata").fetchone()
        parts = conn.execute("SELECT count(*) FROM blob_parts").fetchone()
    assert left and left[0] == 0 and parts and parts[0] == 2
