"""`zhian verify RUN_DIR`: does the run directory still hold exactly what was collected and sealed?
(And the one way to seal again: after verifying.)

Checks, in order: the ledger's hash chain record by record (and every artefact a record names), the
manifest's signature, the manifest against the ledger (count and chain head), and every file's
sha256 against the manifest, with no file added. The first broken record is named exactly; every
file problem is listed. A run without a manifest whose chain holds is *unsealed* (killed before its
end: `zhian seal --recover` seals it), not broken. Whether the signer is trusted is a separate
question, answered by `zhian.evidence.trust.decide` on `signer_raw`.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zhian.errors import UsageError
from zhian.evidence.chain import GENESIS, LedgerError, Row, canonical, sha256
from zhian.evidence.keys import SigningKey, fingerprint, verify_signature
from zhian.evidence.ledger import ARTEFACTS_DIR
from zhian.evidence.manifest import MANIFEST, SIGNATURE, TRANSIENT_SUFFIXES, file_sha256, seal, sealed_files
from zhian.evidence.reader import LedgerReader

UNSEALED_TEXT = f"{MANIFEST} is missing: the run was not sealed (killed before its end?)"


@dataclass
class Verification:
    records: int = 0
    chain_head: str = GENESIS
    problems: list[str] = field(default_factory=list)
    signed_by: str | None = None
    signer_raw: bytes | None = None  # the public key the manifest names (its signature checked)
    broken: bool = False  # the chain breaks after `records` good records
    sealed: bool = False  # a manifest exists

    @property
    def ok(self) -> bool:
        """Sealed, and nothing altered, missing or added since (who signed is `trust.decide`'s)."""
        return self.sealed and not self.problems

    @property
    def unsealed(self) -> bool:
        """Killed before its seal: every record kept holds, nothing else is wrong."""
        return not self.sealed and not self.problems

    def listed(self) -> list[str]:
        """Every problem, the missing seal included."""
        return self.problems + ([] if self.sealed else [UNSEALED_TEXT])


def _describe(row: Row) -> str:
    who = f", probe {row.probe}" if row.probe else ""
    on = f", device {row.device}" if row.device else ""
    return f"record {row.seq} ({row.kind} {row.id}{who}{on})"


def row_problem(row: Row, expected_seq: int, prev: str) -> str | None:
    """Why this row breaks the chain, or None."""
    if row.seq != expected_seq:
        return f"record {expected_seq} is missing (next is {row.seq})"
    if sha256(row.body) != row.hash:
        return f"{_describe(row)}: its content does not match its hash"
    try:
        body: dict[str, Any] = json.loads(row.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return f"{_describe(row)}: its content is not JSON"
    if canonical(body) != row.body:
        return f"{_describe(row)}: its content is not in canonical form"
    if row.prev_hash != prev or body.get("prev_hash") != prev:
        return f"{_describe(row)}: it does not follow record {expected_seq - 1} (chain broken)"
    stored = (row.id, row.kind, row.probe, row.device, row.started_at)
    hashed = (body.get("id"), body.get("kind"), body.get("probe"), body.get("device"), body.get("started_at"))
    if body.get("seq") != row.seq or stored != hashed:
        return f"{_describe(row)}: its index columns differ from its hashed content"
    return None


def check_artefact(run_dir: Path, row: Row) -> str | None:
    if b'"raw_sha256":' not in row.body:  # canonical JSON (checked before) writes the key as is
        return None
    digest = json.loads(row.body).get("raw_sha256")
    if not digest:
        return None
    path = run_dir / ARTEFACTS_DIR / digest
    if not path.is_file():
        return f"{_describe(row)}: its artefact {ARTEFACTS_DIR}/{digest} is missing"
    if file_sha256(path) != digest:
        return f"{_describe(row)}: its artefact {ARTEFACTS_DIR}/{digest} was altered"
    return None


def check_chain(run_dir: Path, result: Verification, start: str = GENESIS) -> None:
    try:
        reader = LedgerReader(run_dir)
    except LedgerError as exc:
        result.problems.append(str(exc))
        return
    try:
        prev, expected = start, 1
        result.chain_head = start
        for row in reader.rows():
            problem = row_problem(row, expected, prev) or check_artefact(run_dir, row)
            if problem:
                result.problems.append(problem)
                result.broken = True
                return
            prev, expected = row.hash, expected + 1
            result.records, result.chain_head = expected - 1, prev
    except LedgerError as exc:
        result.problems.append(str(exc))
    finally:
        reader.close()


def check_manifest(run_dir: Path, result: Verification) -> None:
    manifest_path, sig_path = run_dir / MANIFEST, run_dir / SIGNATURE
    if not manifest_path.is_file():
        return
    result.sealed = True
    data = manifest_path.read_bytes()
    try:
        manifest = json.loads(data)
        signer = manifest["signed_by"]
        public = base64.b64decode(signer["public_key"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        result.problems.append(f"{MANIFEST}: unreadable ({type(exc).__name__}: {exc})")
        return
    result.signed_by, result.signer_raw = fingerprint(public), public
    try:
        signature = base64.b64decode(sig_path.read_text(encoding="ascii").strip(), validate=True)
    except (OSError, ValueError) as exc:
        result.problems.append(f"{SIGNATURE}: missing or unreadable ({exc})")
        signature = b""
    if signature and not verify_signature(public, signature, data):
        result.problems.append(f"{SIGNATURE}: the signature does not match {MANIFEST}")
    ledger = manifest.get("ledger") or {}
    if not result.problems and ledger.get("records") != result.records:
        result.problems.append(
            f"{MANIFEST}: sealed {ledger.get('records')} ledger records, the ledger has {result.records}"
        )
    if not result.problems and ledger.get("chain_head") != result.chain_head:
        result.problems.append(f"{MANIFEST}: sealed chain head differs from the ledger's")
    check_files(run_dir, manifest.get("files") or {}, result)


def check_files(run_dir: Path, listed: dict[str, str], result: Verification) -> None:
    present = {p.relative_to(run_dir).as_posix(): p for p in sealed_files(run_dir)}
    for name, digest in sorted(listed.items()):
        path = present.get(name)
        if path is None:
            result.problems.append(f"{name}: sealed in the manifest, now missing")
        elif file_sha256(path) != digest:
            result.problems.append(f"{name}: altered since it was sealed (sha256 differs)")
    for name in sorted(set(present) - set(listed)):
        if name.endswith(TRANSIENT_SUFFIXES):
            result.problems.append(f"{name}: the ledger is still open for writing")
        else:
            result.problems.append(f"{name}: not covered by the manifest (added after sealing)")


def verify(run_dir: Path, start: str = GENESIS) -> Verification:
    """`start`: the hash the first record follows (GENESIS for a run, the previous head for a segment)."""
    result = Verification()
    check_chain(run_dir, result, start)
    check_manifest(run_dir, result)
    return result


@contextmanager
def resealing(run_dir: Path, key: SigningKey) -> Iterator[None]:
    """Add files to a sealed run (a report), then seal again. Only a directory that verifies before
    the change (files added since are fine) may be re-sealed, and only with the key that sealed it,
    so neither tampering nor another signer is laundered into a new seal; the new manifest names
    the one it supersedes."""
    result = verify(run_dir)
    broken = [p for p in result.problems if not p.endswith("(added after sealing)")]
    if broken or not result.sealed:
        reason = broken[0] if broken else UNSEALED_TEXT
        raise UsageError(f"{run_dir}: will not re-seal a run that does not verify: {reason}")
    if result.signed_by != fingerprint(key.public_raw):
        raise UsageError(
            f"{run_dir}: sealed by {result.signed_by}; the key in {key.folder} is "
            f"{fingerprint(key.public_raw)}: re-sealing needs the key that sealed the run (--key-dir)"
        )
    try:
        meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"{run_dir / 'run.json'}: unreadable ({exc})") from None
    yield
    seal(run_dir, key, meta)
