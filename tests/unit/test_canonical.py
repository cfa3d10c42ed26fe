"""Canonical JSON, the bytes every record's hash covers: written by orjson where it agrees with
json.dumps, and always exactly json.dumps's bytes, or the runs sealed before stop verifying."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zhian.evidence.chain import canonical
from zhian.evidence.reader import LedgerReader
from zhian.evidence.verify import verify

# written by json.dumps before orjson (main 728903d): floats either side of the exponent's range,
# NaN and infinities, integers past 64 bits, every kind of escape, non-ASCII keys, a datetime, a
# tuple and integer keys (both through json.dumps's own conversions), a scrubbed secret
OLD_RUN = Path(__file__).parent / "fixtures" / "evidence" / "old-run"


def json_dumps(body: Any) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def test_the_records_of_a_run_sealed_before_are_recomputed_byte_for_byte(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    reader = LedgerReader(run)
    bodies = [row.body for row in reader.rows()]
    reader.close()
    assert len(bodies) == 5 and b"1e-05" in bodies[1] and b"NaN" in bodies[1]
    assert [canonical(json.loads(body)) for body in bodies] == bodies
    result = verify(run)
    assert result.records == 5 and result.unsealed  # chain and canonical form hold (never sealed)


floats = st.floats() | st.sampled_from([1e-4, 9.999999999999998e15, 1e16, 1e-05, -0.0, 5e-324])
scalars = st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70) | floats | st.text()
values = st.recursive(
    scalars | st.datetimes(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=4), inner, max_size=4)
        | st.dictionaries(st.integers(), inner, max_size=2)
        | st.dictionaries(st.text(max_size=2) | st.integers(), inner, max_size=3)  # json.dumps refuses
    ),
    max_leaves=20,
)


@pytest.mark.slow
@settings(max_examples=200)
@given(st.dictionaries(st.text(max_size=6), values, max_size=6))
def test_canonical_bytes_are_json_dumps_bytes(body: dict[str, Any]) -> None:
    try:
        expected = json_dumps(body)
    except (TypeError, ValueError) as exc:  # keys json.dumps cannot sort: canonical refuses them too
        try:
            canonical(body)
        except type(exc):
            return
        raise AssertionError("canonical accepted what json.dumps refuses") from None
    assert canonical(body) == expected


def test_every_code_point_is_written_as_json_dumps_writes_it() -> None:
    """The docstring's "strings agree for every code point", all of them, not a sample (surrogates
    cannot be UTF-8 and are left out by both)."""
    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    assert canonical({"s": every, every[:200]: 1}) == json_dumps({"s": every, every[:200]: 1})
