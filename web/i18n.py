"""Languages and local time: which locale a request gets, the message catalogs, and how dates,
times, durations and counts are written in it.

Catalogs are the `.po` files under `web/locales/<locale>/LC_MESSAGES/messages.po`, compiled in
memory when this module is imported (no `.mo` files, no build step). Messages are written in
English in the code and templates (`_("Sign in")`); both catalogs translate every one of them,
which `tests/unit/test_i18n_catalogs.py` checks against Babel's extraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from domain.enums import Locale
from domain.wording import N_ as N_

LOCALES_DIR = Path(__file__).parent / "locales"
DEFAULT_LOCALE = Locale.RU
UTC_ZONE = ZoneInfo("UTC")


def _compile(locale: Locale) -> Translations:
    with (LOCALES_DIR / locale.value / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=locale.value)
    mo = BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return Translations(mo)


_CATALOGS: dict[Locale, Translations] = {locale: _compile(locale) for locale in Locale}


def translations(locale: Locale) -> Translations:
    return _CATALOGS[locale]


def parse_locale(value: str | None) -> Locale | None:
    """A supported locale from a tag such as `en`, `en-US` or `ru_RU`; None otherwise."""
    if not value:
        return None
    language = value.strip().replace("_", "-").split("-")[0].lower()
    try:
        return Locale(language)
    except ValueError:
        return None


def negotiate(accept_language: str | None) -> Locale:
    """The supported locale the browser prefers most (RFC 9110 quality values), else Russian."""
    ranked: list[tuple[float, int, Locale]] = []
    for position, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        locale = parse_locale(tag)
        if locale is not None and quality > 0:
            ranked.append((-quality, position, locale))
    return min(ranked)[2] if ranked else DEFAULT_LOCALE


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone of that name, or None for an empty or unknown name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


# Formatting a time with Babel costs 10-20 us; a page draws one to three per row and message,
# mostly the same ones again (a refreshed list, the thread's messages, live updates). The result
# depends only on the arguments, so it is kept (a few thousand entries, a few hundred KB).
FORMAT_CACHE = 8192


@lru_cache(maxsize=FORMAT_CACHE)
def _datetime(value: datetime, format: str, timezone: ZoneInfo, locale: str) -> str:
    return dates.format_datetime(value, format, tzinfo=timezone, locale=locale)


@lru_cache(maxsize=FORMAT_CACHE)
def _date(value: date, format: str, locale: str) -> str:
    return dates.format_date(value, format, locale=locale)


@lru_cache(maxsize=FORMAT_CACHE)
def _skeleton(value: date, skeleton: str, locale: str) -> str:
    return dates.format_skeleton(skeleton, value, locale=locale)


@lru_cache(maxsize=FORMAT_CACHE)
def _time(value: datetime, timezone: ZoneInfo, locale: str) -> str:
    return dates.format_time(value, "short", tzinfo=timezone, locale=locale)


@dataclass(frozen=True)
class Formats:
    """Dates, times, durations and numbers in one locale and timezone (Babel's CLDR data)."""

    locale: Locale
    timezone: ZoneInfo = UTC_ZONE

    @property
    def translations(self) -> Translations:
        return translations(self.locale)

    def datetime(self, value: datetime, format: str = "short") -> str:
        """`27.11.2026, 10:03` in ru, `11/27/26, 10:03 AM` in en (format: short, medium, long)."""
        return _datetime(value, format, self.timezone, self.locale.value)

    def date(self, value: datetime, format: str = "short") -> str:
        return _date(value.astimezone(self.timezone).date(), format, self.locale.value)

    def time(self, value: datetime) -> str:
        return _time(value, self.timezone, self.locale.value)

    def duration(self, delta: timedelta) -> str:
        """`2 мин`, `1 ч`: the largest unit, rounded, abbreviated."""
        return dates.format_timedelta(delta, format="short", threshold=1, locale=self.locale.value)

    def relative(self, value: datetime, now: datetime | None = None) -> str:
        """How a list says when: `2 мин`, `3 ч` today, `вчера`, a weekday within a week, else a date."""
        now = now or datetime.now(UTC)
        delta = now - value
        if delta < timedelta(minutes=1):
            return self.translations.gettext("now")
        here, today = value.astimezone(self.timezone), now.astimezone(self.timezone)
        days = (today.date() - here.date()).days
        if days == 0:
            return self.duration(delta)
        if days == 1:
            return self.translations.gettext("yesterday")
        if days < 7:
            return _date(here.date(), "EEE", self.locale.value)
        if here.year == today.year:
            return _skeleton(here.date(), "MMMd", self.locale.value)
        return _date(here.date(), "short", self.locale.value)

    def number(self, value: float) -> str:
        return numbers.format_decimal(value, locale=self.locale.value)
