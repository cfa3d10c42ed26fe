"""The evidence ledger, the signed manifest and `zhian verify`: tampering of any kind is found and named."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zhian.cli import main
from zhian.errors import UsageError
from zhian.evidence.chain import GENESIS, LedgerError, sha256
from zhian.evidence.commits import GROUPED
from zhian.evidence.exchanges import ExchangeRecorder
from zhian.evidence.keys import PUBLIC_FILE, load_or_create
from zhian.evidence.ledger import open_ledger
from zhian.evidence.reader import LedgerReader
from zhian.evidence.storage import SqliteStorage
from zhian.evidence.trust import decide, trust_key
from zhian.evidence.verify import resealing, verify

from .evidence_helpers import SECRET, make_run


def rows(run_dir: Path) -> sqlite3.Connection:
    return sqlite3.connect(run_dir / "ledger.sqlite")


def test_a_sealed_run_verifies_and_keeps_every_record(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    result = verify(tmp_path / "run")
    assert result.ok, result.problems
    assert result.records == 7  # run_start, 5 exchanges, 1 finding
    reader = LedgerReader(tmp_path / "run")
    records = list(reader.records())
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    ex = records[2]
    assert ex.kind == "exchange" and ex.body["probe"] == "retention" and ex.body["device"] == "cam-01"
    assert ex.body["indicators"] == ["A2.3.4/retention/cam-01"]
    assert ex.body["method"] == {
        "protocol": "onvif",
        "operation": "GetRecordingSummary",
        "address": "127.0.0.1:8000",
    }
    assert ex.body["raw_sha256"] and (tmp_path / "run" / "artefacts" / ex.body["raw_sha256"]).is_file()
    assert reader.get(ex.id) == ex
    reader.close()
    assert not (tmp_path / "run" / "ledger.sqlite-wal").exists()  # one self-contained file


def test_many_records_are_read_by_id_at_once(tmp_path: Path) -> None:
    make_run(tmp_path / "run", n=600)  # more than one query's worth of ids (500 a query)
    reader = LedgerReader(tmp_path / "run")
    records = list(reader.records())
    wanted = [r.id for r in records[::-1]] + ["no-such-record"]
    assert reader.get_many(wanted) == {r.id: r for r in records}
    reader.close()


def test_secrets_never_reach_the_ledger(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    assert SECRET.encode() not in (tmp_path / "run" / "ledger.sqlite").read_bytes()


def test_an_edited_record_is_named(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    with rows(tmp_path / "run") as db:
        body = db.execute("SELECT body FROM records WHERE seq = 4").fetchone()[0]
        db.execute("UPDATE records SET body = ? WHERE seq = 4", (body.replace(b'"ok":true', b'"ok":false'),))
    result = verify(tmp_path / "run")
    assert not result.ok and result.records == 3 and result.broken
    assert result.problems[0].startswith("record 4 (exchange ")
    assert "probe retention, device cam-02" in result.problems[0]
    assert "does not match its hash" in result.problems[0]


def test_a_rehashed_record_still_breaks_the_chain(tmp_path: Path) -> None:
    """Rewriting a record and its own hash is not enough: the next record names the old hash."""
    make_run(tmp_path / "run")
    with rows(tmp_path / "run") as db:
        body = db.execute("SELECT body FROM records WHERE seq = 3").fetchone()[0]
        forged = body.replace(b"cam-01", b"cam-99")
        db.execute(
            "UPDATE records SET body = ?, hash = ?, device = 'cam-99' WHERE seq = 3",
            (forged, hashlib.sha256(forged).hexdigest()),
        )
    result = verify(tmp_path / "run")
    assert result.problems[0].startswith("record 4 ") and "chain broken" in result.problems[0]


def test_a_removed_record_is_named(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    with rows(tmp_path / "run") as db:
        db.execute("DELETE FROM records WHERE seq = 5")
    assert verify(tmp_path / "run").problems[0] == "record 5 is missing (next is 6)"


def test_an_edited_index_column_is_found(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    with rows(tmp_path / "run") as db:
        db.execute("UPDATE records SET device = 'cam-77' WHERE seq = 2")
    assert "index columns" in verify(tmp_path / "run").problems[0]


def test_an_altered_artefact_or_file_is_named(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    run = tmp_path / "run"
    artefact = next((run / "artefacts").iterdir())
    artefact.write_bytes(b"forged")
    (run / "verdicts.yaml").write_text("verdicts: {A1.1.1: pass}\n", encoding="utf-8")
    (run / "notes.txt").write_text("added later", encoding="utf-8")
    problems = verify(run).problems
    assert "its artefact artefacts/" in problems[0] and "was altered" in problems[0]
    assert f"artefacts/{artefact.name}: altered since it was sealed (sha256 differs)" in problems
    assert "verdicts.yaml: altered since it was sealed (sha256 differs)" in problems
    assert "notes.txt: not covered by the manifest (added after sealing)" in problems


def test_a_forged_signature_or_foreign_key_is_found(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    run = tmp_path / "run"
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    manifest["files"]["verdicts.yaml"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    assert "manifest.sig: the signature does not match manifest.json" in verify(run).problems

    make_run(tmp_path / "other", key_dir=tmp_path / "other-keys")
    result = verify(tmp_path / "other")
    assert result.ok and result.signer_raw is not None  # intact and validly signed: trust is separate
    mine = load_or_create(tmp_path / "keys").public_raw
    refused = decide(result.signer_raw, pinned=[mine], key_dir=tmp_path / "keys")
    assert not refused.trusted and "nor given with --trust" in refused.why
    assert decide(result.signer_raw, pinned=[result.signer_raw]).trusted
    assert not decide(result.signer_raw, key_dir=tmp_path / "keys").trusted
    assert decide(result.signer_raw, key_dir=tmp_path / "other-keys").why == "this machine's key"
    trust_key(tmp_path / "other-keys" / PUBLIC_FILE, tmp_path / "keys")
    assert decide(result.signer_raw, key_dir=tmp_path / "keys").why == "keyring"


def test_an_unsealed_run_says_so(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    (tmp_path / "run" / "manifest.json").unlink()
    result = verify(tmp_path / "run")
    assert result.records == 7 and result.unsealed and not result.ok
    assert result.listed() == ["manifest.json is missing: the run was not sealed (killed before its end?)"]


def test_the_key_lives_outside_the_run_and_only_its_owner_reads_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="outside the run directory"):
        load_or_create(tmp_path / "run" / "keys", not_inside=tmp_path / "run")
    key = load_or_create(tmp_path / "keys")
    assert stat.S_IMODE((tmp_path / "keys" / "ed25519.pem").stat().st_mode) == 0o600
    assert load_or_create(tmp_path / "keys").public_raw == key.public_raw  # created once, then reused
    assert (tmp_path / "keys" / PUBLIC_FILE).read_text(encoding="ascii").strip() == key.describe()[
        "public_key"
    ]


def test_a_newer_or_foreign_file_is_refused(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    with rows(tmp_path / "run") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(LedgerError, match="schema 99 is newer"):
        LedgerReader(tmp_path / "run")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "ledger.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError, match=r"junk/ledger\.sqlite"):
        LedgerReader(tmp_path / "junk")


# Appends until killed, argv[4] records a batch (1: no batch); says "ready" after argv[3] records;
# argv[2] "grouped" for the run's commits, "each" for the default.
WRITER = """
import sys
from contextlib import nullcontext
from pathlib import Path
from zhian.evidence.commits import EACH, GROUPED
from zhian.evidence.ledger import open_ledger
commits = GROUPED if sys.argv[2] == "grouped" else EACH
ledger = open_ledger(Path(sys.argv[1]), run_id="killed", commits=commits)
n, ready, size = 0, int(sys.argv[3]), int(sys.argv[4])
while True:
    with ledger.batch() if size > 1 else nullcontext():
        for _ in range(size):
            n += 1
            ledger.append("exchange", {"device": "cam", "probe": "p", "n": n, "pad": "x" * 2000})
    if n >= ready > 0:
        print("ready", flush=True)
        ready = 0
"""


def killed_writer(run: Path, mode: str, ready: int, batch: int = 1) -> None:
    """Starts the writer, lets it append `ready` records (and 10 of GROUPED's delays more in that
    mode, so that they are committed), kills it."""
    run.mkdir()
    writer = [sys.executable, "-c", WRITER, str(run), mode, str(ready), str(batch)]
    proc = subprocess.Popen(writer, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    time.sleep(10 * (GROUPED.after_s or 0) if mode == "grouped" else 0.2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def test_a_kill_at_any_moment_leaves_a_valid_chain(tmp_path: Path) -> None:
    killed_writer(tmp_path / "run", "each", 50)
    result = verify(tmp_path / "run")
    assert result.records >= 50 and not result.broken and result.unsealed


def test_verify_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_run(tmp_path / "run")
    assert main(["verify", str(tmp_path / "run")]) == 5  # sealed by a key this machine does not know
    out = capsys.readouterr().out
    assert "NOT trusted" in out and "an unknown key" in out
    mine = str(tmp_path / "keys" / PUBLIC_FILE)
    assert main(["verify", str(tmp_path / "run"), "--trust", mine]) == 0
    ring = str(tmp_path / "ring")
    assert main(["keys", "trust", mine, "--key-dir", ring]) == 0
    assert main(["keys", "list", "--key-dir", ring]) == 0
    assert "keyring" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "run"), "--key-dir", ring]) == 0
    assert "verified: chain, signature and every file hold" in capsys.readouterr().out
    (tmp_path / "run" / "verdicts.yaml").write_text("tampered\n", encoding="utf-8")
    assert main(["verify", str(tmp_path / "run"), "--key-dir", ring]) == 1
    out = capsys.readouterr().out
    assert "BROKEN: verdicts.yaml: altered since it was sealed" in out and "NOT verified" in out
    assert main(["verify", str(tmp_path / "nowhere")]) == 2
    make_run(tmp_path / "killed", key_dir=tmp_path / "keys")
    (tmp_path / "killed" / "manifest.json").unlink()
    assert main(["verify", str(tmp_path / "killed")]) == 4
    assert "7 records, chain valid, not sealed" in capsys.readouterr().out


def test_a_report_added_later_is_resealed_but_tampering_is_not(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    run, key = tmp_path / "run", load_or_create(tmp_path / "keys")
    (run / "run.json").write_text(json.dumps({"run_id": "r1"}), encoding="utf-8")
    (run / "reports").mkdir()
    first = (run / "manifest.json").read_bytes()
    with resealing(run, key):
        (run / "reports" / "report.zh.html").write_text("<html></html>", encoding="utf-8")
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert "reports/report.zh.html" in manifest["files"] and manifest["supersedes"] == sha256(first)
    assert verify(run).ok
    with resealing(run, key):  # the report written again: it was sealed, and is re-sealed
        (run / "reports" / "report.zh.html").write_text("<html>2</html>", encoding="utf-8")
    assert verify(run).ok
    (run / "verdicts.yaml").write_text("verdicts: {A1.1.1: pass}\n", encoding="utf-8")
    with pytest.raises(UsageError, match=r"will not re-seal.*verdicts\.yaml: altered"), resealing(run, key):
        pass


def test_artefacts_are_bounded_and_scrubbed(tmp_path: Path) -> None:
    from .evidence_helpers import exchange

    ledger = open_ledger(tmp_path, secrets=[SECRET], run_id="r", max_artefact_bytes=2048)
    recorder = ExchangeRecorder(ledger, "r", lambda probe, device: [])
    recorder(exchange(1, raw=SECRET.encode() + b"y" * 10_000))
    ledger.close()
    body = next(LedgerReader(tmp_path).records()).body
    kept = (tmp_path / "artefacts" / body["raw_sha256"]).read_bytes()
    assert SECRET.encode() not in kept and kept.startswith(b"[redacted]")
    assert len(kept) <= 2048 and body["raw_kept"] == 2048 and body["raw_size"] > 10_000


def test_a_new_ledger_appears_with_its_schema_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill while the ledger is created leaves no unversioned file for verify to call broken."""
    (tmp_path / "ledger.sqlite.new").write_bytes(b"left by a kill during an earlier creation")

    def killed(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(os, "replace", killed)
        with pytest.raises(KeyboardInterrupt):
            open_ledger(tmp_path, run_id="r")
    assert not (tmp_path / "ledger.sqlite").exists()
    ledger = open_ledger(tmp_path, run_id="r")
    ledger.append("run_start", {"run_id": "r"})
    ledger.close()
    assert not (tmp_path / "ledger.sqlite.new").exists()
    assert rows(tmp_path).execute("PRAGMA user_version").fetchone()[0] >= 1
    assert [r.kind for r in LedgerReader(tmp_path).records()] == ["run_start"]


def test_group_commit_killed_keeps_a_valid_chain_of_all_but_the_last_group(tmp_path: Path) -> None:
    killed_writer(tmp_path / "run", "grouped", 200)
    result = verify(tmp_path / "run")
    assert result.records >= 200 and not result.broken and result.unsealed


@pytest.mark.parametrize("mode", ["each", "grouped"])
def test_a_killed_writer_keeps_batches_whole(tmp_path: Path, mode: str) -> None:
    """In either mode a batch is committed whole or not at all: a kill never keeps part of one."""
    killed_writer(tmp_path / "run", mode, 300, batch=30)
    result = verify(tmp_path / "run")
    assert result.records >= 300 and not result.broken and result.unsealed
    assert result.records % 30 == 0


def test_a_group_is_committed_by_its_timer_without_a_flush(tmp_path: Path) -> None:
    """A lone record is committed by the tick (0.2 s; the bound is loose for a loaded machine)."""
    ledger = open_ledger(tmp_path, run_id="r", commits=GROUPED)
    with contextlib.closing(rows(tmp_path)) as db:
        assert db.execute("PRAGMA page_size").fetchone()[0] == GROUPED.page_bytes
    ledger.append("run_start", {"run_id": "r"})
    appended = time.monotonic()
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.sqlite")) as other:
        while not other.execute("SELECT count(*) FROM records").fetchone()[0]:
            assert time.monotonic() - appended < 30, "the group was never committed"
            time.sleep(0.01)
    ledger.close()


def test_a_batch_in_a_group_is_never_split_and_dropped_alone(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path, run_id="r", commits=GROUPED)
    other = sqlite3.connect(tmp_path / "ledger.sqlite")
    committed = lambda: other.execute("SELECT count(*) FROM records").fetchone()[0]  # noqa: E731
    ledger.append("run_start", {"run_id": "r"})
    with ledger.batch():
        for n in range(200):  # past a group's size
            ledger.append("exchange", {"n": n})
        time.sleep(5 * (GROUPED.after_s or 0))  # ticks pass: none commits inside the batch
        assert committed() <= 1
    ledger.append("exchange", {"n": "held"})  # in the group, not committed yet
    with pytest.raises(OSError), ledger.batch():
        ledger.append("exchange", {"n": "dropped"})
        with ledger.batch():  # nested: part of the outer one
            ledger.append("exchange", {"n": "dropped too"})
        raise OSError("disk full")
    ledger.append("run_end", {"run_id": "r"})
    ledger.flush()
    assert committed() == 203
    other.close()
    ledger.close()
    result = verify(tmp_path)
    assert result.records == 203 and not result.broken
    kept = [r.body.get("n") for r in LedgerReader(tmp_path).records()]
    assert kept[-2:] == ["held", None] and "dropped" not in kept and ledger.counts["exchange"] == 201


def test_a_failed_group_commit_loses_the_group_not_the_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = SqliteStorage.commit_held

    def disk_full(self: SqliteStorage) -> None:  # as SQLite does on SQLITE_FULL: rolled back
        self._db.execute("ROLLBACK")
        raise sqlite3.OperationalError("database or disk is full")

    ledger = open_ledger(tmp_path, run_id="r", commits=GROUPED)
    ledger.append("run_start", {"run_id": "r"})
    ledger.flush()
    monkeypatch.setattr(SqliteStorage, "commit_held", disk_full)
    ledger.append("exchange", {"n": 1})
    with pytest.raises(sqlite3.OperationalError):
        ledger.flush()  # raised where the run writes: it stops there
    ledger.append("exchange", {"n": 2})
    deadline = time.monotonic() + 30
    with pytest.raises(sqlite3.OperationalError):  # the commit thread's failure, raised by the next write
        while time.monotonic() < deadline:
            ledger.append("exchange", {"n": 3})
            time.sleep((GROUPED.after_s or 0) / 4)
    monkeypatch.setattr(SqliteStorage, "commit_held", real)
    ledger.append("run_end", {"run_id": "r"})
    ledger.close()
    result = verify(tmp_path)
    assert result.records == 2 and not result.broken and result.unsealed  # run_start, run_end
