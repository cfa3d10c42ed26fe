"""Every time a report shows, in the site's time zone and to the second.

The ledger and findings keep UTC with microseconds (that is what was recorded); a person reads the
site's own clock ("2026-12-07T21:36:03+08:00"), so the report model is localised in one pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Shanghai"
TIME_KEYS = frozenset(
    {
        "started_at",
        "finished_at",
        "device_time",
        "last_seen",
        "first_live_at",
        "last_live_at",
        "window_start",
        "window_end",
        "trigger_at",
        "beats",
        "as_of",
        "earliest",
        "start",
        "end",
    }
)
SKIP = frozenset({"facts"})  # a finding's facts are shown as measured


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or DEFAULT_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def local(value: str, tz: ZoneInfo) -> str:
    """An ISO time in `tz` to the second; text that is not an aware ISO time is left as it is."""
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return value
    if at.tzinfo is None:
        return value
    return at.astimezone(tz).replace(microsecond=0).isoformat()


def localise(data: Any, tz: ZoneInfo, key: str = "") -> Any:
    """`data` with every time under a TIME_KEYS key in `tz`. Only what can hold a time is visited (a
    large run's report passes some 35,000 findings and records through here)."""
    if isinstance(data, dict):
        return {k: localise(v, tz, k) if k not in SKIP and _may_hold(v, k) else v for k, v in data.items()}
    if isinstance(data, list):
        return [localise(v, tz, key) if _may_hold(v, key) else v for v in data]
    if isinstance(data, str) and key in TIME_KEYS:
        return local(data, tz)
    return data


def _may_hold(value: Any, key: str) -> bool:
    return isinstance(value, dict | list) or (key in TIME_KEYS and isinstance(value, str))


def shown(value: str | None) -> str:
    """How a localised time reads in a table: date and time, the offset kept."""
    return value.replace("T", " ", 1) if value else "—"
