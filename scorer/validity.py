"""The standard's clock: a grade is valid for 5 years with a re-check every year (4.10), and an
evaluation's files are kept at least 6 years (4.9)."""

from __future__ import annotations

from datetime import date, timedelta

VALID_YEARS = 5  # 4.10
KEEP_YEARS = 6  # 4.9


def anniversary(on: date, years: int) -> date:
    """`on` plus whole years; a 29 February falls on 1 March in a common year."""
    try:
        return on.replace(year=on.year + years)
    except ValueError:
        return date(on.year + years, 3, 1)


def valid_until(awarded: date) -> date:
    """The label's last valid day: the day before the fifth anniversary of the award."""
    return anniversary(awarded, VALID_YEARS) - timedelta(days=1)


def rechecks(awarded: date) -> list[date]:
    """The yearly re-check dates within the label's validity."""
    return [anniversary(awarded, k) for k in range(1, VALID_YEARS)]


def keep_until(sealed: date) -> date:
    """The first day a run sealed on `sealed` may be deleted."""
    return anniversary(sealed, KEEP_YEARS)
