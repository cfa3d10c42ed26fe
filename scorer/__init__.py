"""The standard's arithmetic: gates (6.2, 9.3), level totals (9.1, 9.2), sampling (7.4)."""
