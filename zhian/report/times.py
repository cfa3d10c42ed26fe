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
    if isinstance(data, dict):
        return {k: v if k in SKIP else localise(v, tz, k) for k, v in data.items()}
    if isinstance(data, list):
        return [localise(v, tz, key) for v in data]
    if isinstance(data, str) and key in TIME_KEYS:
        return local(data, tz)
    return data


def shown(value: str | None) -> str:
    """How a localised time reads in a table: date and time, the offset kept."""
    return value.replace("T", " ", 1) if value else "—"
