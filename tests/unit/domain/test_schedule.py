from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from domain.schedule import NEVER_OPENS, WorkingHours

BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_TO_18 = {day: [("09:00", "18:00")] for day in range(5)}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def berlin(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=BERLIN, fold=fold)


def office(**kwargs: object) -> WorkingHours:
    return WorkingHours(timezone="Europe/Berlin", weekly=WEEKDAYS_9_TO_18, **kwargs)


class TestBoundaries:
    def test_open_from_start_inclusive_to_end_exclusive(self) -> None:
        hours = office()
        assert not hours.is_open(berlin(2026, 1, 12, 8, 59, 59))
        assert hours.is_open(berlin(2026, 1, 12, 9, 0))
        assert hours.is_open(berlin(2026, 1, 12, 17, 59, 59))
        assert not hours.is_open(berlin(2026, 1, 12, 18, 0))

    def test_weekend_without_intervals_is_closed(self) -> None:
        assert not office().is_open(berlin(2026, 1, 17, 12, 0))

    def test_results_are_utc_whatever_zone_the_input_uses(self) -> None:
        opening = office().next_opening(berlin(2026, 1, 12, 7, 0))
        assert opening == utc(2026, 1, 12, 8, 0)
        assert opening.tzinfo is UTC

    def test_next_opening_is_now_while_open_and_next_closing_is_now_while_closed(self) -> None:
        hours = office()
        assert hours.next_opening(utc(2026, 1, 12, 10, 0)) == utc(2026, 1, 12, 10, 0)
        assert hours.next_closing(utc(2026, 1, 12, 10, 0)) == utc(2026, 1, 12, 17, 0)
        assert hours.next_closing(utc(2026, 1, 12, 17, 0)) == utc(2026, 1, 12, 17, 0)

    def test_lunch_break_splits_the_day(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={0: [("09:00", "13:00"), ("14:00", "18:00")]})
        assert hours.next_closing(berlin(2026, 1, 12, 10, 0)) == berlin(2026, 1, 12, 13, 0)
        assert hours.next_closing(berlin(2026, 1, 12, 13, 30)) == berlin(2026, 1, 12, 13, 30)
        assert hours.next_opening(berlin(2026, 1, 12, 13, 30)) == berlin(2026, 1, 12, 14, 0)
        assert hours.next_closing(berlin(2026, 1, 12, 15, 0)) == berlin(2026, 1, 12, 18, 0)

    def test_naive_instant_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            office().is_open(datetime(2026, 1, 12, 10, 0))


class TestHolidays:
    def test_holiday_is_closed_all_day(self) -> None:
        hours = office(holidays=[date(2026, 6, 12)])
        assert not hours.is_open(berlin(2026, 6, 12, 12, 0))
        assert hours.is_open(berlin(2026, 6, 11, 12, 0))

    def test_holiday_closes_a_round_the_clock_branch(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", always_open=True, holidays=[date(2026, 6, 12)])
        assert hours.is_open(berlin(2026, 6, 11, 23, 59))
        assert hours.next_closing(berlin(2026, 6, 1, 12, 0)) == berlin(2026, 6, 12, 0, 0)
        assert hours.next_opening(berlin(2026, 6, 12, 12, 0)) == berlin(2026, 6, 13, 0, 0)


class TestTouchingIntervals:
    def test_overnight_across_midnight_is_one_open_period(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={4: [("22:00", "24:00")], 5: [("00:00", "06:00")]})
        assert hours.is_open(berlin(2026, 1, 16, 23, 59, 59))
        assert hours.is_open(berlin(2026, 1, 17, 0, 0))
        assert hours.next_closing(berlin(2026, 1, 16, 23, 0)) == berlin(2026, 1, 17, 6, 0)
        assert not hours.is_open(berlin(2026, 1, 17, 6, 0))

    def test_touching_intervals_within_a_day_do_not_close_in_between(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={0: [("13:00", "18:00"), ("09:00", "13:00")]})
        assert hours.next_closing(berlin(2026, 1, 12, 10, 0)) == berlin(2026, 1, 12, 18, 0)

    def test_every_day_all_day_never_closes(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={day: [("00:00", "24:00")] for day in range(7)})
        assert hours.next_closing(utc(2026, 3, 29, 1, 0)) is None
        assert hours.off_hours_period_key(utc(2026, 3, 29, 1, 0)) is None


class TestSpringForwardBerlin:
    """2026-03-29 (Sunday): 02:00 CET jumps to 03:00 CEST at 01:00 UTC."""

    def test_all_day_sunday_lasts_23_hours(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("00:00", "24:00")]})
        start = hours.next_opening(utc(2026, 3, 28, 12, 0))
        end = hours.next_closing(start)
        assert (start, end) == (utc(2026, 3, 28, 23, 0), utc(2026, 3, 29, 22, 0))
        assert end - start == timedelta(hours=23)

    def test_start_in_the_gap_opens_when_the_clocks_jump(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("02:30", "05:00")]})
        assert hours.next_opening(utc(2026, 3, 28, 12, 0)) == utc(2026, 3, 29, 1, 0)
        assert not hours.is_open(utc(2026, 3, 29, 0, 59, 59))
        assert hours.is_open(utc(2026, 3, 29, 1, 0))

    def test_end_in_the_gap_closes_when_the_clocks_jump(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("01:00", "02:30")]})
        assert hours.next_closing(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1, 0)

    def test_interval_wholly_in_the_gap_does_not_open_that_day(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("02:15", "02:45")]})
        assert hours.next_opening(utc(2026, 3, 28, 12, 0)) == berlin(2026, 4, 5, 2, 15)

    def test_office_hours_move_one_hour_earlier_in_utc(self) -> None:
        hours = office()
        assert hours.next_opening(utc(2026, 3, 27, 0, 0)) == utc(2026, 3, 27, 8, 0)
        assert hours.next_opening(utc(2026, 3, 28, 0, 0)) == utc(2026, 3, 30, 7, 0)


class TestFallBackBerlin:
    """2026-10-25 (Sunday): 03:00 CEST goes back to 02:00 CET at 01:00 UTC; 02:xx happens twice."""

    def test_all_day_sunday_lasts_25_hours(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("00:00", "24:00")]})
        start = hours.next_opening(utc(2026, 10, 24, 12, 0))
        assert (start, hours.next_closing(start)) == (utc(2026, 10, 24, 22, 0), utc(2026, 10, 25, 23, 0))

    def test_end_in_the_repeated_hour_closes_at_its_first_occurrence(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("00:00", "02:30")]})
        assert hours.next_closing(utc(2026, 10, 24, 23, 0)) == utc(2026, 10, 25, 0, 30)
        # 02:15 on the second pass is earlier on the wall than 02:30, yet stays closed
        assert not hours.is_open(berlin(2026, 10, 25, 2, 15, fold=1))

    def test_start_in_the_repeated_hour_opens_at_its_first_occurrence(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("02:30", "06:00")]})
        assert hours.next_opening(utc(2026, 10, 24, 12, 0)) == utc(2026, 10, 25, 0, 30)
        # the wall shows 02:15 again, before the start, but the branch does not close
        assert hours.is_open(berlin(2026, 10, 25, 2, 15, fold=1))
        assert hours.next_closing(utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 25, 5, 0)

    def test_intervals_touching_in_the_repeated_hour_stay_one_period(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin", weekly={6: [("00:00", "02:30"), ("02:30", "06:00")]})
        assert hours.next_closing(utc(2026, 10, 24, 23, 0)) == utc(2026, 10, 25, 5, 0)
        assert hours.off_hours_period_key(utc(2026, 10, 25, 1, 15)) is None


class TestZoneWithoutDst:
    @pytest.mark.parametrize("day", [date(2026, 1, 12), date(2026, 3, 30), date(2026, 7, 13), date(2026, 10, 26)])
    def test_yekaterinburg_is_always_utc_plus_5(self, day: date) -> None:
        hours = WorkingHours(timezone="Asia/Yekaterinburg", weekly=WEEKDAYS_9_TO_18)
        midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
        opening = hours.next_opening(midnight)
        assert opening == midnight + timedelta(hours=4)
        assert hours.next_closing(opening) == midnight + timedelta(hours=13)


class TestNextOpening:
    def test_across_a_weekend(self) -> None:
        assert office().next_opening(berlin(2026, 1, 16, 18, 30)) == berlin(2026, 1, 19, 9, 0)

    def test_across_a_weekend_and_a_holiday(self) -> None:
        hours = office(holidays=[date(2026, 1, 19)])
        assert hours.next_opening(berlin(2026, 1, 16, 18, 30)) == berlin(2026, 1, 20, 9, 0)

    def test_empty_schedule_never_opens(self) -> None:
        hours = WorkingHours(timezone="Europe/Berlin")
        assert hours.next_opening(utc(2026, 1, 12, 10, 0)) is None
        assert hours.next_closing(utc(2026, 1, 12, 10, 0)) == utc(2026, 1, 12, 10, 0)
        assert hours.off_hours_period_key(utc(2026, 1, 12, 10, 0)) == NEVER_OPENS

    def test_holidays_covering_the_whole_horizon_mean_never(self) -> None:
        closed_year = [date(2026, 1, 1) + timedelta(days=n) for n in range(420)]
        hours = WorkingHours(timezone="Europe/Berlin", always_open=True, holidays=closed_year)
        assert hours.next_opening(utc(2026, 1, 2, 0, 0)) is None


class TestOffHoursPeriodKey:
    def test_same_key_throughout_one_closed_period(self) -> None:
        hours = office()
        friday_evening = hours.off_hours_period_key(berlin(2026, 1, 16, 18, 0))
        assert friday_evening == "2026-01-19T08:00:00+00:00"
        assert hours.off_hours_period_key(berlin(2026, 1, 17, 12, 0)) == friday_evening
        assert hours.off_hours_period_key(berlin(2026, 1, 19, 8, 59, 59)) == friday_evening

    def test_different_keys_for_two_closed_periods(self) -> None:
        hours = office()
        assert hours.off_hours_period_key(berlin(2026, 1, 19, 8, 0)) != hours.off_hours_period_key(
            berlin(2026, 1, 19, 18, 0)
        )

    def test_no_key_while_open(self) -> None:
        assert office().off_hours_period_key(berlin(2026, 1, 19, 9, 0)) is None


class TestValidation:
    @pytest.mark.parametrize("bad", ["9:00", "25:00", "12:60", "24:30", "0900", "noon"])
    def test_bad_time_format(self, bad: str) -> None:
        with pytest.raises(ValueError, match="HH:MM"):
            WorkingHours(timezone="UTC", weekly={0: [(bad, "23:00")]})

    @pytest.mark.parametrize(("start", "end"), [("18:00", "09:00"), ("09:00", "09:00"), ("24:00", "24:00")])
    def test_end_must_follow_start(self, start: str, end: str) -> None:
        with pytest.raises(ValueError, match="must end after it starts"):
            WorkingHours(timezone="UTC", weekly={0: [(start, end)]})

    def test_overlapping_intervals(self) -> None:
        with pytest.raises(ValueError, match="overlaps"):
            WorkingHours(timezone="UTC", weekly={0: [("09:00", "13:00"), ("12:00", "18:00")]})

    @pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd"])
    def test_unknown_timezone(self, name: str) -> None:
        with pytest.raises(ValueError, match="unknown timezone"):
            WorkingHours(timezone=name)

    def test_weekday_out_of_range(self) -> None:
        with pytest.raises(ValueError):
            WorkingHours(timezone="UTC", weekly={7: [("09:00", "18:00")]})

    def test_always_open_excludes_a_schedule(self) -> None:
        with pytest.raises(ValueError, match="always_open"):
            WorkingHours(timezone="UTC", always_open=True, weekly=WEEKDAYS_9_TO_18)

    def test_round_trips_through_json_with_string_weekday_keys(self) -> None:
        stored = '{"timezone": "Europe/Berlin", "weekly": {"0": [["09:00", "18:00"]]}, "holidays": ["2026-01-01"]}'
        hours = WorkingHours.model_validate_json(stored)
        assert hours.weekly == {0: [("09:00", "18:00")]}
        assert WorkingHours.model_validate_json(hours.model_dump_json()) == hours


def test_input_in_another_zone_is_the_same_instant() -> None:
    moscow = timezone(timedelta(hours=3))
    assert office().is_open(datetime(2026, 1, 12, 11, 0, tzinfo=moscow))  # 09:00 in Berlin
    assert not office().is_open(datetime(2026, 1, 12, 10, 59, tzinfo=moscow))
