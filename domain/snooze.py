"""When a snooze preset ends, in the operator's own timezone (pure, for the cabinet's buttons)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

MORNING = time(9, 0)


class SnoozePreset(StrEnum):
    HOUR = "hour"  # an hour from now
    TOMORROW = "tomorrow"  # tomorrow at 09:00
    NEXT_WEEK = "next_week"  # next Monday at 09:00


def preset_end(preset: SnoozePreset, now: datetime, zone: ZoneInfo) -> datetime:
    """The moment `preset` ends, counted from `now` (aware) in `zone`; aware, in `zone`."""
    if preset == SnoozePreset.HOUR:
        return (now + timedelta(hours=1)).astimezone(zone)
    today = now.astimezone(zone).date()
    days = 1 if preset == SnoozePreset.TOMORROW else 7 - today.weekday()
    # combined in the zone, so 09:00 stays 09:00 across a daylight-saving change
    return datetime.combine(today + timedelta(days=days), MORNING, tzinfo=zone)
