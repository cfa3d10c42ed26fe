"""`zhian archive verify ID`: re-verify a stored run from the database alone, years later (4.9).

The chain from the stored record bodies (each body's sha256, canonical form, the prev_hash links),
the Ed25519 signature over the stored manifest bytes, the manifest's record count and chain head
against that chain, and every stored file (artefacts included) hashed again from its stored bytes
against the digest the manifest sealed. No run directory is needed.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from psycopg.rows import class_row

from zhian.archive import blobs
from zhian.archive.blobs import Conn
from zhian.errors import UsageError
from zhian.evidence.chain import GENESIS, Row
from zhian.evidence.keys import fingerprint, verify_signature
from zhian.evidence.ledger import ARTEFACTS_DIR
from zhian.evidence.segments import SEGMENT_FILE
from zhian.evidence.verify import Verification, row_problem

_SHA_PREFIX = re.compile(r"^[0-9a-f]{8,64}$")


def resolve_run(conn: Conn, ident: str) -> int:
    """A stored run by archive number, manifest sha256 (a prefix of 8 or more) or run id (the newest seal)."""
    if ident.isdigit():
        row = conn.execute("SELECT id FROM runs WHERE id = %s", (int(ident),)).fetchone()
    else:
        rows = conn.execute(
            "SELECT id FROM runs WHERE run_id = %s ORDER BY sealed_at DESC LIMIT 1", (ident,)
        ).fetchall()
        if not rows and _SHA_PREFIX.match(ident):
            rows = conn.execute(
                "SELECT id FROM runs WHERE manifest_sha256 LIKE %s LIMIT 2", (ident + "%",)
            ).fetchall()
            if len(rows) > 1:
                raise UsageError(f"archive: {ident} names more than one stored run; give more of the sha256")
        row = rows[0] if rows else None
    if row is None:
        raise UsageError(f"archive: no stored run {ident} (give its number, run id or manifest sha256)")
    return int(str(row[0]))


def verify_stored(conn: Conn, run: int) -> Verification:
    result = Verification(sealed=True)  # a stored run always has its manifest
    stored = conn.execute(
        "SELECT manifest, signature, chain_start, kind, monitor_id, segment_index FROM runs WHERE id = %s",
        (run,),
    ).fetchone()
    if stored is None:
        raise UsageError(f"archive: no stored run {run}")
    start = str(stored[2] or GENESIS)
    if stored[3] == "segment":
        _check_link(conn, run, start, str(stored[4]), int(str(stored[5])), result)
    artefacts = _check_chain(conn, run, start, result)
    data = bytes(stored[0])  # type: ignore[call-overload]
    try:
        manifest = json.loads(data)
        public = base64.b64decode(manifest["signed_by"]["public_key"], validate=True)
        signature = base64.b64decode(str(stored[1]), validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        result.problems.append(f"stored manifest unreadable ({type(exc).__name__}: {exc})")
        return result
    result.signed_by = fingerprint(public)
    if not verify_signature(public, signature, data):
        result.problems.append("the signature does not match the stored manifest")
    ledger = manifest.get("ledger") or {}
    if not result.broken and (ledger.get("records"), ledger.get("chain_head")) != (
        result.records,
        result.chain_head,
    ):
        result.problems.append(
            f"the manifest sealed {ledger.get('records')} records and another chain head;"
            f" the archive holds {result.records}"
        )
    _check_files(conn, run, manifest.get("files") or {}, artefacts, result)
    return result


def _check_link(conn: Conn, run: int, start: str, monitor: str, index: int, result: Verification) -> None:
    """A segment: its chain starts where its sealed segment.json says, which is where the stored
    segment before it (when the archive holds it) ends."""
    row = conn.execute(
        "SELECT sha256 FROM run_files WHERE run = %s AND path = %s", (run, SEGMENT_FILE)
    ).fetchone()
    try:
        doc = json.loads(b"".join(blobs.chunks(conn, str(row[0])))) if row else {}
    except (KeyError, ValueError):
        doc = {}
    if doc.get("previous_head", GENESIS) != start:
        result.problems.append(f"{SEGMENT_FILE}: names another previous head than the archive starts from")
    before = conn.execute(
        "SELECT id, manifest FROM runs WHERE kind = 'segment' AND monitor_id = %s AND segment_index = %s",
        (monitor, index - 1),
    ).fetchone()
    if before is not None:
        head = (json.loads(bytes(before[1])).get("ledger") or {}).get("chain_head")  # type: ignore[call-overload]
        if head != start:
            result.problems.append(f"does not follow the stored segment #{before[0]} (the chain is broken)")


def _check_chain(conn: Conn, run: int, start: str, result: Verification) -> set[str]:
    """Walk the stored records; returns the artefact digests they name."""
    named: set[str] = set()
    prev, expected = start, 1
    result.chain_head = start
    cursor = conn.cursor(row_factory=class_row(Row))
    cursor.execute(
        "SELECT seq, id, kind, probe, device, started_at, body, hash, prev_hash FROM records"
        " WHERE run = %s ORDER BY seq",
        (run,),
    )
    for row in cursor:
        if problem := row_problem(row, expected, prev):
            result.problems.append(problem)
            result.broken = True
            break
        if digest := json.loads(row.body).get("raw_sha256"):
            named.add(digest)
        prev, expected = row.hash, expected + 1
        result.records, result.chain_head = row.seq, prev
    cursor.close()
    return named


def _check_files(
    conn: Conn, run: int, listed: dict[str, str], artefacts: set[str], result: Verification
) -> None:
    stored = dict(
        (str(p), str(d))
        for p, d in conn.execute("SELECT path, sha256 FROM run_files WHERE run = %s", (run,)).fetchall()
    )
    for name, digest in sorted(listed.items()):
        if name not in stored:
            result.problems.append(f"{name}: sealed in the manifest, not in the archive")
        elif stored[name] != digest:
            result.problems.append(f"{name}: the archive names other bytes than the manifest sealed")
        elif blobs.sha256_of(conn, digest) != digest:
            result.problems.append(f"{name}: its stored bytes are missing or altered (sha256 differs)")
    for name in sorted(set(stored) - set(listed)):
        result.problems.append(f"{name}: stored for this run but not covered by its manifest")
    for digest in sorted(artefacts):
        if f"{ARTEFACTS_DIR}/{digest}" not in listed:
            result.problems.append(f"{ARTEFACTS_DIR}/{digest}: a record names it, the manifest does not")
