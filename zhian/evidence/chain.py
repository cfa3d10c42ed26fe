"""The record format of the evidence chain: the exact bytes a record's hash covers, and a record as read.

Each record's body is canonical JSON holding the hash of the record before it, and its own hash is
the sha256 of those exact bytes; so an edit, removal or reordering anywhere breaks the chain at that
record, and `zhian verify` can name it years later (4.9). `verify` recomputes `canonical` on every
stored body: its bytes must never change, or old runs stop verifying. They are json.dumps's (sorted
keys, no spaces, UTF-8 unescaped); orjson writes the same bytes in a fraction of the time for the
values where the two agree (`_agreed`), and json.dumps writes the others.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

GENESIS = "0" * 64


class LedgerError(Exception):
    """A ledger that cannot be opened or read: names the file and what is wrong."""


def canonical(body: Mapping[str, Any]) -> bytes:
    """The exact bytes a record's hash covers: sorted keys, no spaces, UTF-8."""
    if _agreed(body):
        try:
            return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # an integer past 64 bits, nesting past orjson's depth: json.dumps's own output
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


_SCALARS = frozenset({str, int, bool, type(None)})  # written alike by both, exactly these types


def _agreed(value: Any) -> bool:
    """Whether orjson writes this value byte for byte as json.dumps does: plain JSON types exactly
    (no subclass, no `default`: orjson writes datetimes, enums, dataclasses its own way), string
    keys, and floats in the range where both write the shortest repr without an exponent
    (json.dumps writes 1e-05 where orjson writes 0.00001; NaN and infinities orjson writes as null).
    Strings agree for every code point (tested); so does key order (code points, UTF-8 bytes)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:
        return bool(value == 0.0 or 1e-4 <= abs(value) < 1e16)
    # a loop over a record's fields, not all() over a generator: it runs on every record
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str or not (type(item) in _SCALARS or _agreed(item)):
                return False
        return True
    if kind is list or kind is tuple:
        return all(type(item) in _SCALARS or _agreed(item) for item in value)
    return False


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
