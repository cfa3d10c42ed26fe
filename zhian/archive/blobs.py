"""Content-addressed bytes in the archive: each file stored once under its sha256.

Files up to `LARGE` bytes go into the row; larger ones into `blob_parts`, outside the row, in rows of
`CHUNK` bytes written and read one at a time, so neither side holds a whole video clip or ledger in
memory (ordinary rows, unlike large objects, are readable by any role granted SELECT on the tables).
The sha256 is computed from the bytes as they are stored and must equal the one the manifest
sealed, so a file changed between verification and storage aborts the push.
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
    inserted = conn.execute(
        "INSERT INTO blobs (sha256, size) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING sha256",
        (digest, size),
    ).fetchone()
    if inserted is None:  # stored meanwhile by a concurrent push: keep theirs
        return 0
    offset = 0
    parts = "COPY blob_parts (sha256, part, data) FROM STDIN (FORMAT BINARY)"
    with path.open("rb") as handle, conn.cursor().copy(parts) as copy:
        copy.set_types(("text", "int4", "bytea"))
        for part, block in enumerate(iter(lambda: handle.read(CHUNK), b"")):
            hasher.update(block)
            copy.write_row((digest, part, block))
            offset += len(block)
    _check(path, hasher, digest)
    return offset


def _check(path: Path, hasher: hashlib._Hash, digest: str) -> None:
    if hasher.hexdigest() != digest:
        raise ChangedWhilePushing(f"{path}: changed while it was being pushed (sha256 differs from the seal)")


def chunks(conn: Conn, digest: str) -> Iterator[bytes]:
    """The bytes of a stored blob, in chunks."""
    row = conn.execute("SELECT data FROM blobs WHERE sha256 = %s", (digest,)).fetchone()
    if row is None:
        raise KeyError(digest)
    if row[0] is not None:
        yield bytes(row[0])  # type: ignore[call-overload]
        return
    part = 0
    while found := conn.execute(
        "SELECT data FROM blob_parts WHERE sha256 = %s AND part = %s", (digest, part)
    ).fetchone():
        yield bytes(found[0])  # type: ignore[call-overload]
        part += 1


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
    """Delete blobs no stored run names any more (their parts go with them); returns how many."""
    cur = conn.execute(
        "DELETE FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM run_files f WHERE f.sha256 = b.sha256)"
    )
    return cur.rowcount
