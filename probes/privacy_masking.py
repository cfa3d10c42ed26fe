"""Personal data de-identified in the platform's replies (A2.4.3, B2.4.1).

The resident records the platform serves are scanned, every value of every field, for resident
ID numbers (18 characters whose GB 11643 check character is right: a random 18-digit number is
not counted) and mainland mobile numbers (11 digits, 1[3-9]...). Any found unmasked fails the
probe; masked forms (`110101********1234`, `138****5678`) do not match. Facts carry counts and
field names only, never a value; the collector masks the values in the exchange as well.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from collectors.errors import CollectorError
from collectors.platform import ID_NUMBER, MOBILE, PlatformClient, id_number_valid
from probes.base import ProbeContext, ProbeSpec
from probes.finding import Finding, collector_finding
from probes.platform_common import platform_profile
from probes.targets import Target

PROBE = "privacy_masking"


class Params(BaseModel):
    """No thresholds: one unmasked number is one too many."""

    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True)
class Scan:
    records: int
    id_numbers: int  # unmasked, with a valid check character
    id_like_invalid: int  # 18-character runs whose check character is wrong (not counted as IDs)
    mobiles: int
    fields: tuple[str, ...]  # where unmasked data was found

    @property
    def unmasked(self) -> int:
        return self.id_numbers + self.mobiles


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(field path, text) for every scalar in a JSON value; numbers as their digits."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, path)
    elif isinstance(value, str):
        yield path, value
    elif isinstance(value, int) and not isinstance(value, bool):
        yield path, str(value)


def scan(records: Iterable[Mapping[str, Any]]) -> Scan:
    rows = list(records)
    ids = invalid = mobiles = 0
    fields: Counter[str] = Counter()
    for path, text in (pair for row in rows for pair in _strings(row, "")):
        found_ids = [m.group() for m in ID_NUMBER.finditer(text)]
        valid = sum(1 for v in found_ids if id_number_valid(v))
        phones = len(MOBILE.findall(text))
        ids, invalid, mobiles = ids + valid, invalid + len(found_ids) - valid, mobiles + phones
        if valid or phones:
            fields[path] += 1
    return Scan(len(rows), ids, invalid, mobiles, tuple(sorted(fields)))


def judge(
    device: str, result: Scan, evidence: tuple[str, ...], started: datetime, finished: datetime
) -> Finding:
    facts: dict[str, Any] = {
        "records": result.records,
        "unmasked_id_numbers": result.id_numbers,
        "unmasked_mobiles": result.mobiles,
        "id_like_invalid_check": result.id_like_invalid,
        "fields": list(result.fields),
    }
    if result.records == 0:
        detail = "The platform returned no resident records, so masking cannot be seen."
        return Finding(
            PROBE, device, "not_assessed", "no_records", detail, facts, evidence, None, started, finished
        )
    if result.unmasked:
        detail = (
            f"{result.records} resident records carry {result.id_numbers} unmasked ID numbers and "
            f"{result.mobiles} unmasked mobile numbers ({', '.join(result.fields)})."
        )
        return Finding(
            PROBE, device, "fail", "personal_data_unmasked", detail, facts, evidence, None, started, finished
        )
    detail = f"No unmasked ID or mobile number in {result.records} resident records."
    return Finding(
        PROBE, device, "pass", "personal_data_masked", detail, facts, evidence, None, started, finished
    )


async def run(ctx: ProbeContext, target: Target, params: Params) -> Finding:
    started = ctx.clock()
    if platform_profile(target).api != "zhian":
        detail = "The platform's profile offers no resident-record view that zhian reads."
        return Finding(
            PROBE,
            target.id,
            "not_assessed",
            "not_offered",
            detail,
            started_at=started,
            finished_at=ctx.clock(),
        )
    try:
        async with ctx.client(PlatformClient, target) as platform:
            residents = await platform.residents()
    except CollectorError as exc:
        return collector_finding(PROBE, target.id, exc, started_at=started, finished_at=ctx.clock())
    return judge(target.id, scan(residents.rows), (residents.exchange_id,), started, ctx.clock())


SPEC = ProbeSpec(
    id=PROBE,
    title="Resident ID and mobile numbers are masked in the platform's replies",
    mode="passive",
    applies_to=("platform",),
    params=Params,
    timeout_s=30.0,
    run=run,
)
