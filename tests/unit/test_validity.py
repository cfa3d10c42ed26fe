"""The standard's clock (4.9, 4.10): validity, yearly re-checks, six years kept; a leap-day award."""

from __future__ import annotations

from datetime import date

from scorer.validity import anniversary, keep_until, rechecks, valid_until


def test_a_label_is_valid_to_the_day_before_its_fifth_anniversary_with_four_rechecks() -> None:
    assert valid_until(date(2026, 12, 1)) == date(2031, 11, 30)
    assert rechecks(date(2026, 12, 1)) == [date(y, 12, 1) for y in (2027, 2028, 2029, 2030)]
    assert keep_until(date(2026, 12, 1)) == date(2032, 12, 1)


def test_a_leap_day_moves_to_the_first_of_march_in_common_years() -> None:
    assert anniversary(date(2028, 2, 29), 1) == date(2029, 3, 1)
    assert anniversary(date(2028, 2, 29), 4) == date(2032, 2, 29)
    assert valid_until(date(2028, 2, 29)) == date(2033, 2, 28)
    assert anniversary(date(2032, 2, 29), -6) == date(2026, 3, 1)
