"""Branch working hours (seed 003, item 15): is the branch open, and when does that change.

Rules, so the admin screen, the widget banner and the conversation workflow agree:

- The schedule is a wall clock in the branch's timezone: for each weekday (0 = Monday ..
  6 = Sunday) a list of ``("HH:MM", "HH:MM")`` intervals, start included, end excluded;
  ``"24:00"`` ends an interval at the following midnight. A weekday without intervals is closed.
- ``always_open=True`` means around the clock and excludes a weekly schedule; an empty
  schedule without it means never open (a suspended branch), not 24/7, so clearing every
  interval in the admin cannot silently open a branch around the clock.
- ``holidays`` are local dates closed all day, in both modes.
- Intervals that touch, within a day or across midnight (Mon ``22:00-24:00`` and Tue
  ``00:00-06:00``), form one open period: no closing, no "we are closed" message in between.
- Daylight saving: a boundary in the spring-forward gap takes effect when the clocks jump
  (``02:30`` on a day that skips 02:00-03:00 means 03:00 new time); a boundary in the
  fall-back repeated hour takes effect at its first occurrence. Both keep the mapping from
  wall time to instants monotonic, so intervals never overlap or reorder after conversion.

All instants passed in must be timezone-aware; the functions never read the clock, so they
are safe inside a workflow. Results are UTC.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

# Searching further than a year and a bit only finds a branch that is closed for good.
HORIZON_DAYS = 400
# off_hours_period_key of a branch that does not open again within the horizon.
NEVER_OPENS = "never"

_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
_MINUTES_PER_DAY = 24 * 60


def _check_hhmm(value: str) -> str:
    if not _HHMM.fullmatch(value):
        raise ValueError(f"time must be HH:MM between 00:00 and 24:00, got {value!r}")
    return value


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


HHMM = Annotated[str, AfterValidator(_check_hhmm)]
Weekday = Annotated[int, Field(ge=0, le=6)]
Interval = tuple[HHMM, HHMM]


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a timezone-aware datetime is required, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def _to_utc(day: date, minute: int, tz: ZoneInfo) -> datetime:
    """The instant the branch's wall clock reaches `minute` after midnight of `day`.

    Ambiguous (repeated) wall times resolve to the first occurrence (fold=0). Nonexistent
    ones resolve to the jump itself: fold=0 would put them a gap-length later, which would
    let an interval ending in the gap end after the next one starts.
    """
    wall = datetime.combine(day, time()) + timedelta(minutes=minute)
    first = wall.replace(tzinfo=tz).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == wall:
        return first
    # In a gap: the jump lies between the fold=1 reading (old offset still in force) and
    # the fold=0 one. tzdb transitions fall on whole seconds, so bisect on seconds.
    before = int(wall.replace(tzinfo=tz, fold=1).timestamp())
    after = int(first.timestamp())
    offset_after = first.astimezone(tz).utcoffset()
    while after - before > 1:
        middle = (before + after) // 2
        if datetime.fromtimestamp(middle, tz).utcoffset() == offset_after:
            after = middle
        else:
            before = middle
    return datetime.fromtimestamp(after, UTC)


class WorkingHours(BaseModel):
    """A branch's weekly opening hours; see the module docstring for the exact rules."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timezone: str
    weekly: dict[Weekday, list[Interval]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list)
    always_open: bool = False

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {name!r}; use an IANA name such as 'Europe/Moscow'") from None
        return name

    @field_validator("weekly")
    @classmethod
    def _sorted_disjoint(cls, weekly: dict[int, list[Interval]]) -> dict[int, list[Interval]]:
        normalized: dict[int, list[Interval]] = {}
        for weekday, intervals in sorted(weekly.items()):
            for start, end in intervals:
                if _minutes(end) <= _minutes(start):
                    raise ValueError(f"weekday {weekday}: interval {start}-{end} must end after it starts")
            ordered = sorted(intervals, key=lambda interval: _minutes(interval[0]))
            for (_, previous_end), (start, end) in itertools.pairwise(ordered):
                if _minutes(start) < _minutes(previous_end):
                    raise ValueError(f"weekday {weekday}: interval {start}-{end} overlaps one ending at {previous_end}")
            if ordered:
                normalized[weekday] = ordered
        return normalized

    @model_validator(mode="after")
    def _one_mode(self) -> WorkingHours:
        if self.always_open and self.weekly:
            raise ValueError("always_open excludes a weekly schedule: set one or the other")
        return self

    def is_open(self, at: datetime) -> bool:
        """Whether the branch is open at the instant `at`."""
        at_utc = _require_aware(at)
        span = self._first_span_ending_after(at_utc)
        return span is not None and span[0] <= at_utc

    def next_opening(self, at: datetime) -> datetime | None:
        """The first instant at or after `at` when the branch is open: `at` itself while open.

        None when it does not open within HORIZON_DAYS, so a caller waiting for the
        opening sleeps for ``next_opening(now) - now`` and never for ever.
        """
        at_utc = _require_aware(at)
        span = self._first_span_ending_after(at_utc)
        return None if span is None else max(span[0], at_utc)

    def next_closing(self, at: datetime) -> datetime | None:
        """The first instant at or after `at` when the branch is closed: `at` itself while closed.

        Touching intervals are one period, so this looks past midnights and day boundaries.
        None when the current open period runs past HORIZON_DAYS (a 24/7 branch).
        """
        at_utc = _require_aware(at)
        closing = at_utc
        for start, end in self._spans(at_utc):
            if start > closing:
                return closing
            closing = max(closing, end)
        tz, first_day = self._local_start(at_utc)
        horizon = _to_utc(first_day + timedelta(days=HORIZON_DAYS + 1), 0, tz)
        return None if closing >= horizon else closing

    def off_hours_period_key(self, at: datetime) -> str | None:
        """A name for the closed period containing `at`, None while open.

        It is the ISO UTC instant of the next opening (NEVER_OPENS if none), so two moments
        share a key exactly when no opening lies between them: "send the offline reply once
        per closed period" is a comparison with the key stored at the last reply. Editing
        the schedule may change the key and so allow one more reply.
        """
        at_utc = _require_aware(at)
        opening = self.next_opening(at_utc)
        if opening == at_utc:
            return None
        return NEVER_OPENS if opening is None else opening.isoformat()

    def _first_span_ending_after(self, at_utc: datetime) -> tuple[datetime, datetime] | None:
        return next((span for span in self._spans(at_utc) if span[1] > at_utc), None)

    def _local_start(self, at_utc: datetime) -> tuple[ZoneInfo, date]:
        tz = ZoneInfo(self.timezone)
        return tz, at_utc.astimezone(tz).date()

    def _spans(self, at_utc: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Open intervals ``[start, end)`` in UTC, in order, from `at`'s local date on.

        No earlier day can still be open at `at`: its intervals end by the following
        midnight, and `_to_utc` never moves a boundary past it. `_to_utc` is monotonic, so
        the spans never overlap; touching ones are merged by `next_closing` alone, the
        only answer that depends on where an open period ends.
        """
        tz, first_day = self._local_start(at_utc)
        holidays = set(self.holidays)
        for offset in range(HORIZON_DAYS + 1):
            day = first_day + timedelta(days=offset)
            if day in holidays:
                continue
            if self.always_open:
                intervals = [(0, _MINUTES_PER_DAY)]
            else:
                intervals = [(_minutes(s), _minutes(e)) for s, e in self.weekly.get(day.weekday(), [])]
            for start_minute, end_minute in intervals:
                start, end = _to_utc(day, start_minute, tz), _to_utc(day, end_minute, tz)
                if start < end:  # an interval wholly inside a spring-forward gap does not happen
                    yield start, end
