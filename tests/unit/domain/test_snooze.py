from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from domain.snooze import SnoozePreset, preset_end

BERLIN = ZoneInfo("Europe/Berlin")


def test_an_hour_tomorrow_morning_and_next_monday_in_the_operators_zone():
    now = datetime(2026, 11, 27, 22, 30, tzinfo=UTC)  # Friday, 23:30 in Berlin, Saturday 01:30 in Moscow
    assert preset_end(SnoozePreset.HOUR, now, BERLIN) == datetime(2026, 11, 27, 23, 30, tzinfo=UTC)
    assert preset_end(SnoozePreset.TOMORROW, now, BERLIN) == datetime(2026, 11, 28, 9, 0, tzinfo=BERLIN)
    moscow = ZoneInfo("Europe/Moscow")  # already Saturday there: tomorrow is Sunday
    assert preset_end(SnoozePreset.TOMORROW, now, moscow) == datetime(2026, 11, 29, 9, 0, tzinfo=moscow)
    assert preset_end(SnoozePreset.NEXT_WEEK, now, BERLIN) == datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN)
    monday = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert preset_end(SnoozePreset.NEXT_WEEK, monday, BERLIN) == datetime(2026, 12, 7, 9, 0, tzinfo=BERLIN)


def test_tomorrow_morning_across_the_spring_change_is_nine_local():
    now = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)  # the clocks go forward in Berlin that night
    end = preset_end(SnoozePreset.TOMORROW, now, BERLIN)
    assert end.astimezone(UTC) == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
