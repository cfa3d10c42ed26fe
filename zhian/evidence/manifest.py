"""The signed manifest that seals a run directory: what it holds, byte for byte, and who sealed it.

manifest.json lists the ledger's counts and chain head, the config digest, the tool version and the
sha256 of every other file in the directory; manifest.sig is the Ed25519 signature of those exact
bytes (base64). Adding a report later re-seals: the new manifest names the one it supersedes.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from zhian import __version__
from zhian.evidence.keys import SigningKey
from zhian.evidence.reader import LedgerReader
from zhian.evidence.storage import LEDGER_FILE

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
UNSEALED = frozenset({MANIFEST, SIGNATURE})
# SQLite's side files exist only while a writer has the ledger open; a sealed run has none.
TRANSIENT_SUFFIXES = ("-wal", "-shm", "-journal")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sealed_files(run_dir: Path) -> Iterator[Path]:
    """Every file the manifest covers: all but the manifest and its signature, in a stable order."""
    for path in sorted(run_dir.rglob("*")):
        if path.is_file() and path.relative_to(run_dir).as_posix() not in UNSEALED:
            yield path


def ledger_summary(run_dir: Path) -> dict[str, Any]:
    reader = LedgerReader(run_dir)
    try:
        last = reader.last()
        head, records = (last.hash, last.seq) if last else ("", 0)
        return {"file": LEDGER_FILE, "records": records, "counts": reader.kinds(), "chain_head": head}
    finally:
        reader.close()


def build(run_dir: Path, key: SigningKey, run_meta: Mapping[str, Any]) -> dict[str, Any]:
    previous = run_dir / MANIFEST
    return {
        "schema": "zhian.evidence.manifest/1",
        "run_id": run_meta.get("run_id"),
        "tool": f"zhian {__version__}",
        "sealed_at": datetime.now(UTC).isoformat(),
        "config_sha256": run_meta.get("config_sha256"),
        "interrupted": run_meta.get("interrupted", False),
        "recovered": run_meta.get("recovered", False),  # sealed after a kill by `zhian seal --recover`
        "recovery_reason": run_meta.get("recovery_reason"),
        "ledger": ledger_summary(run_dir),
        "files": {p.relative_to(run_dir).as_posix(): file_sha256(p) for p in sealed_files(run_dir)},
        "signed_by": key.describe(),
        "supersedes": file_sha256(previous) if previous.exists() else None,
    }


def seal(run_dir: Path, key: SigningKey, run_meta: Mapping[str, Any]) -> dict[str, Any]:
    """Write manifest.json and manifest.sig for the directory as it is now."""
    manifest = build(run_dir, key, run_meta)
    data = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode()
    signature = base64.b64encode(key.sign(data)).decode() + "\n"
    tmp = run_dir / f".{MANIFEST}.tmp"
    tmp.write_bytes(data)
    (run_dir / SIGNATURE).write_text(signature, encoding="ascii")
    tmp.replace(run_dir / MANIFEST)
    return manifest
