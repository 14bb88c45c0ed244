"""Choosing the language, and writing dates, times, ages and the sign-in wait in the operator's
locale and zone."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request

from domain.enums import Locale
from web.auth import _too_many_failures
from web.i18n import Formats, negotiate, parse_locale, zone
from web.templating import PageContext

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # a Friday; 15:00 in Yekaterinburg
YEKATERINBURG = ZoneInfo("Asia/Yekaterinburg")


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, Locale.RU),
        ("", Locale.RU),
        ("en-US,en;q=0.9", Locale.EN),
        ("de-DE,de;q=0.9", Locale.RU),  # nothing we speak: the default
        ("de-DE,en;q=0.5,ru;q=0.8", Locale.RU),  # the better quality wins
        ("fr, en;q=0.3", Locale.EN),
        ("en;q=0, ru;q=0.1", Locale.RU),  # q=0 means "not this"
        ("en;q=oops", Locale.RU),
    ],
)
def test_the_browsers_language_is_negotiated(header, locale):
    assert negotiate(header) == locale


def test_parse_locale_and_zone_accept_only_what_exists():
    assert parse_locale("en_GB") == Locale.EN and parse_locale("RU") == Locale.RU
    assert parse_locale("xx") is None and parse_locale(None) is None
    assert zone("Europe/Moscow") == ZoneInfo("Europe/Moscow")
    assert zone("Mars/Olympus") is None and zone("../etc/passwd") is None and zone(None) is None


def test_dates_and_times_are_written_in_the_operators_zone_and_language():
    ru = Formats(Locale.RU, YEKATERINBURG)
    assert ru.datetime(NOW) == "27.11.2026, 15:00"
    assert ru.time(NOW) == "15:00"
    assert ru.date(NOW.replace(hour=20)) == "28.11.2026"  # already Saturday there
    en = Formats(Locale.EN, ZoneInfo("UTC"))
    assert en.time(NOW) == "10:00\u202fAM"
    assert ru.duration(timedelta(minutes=2)) == "2 мин"
    assert ru.duration(timedelta(hours=1, minutes=5)) == "1 ч"
    assert en.duration(timedelta(minutes=2)) == "2 min"


def test_the_same_instant_is_written_for_each_zone_and_language_even_once_kept():
    """Formatted times are kept by their arguments: an instant written for one operator must not
    come back for another zone or language (equal instants in two zones are equal datetimes)."""
    moscow = NOW.astimezone(ZoneInfo("Europe/Moscow"))
    for _ in range(2):
        assert Formats(Locale.RU, YEKATERINBURG).datetime(NOW) == "27.11.2026, 15:00"
        assert Formats(Locale.RU, ZoneInfo("Europe/Moscow")).datetime(NOW) == "27.11.2026, 13:00"
        assert Formats(Locale.RU, YEKATERINBURG).datetime(moscow) == "27.11.2026, 15:00"
        assert Formats(Locale.EN, YEKATERINBURG).time(moscow) == "3:00\u202fPM"
        assert Formats(Locale.RU, YEKATERINBURG).date(NOW.replace(hour=20)) == "28.11.2026"
        assert Formats(Locale.RU, ZoneInfo("UTC")).date(NOW.replace(hour=20)) == "27.11.2026"


@pytest.mark.parametrize(
    ("age", "ru", "en"),
    [
        (timedelta(seconds=20), "сейчас", "now"),
        (timedelta(minutes=2), "2 мин", "2 min"),
        (timedelta(hours=3), "3 ч", "3 hr"),
        (timedelta(hours=16), "вчера", "yesterday"),  # 23:00 the day before in Yekaterinburg
        (timedelta(days=3), "вт", "Tue"),
        (timedelta(days=20), "7 нояб.", "Nov 7"),
        (timedelta(days=400), "23.10.2025", "10/23/25"),
    ],
)
def test_relative_ages_as_a_list_shows_them(age, ru, en):
    assert Formats(Locale.RU, YEKATERINBURG).relative(NOW - age, now=NOW) == ru
    assert Formats(Locale.EN, YEKATERINBURG).relative(NOW - age, now=NOW) == en


def test_a_time_slightly_in_the_future_is_now():
    assert Formats(Locale.RU).relative(NOW + timedelta(seconds=5), now=NOW) == "сейчас"


@pytest.mark.parametrize(
    ("seconds", "ru", "en"),
    [
        (1, "1 секунду", "1 second"),
        (3, "3 секунды", "3 seconds"),
        (21, "21 секунду", "21 seconds"),
        (30, "30 секунд", "30 seconds"),
        (59, "59 секунд", "59 seconds"),
        (60, "1 минуту", "1 minute"),  # the longest wait there is
    ],
)
def test_a_throttled_sign_in_says_how_long_to_wait_in_either_language(seconds, ru, en):
    request = Request({"type": "http"})
    russian = _too_many_failures(PageContext(request, Formats(Locale.RU)), seconds)
    english = _too_many_failures(PageContext(request, Formats(Locale.EN)), seconds)
    assert russian == f"Слишком много неудачных попыток входа. Попробуйте снова через {ru}."
    assert english == f"Too many failed sign-ins. Try again in {en}."
