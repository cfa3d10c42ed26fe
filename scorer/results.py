"""Indicator results as the machine proposes them and the evaluator decides them.

Parsing lives here, as a pure function over plain data, so that every caller (the `score`
command, the run, the report) refuses the same bad entries with the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast, get_args

Status = Literal["pass", "fail", "partial", "not_assessed", "error"]
Source = Literal["machine", "evaluator"]
STATUSES: tuple[str, ...] = get_args(Status)
SOURCES: tuple[str, ...] = get_args(Source)


class ResultError(ValueError):
    """A verdict entry that cannot be used; the message names the entry."""


@dataclass(frozen=True)
class Result:
    status: Status
    source: Source
    ratio: Decimal | None = None  # only for partial, in [0, 1]
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "source": self.source}
        if self.ratio is not None:
            out["ratio"] = float(self.ratio)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Verdict:
    """What is known of one indicator: the machine's proposal, the evaluator's decision, or both."""

    machine: Result | None = None
    evaluator: Result | None = None

    @property
    def final(self) -> Result | None:
        """The evaluator overrides the machine (7.1: evaluation is the evaluator's)."""
        return self.evaluator or self.machine


def parse_result(entry_id: str, raw: object, default_source: Source = "machine") -> Result:
    if not isinstance(raw, Mapping):
        raise ResultError(f"entry {entry_id}: expected a mapping with 'status', got {raw!r}")
    unknown = set(raw) - {"status", "ratio", "source", "note"}
    if unknown:
        raise ResultError(f"entry {entry_id}: unknown keys {sorted(map(str, unknown))}")
    status = raw.get("status")
    if status not in STATUSES:
        raise ResultError(f"entry {entry_id}: status {status!r} is not one of {', '.join(STATUSES)}")
    source = raw.get("source", default_source)
    if source not in SOURCES:
        raise ResultError(f"entry {entry_id}: source {source!r} is not machine or evaluator")
    ratio: Decimal | None = None
    if status == "partial":
        if "ratio" not in raw:
            raise ResultError(f"entry {entry_id}: a partial result needs a ratio in [0, 1]")
        value = raw["ratio"]
        try:
            if isinstance(value, bool):
                raise InvalidOperation
            ratio = Decimal(str(value))
        except InvalidOperation:
            raise ResultError(f"entry {entry_id}: ratio {value!r} is not a number") from None
        if not ratio.is_finite() or not Decimal(0) <= ratio <= Decimal(1):
            raise ResultError(f"entry {entry_id}: ratio {value} is outside [0, 1]")
    elif "ratio" in raw:
        raise ResultError(f"entry {entry_id}: ratio is only for a partial result")
    note = raw.get("note")
    if note is not None and not isinstance(note, str):
        raise ResultError(f"entry {entry_id}: note must be text")
    return Result(cast(Status, status), cast(Source, source), ratio, note)


def merge_verdicts(known_ids: Iterable[str], documents: Iterable[Mapping[str, object]]) -> dict[str, Verdict]:
    """Merge verdict mappings ({id: entry or [entries]}); one result per source and indicator."""
    known = set(known_ids)
    merged: dict[str, dict[str, Result]] = {}
    for doc in documents:
        for entry_id, raw in doc.items():
            key = str(entry_id)
            if key not in known:
                raise ResultError(f"entry {key}: unknown indicator id")
            for item in raw if isinstance(raw, list) else [raw]:
                result = parse_result(key, item)
                slot = merged.setdefault(key, {})
                if result.source in slot:
                    raise ResultError(f"entry {key}: two {result.source} results")
                slot[result.source] = result
    return {k: Verdict(v.get("machine"), v.get("evaluator")) for k, v in merged.items()}
