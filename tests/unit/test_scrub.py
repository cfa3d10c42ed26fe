"""The ledger's secret scrubber: every literal secret gone, whatever their number, the rest intact."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

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
