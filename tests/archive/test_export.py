"""`zhian archive export`: the evidence pack rebuilt from the database alone, its files byte for byte
those pushed, accepted by `zhian verify`; and a read-only role, not the one that pushed, reading it all."""

from __future__ import annotations

import asyncio
import itertools
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psycopg
import pytest
from aiohttp import web

from tests.archive.helpers import archive, sealed_run, trusted
from tests.archive.test_segments import monitor_state
from tests.postgres import Cluster
from zhian.archive import blobs
from zhian.archive.web import build_app
from zhian.cli import main
from zhian.evidence.segments import segment_dirs

_ROLES = itertools.count(1)


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def unpacked(pack: Path, into: Path) -> Path:
    with zipfile.ZipFile(pack) as z:
        z.extractall(into)
        assert "viewer.html" in z.namelist()
    return into / "run"


@pytest.fixture
def small_blobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files past 64 bytes stored outside the row, in parts of 100 bytes: every path is exercised."""
    monkeypatch.setattr(blobs, "LARGE", 64)
    monkeypatch.setattr(blobs, "CHUNK", 100)


@pytest.mark.usefixtures("small_blobs")
@pytest.mark.slow
def test_export_rebuilds_runs_and_segments_byte_for_byte(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = sealed_run(tmp_path, "run")
    state, _ = monitor_state(tmp_path)
    assert archive("push", str(run_dir), str(state), "--db", db_url, *trusted(tmp_path)) == 0
    segment = segment_dirs(state)[1]
    for number, original in (("1", run_dir), ("3", segment)):
        pack = tmp_path / f"{number}.zip"
        assert archive("export", number, "--out", str(pack), "--db", db_url) == 0
        assert "rebuilt from the database" in capsys.readouterr().out
        restored = unpacked(pack, tmp_path / f"unpacked-{number}")
        assert files(restored) == files(original)
        assert main(["verify", str(restored), *trusted(tmp_path)]) == 0
        assert "verified" in capsys.readouterr().out

    with psycopg.connect(db_url, autocommit=True) as conn:  # altered in the database: no pack
        conn.execute("UPDATE blob_parts SET data = 'x'::bytea WHERE part = 0")
    assert archive("export", "1", "--out", str(tmp_path / "bad.zip"), "--db", db_url) == 2
    assert "does not verify" in capsys.readouterr().err
    assert not (tmp_path / "bad.zip").exists()


@pytest.fixture
def two_roles(pg: Cluster) -> Iterator[tuple[str, str]]:
    """A database owned by a role that pushes (no superuser, no CREATEROLE), and a login role that
    only holds `zhian_reader`: (the pusher's URL, the reader's URL)."""
    n = next(_ROLES)
    pusher, reader, name = f"pusher_{n}", f"portfolio_{n}", f"roles_{n}"
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'zhian_reader')"
            " THEN CREATE ROLE zhian_reader NOLOGIN; END IF; END $$"
        )
        admin.execute(f"CREATE ROLE {pusher} LOGIN")
        admin.execute(f"CREATE ROLE {reader} LOGIN IN ROLE zhian_reader")
        admin.execute(f"CREATE DATABASE {name} OWNER {pusher}")
    base = f"postgresql://{{}}@127.0.0.1:{pg.port}/{name}"
    yield base.format(pusher), base.format(reader)
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        admin.execute(f"DROP ROLE {reader}")
        admin.execute(f"DROP ROLE {pusher}")


async def _download(url: str, path: str) -> tuple[int, bytes]:
    runner = web.AppRunner(build_app(url))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://{host}:{port}{path}") as reply:
            return reply.status, await reply.read()
    finally:
        await runner.cleanup()


@pytest.mark.usefixtures("small_blobs")
@pytest.mark.slow
def test_a_reader_role_reads_what_another_role_pushed(
    tmp_path: Path, two_roles: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    pusher, reader = two_roles
    run_dir = sealed_run(tmp_path, "run")
    assert archive("push", str(run_dir), "--db", pusher, *trusted(tmp_path)) == 0
    with psycopg.connect(pusher) as conn:
        parts = conn.execute("SELECT count(*) FROM blob_parts").fetchone()
    assert parts and parts[0] > 0  # the large files are there to read
    capsys.readouterr()
    assert archive("verify", "1", "--db", reader) == 0
    assert archive("list", "--db", reader) == 0
    assert archive("export", "1", "--out", str(tmp_path / "pack.zip"), "--db", reader) == 0
    assert files(unpacked(tmp_path / "pack.zip", tmp_path / "unpacked")) == files(run_dir)
    status, body = asyncio.run(_download(reader, "/run/1/pack.zip"))
    assert status == 200 and body == (tmp_path / "pack.zip").read_bytes()
    with psycopg.connect(reader) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("DELETE FROM blob_parts")
