"""Content-addressed bytes in the archive: each file stored once under its sha256.

Files up to `LARGE` bytes go into the row; larger ones become PostgreSQL large objects, written and
read in chunks so neither side holds a whole video clip or ledger in memory. The sha256 is computed
from the bytes as they are stored and must equal the one the manifest sealed, so a file changed
between verification and storage aborts the push.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import psycopg

from zhian.errors import UsageError

LARGE = 256 * 1024
CHUNK = 1 << 20

Conn = psycopg.Connection[tuple[object, ...]]


class ChangedWhilePushing(UsageError):
    """A file's bytes no longer match the sha256 its manifest sealed."""


def known(conn: Conn, digests: list[str]) -> set[str]:
    rows = conn.execute("SELECT sha256 FROM blobs WHERE sha256 = ANY(%s)", (digests,)).fetchall()
    return {str(r[0]) for r in rows}


def store(conn: Conn, path: Path, digest: str) -> int:
    """Store `path` as the blob `digest` (inside the caller's transaction); returns the bytes written."""
    size = path.stat().st_size
    hasher = hashlib.sha256()
    if size <= LARGE:
        data = path.read_bytes()
        hasher.update(data)
        _check(path, hasher, digest)
        conn.execute(
            "INSERT INTO blobs (sha256, size, data) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (digest, len(data), data),
        )
        return len(data)
    row = conn.execute("SELECT lo_create(0)").fetchone()
    assert row is not None
    oid, offset = row[0], 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            hasher.update(block)
            conn.execute("SELECT lo_put(%s, %s, %s)", (oid, offset, block))
            offset += len(block)
    _check(path, hasher, digest)
    inserted = conn.execute(
        "INSERT INTO blobs (sha256, size, large_object) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING"
        " RETURNING sha256",
        (digest, offset, oid),
    ).fetchone()
    if inserted is None:  # stored meanwhile by a concurrent push: keep theirs
        conn.execute("SELECT lo_unlink(%s)", (oid,))
    return offset


def _check(path: Path, hasher: hashlib._Hash, digest: str) -> None:
    if hasher.hexdigest() != digest:
        raise ChangedWhilePushing(f"{path}: changed while it was being pushed (sha256 differs from the seal)")


def chunks(conn: Conn, digest: str) -> Iterator[bytes]:
    """The bytes of a stored blob, in chunks."""
    row = conn.execute("SELECT size, data, large_object FROM blobs WHERE sha256 = %s", (digest,)).fetchone()
    if row is None:
        raise KeyError(digest)
    size, data, oid = row
    if data is not None:
        yield bytes(data)  # type: ignore[call-overload]
        return
    offset = 0
    while offset < int(str(size)):
        part = conn.execute("SELECT lo_get(%s, %s, %s)", (oid, offset, CHUNK)).fetchone()
        block = bytes(part[0]) if part and part[0] is not None else b""  # type: ignore[call-overload]
        if not block:
            return
        yield block
        offset += len(block)


def sha256_of(conn: Conn, digest: str) -> str | None:
    """The sha256 of the blob's stored bytes as read back now (None when it is missing)."""
    hasher = hashlib.sha256()
    try:
        for block in chunks(conn, digest):
            hasher.update(block)
    except KeyError:
        return None
    return hasher.hexdigest()


def drop_unreferenced(conn: Conn) -> int:
    """Delete blobs no stored run names any more (with their large objects); returns how many."""
    rows = conn.execute(
        "DELETE FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM run_files f WHERE f.sha256 = b.sha256)"
        " RETURNING large_object"
    ).fetchall()
    for (oid,) in rows:
        if oid is not None:
            conn.execute("SELECT lo_unlink(%s)", (oid,))
    return len(rows)
