"""The ledger's secret scrubber: every literal secret gone, whatever their number, the rest intact."""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from zhian.evidence.chain import canonical
from zhian.evidence.ledger import open_ledger
from zhian.evidence.reader import LedgerReader
from zhian.evidence.scrub import REDACTED, Scrubber

SECRETS = [f"pw-{n:04d}-Zq" for n in range(1500)]


def test_each_of_many_secrets_is_removed_at_any_depth() -> None:
    scrub = Scrubber(SECRETS)
    record = {
        "request": f"user=admin&password={SECRETS[1234]}",
        "nested": [{"reply": f"{SECRETS[0]}{SECRETS[1499]} tail"}, ("x", SECRETS[7])],
        "count": 3,
        "none": None,
    }
    assert scrub(record) == {
        "request": f"user=admin&password={REDACTED}",
        "nested": [{"reply": f"{REDACTED}{REDACTED} tail"}, ["x", REDACTED]],
        "count": 3,
        "none": None,
    }


def test_the_longest_secret_wins_and_short_values_are_left() -> None:
    scrub = Scrubber(["abcd", "abcdefgh", "xyz", ""])
    assert scrub.text("1abcdefgh2abcd3xyz") == f"1{REDACTED}2{REDACTED}3xyz"


def test_without_secrets_text_is_returned_as_is() -> None:
    text = "nothing to hide"
    assert Scrubber([]).text(text) is text
    assert Scrubber(["absent-secret"]).text(text) is text


@given(
    st.lists(st.text(alphabet="QRSTUVW", min_size=4, max_size=8), min_size=1, max_size=20, unique=True),
    st.lists(st.sampled_from(string.ascii_lowercase + " "), max_size=60),
    st.data(),
)
def test_no_secret_survives_and_other_text_stays(
    secrets: list[str], filler: list[str], data: st.DataObject
) -> None:
    # secrets in capitals, the text around them in lower case and spaces: all of that must stay
    pieces = list(filler)
    for secret in data.draw(st.lists(st.sampled_from(secrets), max_size=5)):
        pieces.insert(data.draw(st.integers(0, len(pieces))), secret)
    text = "".join(pieces)
    out = Scrubber(secrets).text(text)
    assert not any(s in out for s in secrets)
    kept = out.replace(REDACTED, "")
    assert "".join(c for c in kept if not c.isupper()) == "".join(filler)


def plain(value: Any) -> Any:
    """A value as the scrubber returns one it left alone (tuples become lists, mappings dicts)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


CHARS = st.sampled_from(['"', "\\", "\n", "\t", "\x01", "é", "密", "a", "b", "Z", " "])
VALUES = st.recursive(
    st.none() | st.integers() | st.text(CHARS, max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(CHARS, max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@given(st.lists(st.text(CHARS, min_size=4, max_size=6), min_size=1, max_size=4), VALUES)
def test_a_record_the_scrubber_would_change_always_shows_a_secret(secrets: list[str], value: Any) -> None:
    # the ledger walks a record's strings only when shows_in says so: it must never miss one
    scrub = Scrubber(secrets)
    if scrub({"v": value}) != plain({"v": value}):
        assert scrub.shows_in(canonical({"v": value}))


def test_the_ledger_scrubs_secrets_that_json_escapes(tmp_path: Path) -> None:
    secrets = ['pa"ss\\word', "line\nbreak", "密码-secret"]
    ledger = open_ledger(tmp_path, secrets=secrets, run_id="r")
    nested = {"nested": [secrets[1], ("t", f"x{secrets[2]}y")]}
    ledger.append("exchange", {"id": "a", "response": f"<x>{secrets[0]}</x>", "facts": nested})
    ledger.append("exchange", {"id": "b", "response": "nothing to hide", "facts": {"n": ["t"]}})
    ledger.close()
    reader = LedgerReader(tmp_path)
    first, second = (r.body for r in reader.records())
    reader.close()
    assert first["response"] == f"<x>{REDACTED}</x>"
    assert first["facts"] == {"nested": [REDACTED, ["t", f"x{REDACTED}y"]]}
    assert second["response"] == "nothing to hide" and second["facts"] == {"n": ["t"]}
    stored = (tmp_path / "ledger.sqlite").read_bytes()
    for secret in secrets:
        assert json.dumps(secret, ensure_ascii=False)[1:-1].encode() not in stored
