"""The record format of the evidence chain: the exact bytes a record's hash covers, and a record as read.

Each record's body is canonical JSON holding the hash of the record before it, and its own hash is
the sha256 of those exact bytes; so an edit, removal or reordering anywhere breaks the chain at that
record, and `zhian verify` can name it years later (4.9). `verify` recomputes `canonical` on every
stored body: its bytes must never change, or old runs stop verifying.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


class LedgerError(Exception):
    """A ledger that cannot be opened or read: names the file and what is wrong."""


def canonical(body: Mapping[str, Any]) -> bytes:
    """The exact bytes a record's hash covers: sorted keys, no spaces, UTF-8."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Row:
    """What a storage keeps of one record: the hashed body and copies of a few fields for queries."""

    seq: int
    id: str
    kind: str
    probe: str | None
    device: str | None
    started_at: str | None
    body: bytes
    hash: str
    prev_hash: str


@dataclass(frozen=True)
class Record:
    seq: int
    id: str
    kind: str  # run_start | exchange | finding | run_end
    hash: str
    prev_hash: str
    body: dict[str, Any]


def record_of(row: Row) -> Record:
    try:
        body = json.loads(row.body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LedgerError(f"record {row.seq}: body is not JSON ({exc})") from None
    return Record(row.seq, row.id, row.kind, row.hash, row.prev_hash, body)
