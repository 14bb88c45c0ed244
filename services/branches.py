"""Branches, their working hours and the region rules that route contacts to them (seed 003,
items 1 and 15), as admins edit them. The rules themselves are domain/schedule.py and
domain/routing.py; this module keeps the rows consistent and audits every change.

A branch's timezone lives in its row and in its schedule (WorkingHours.timezone); they are
always written together. A schedule of `{}` means open around the clock.
"""

from __future__ import annotations

import itertools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contracts import RowId
from domain.routing import RegionRule as RuleSpec, matching_rule
from domain.schedule import WorkingHours
from domain.wording import N_, invalid
from infra.models import Branch, Conversation, Operator, RegionRule
from services import audit
from services.assignment import LIVE
from services.errors import Forbidden, Invalid, unique_or_invalid
from services.operators import require_admin

WEEKDAYS = range(7)  # 0 = Monday, as domain.schedule counts them
INTERVALS_PER_DAY = 8
HOLIDAYS_MAX = 400
_HHMM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")


@cache
def timezones() -> list[str]:
    """Every IANA zone tzdata knows, sorted (the pickers offer these)."""
    return sorted(zoneinfo.available_timezones())


def _check_timezone(name: str) -> str:
    if name not in timezones():
        raise invalid(N_("Unknown timezone %(name)s: choose one from the list, such as Europe/Moscow."), name=name)
    return name


class BranchInput(BaseModel):
    """A branch as a form or the API sends it."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(min_length=1, max_length=64)
    is_default: bool = False

    _zone = field_validator("timezone")(_check_timezone)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def day_intervals(intervals: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """One day's opening intervals, checked and sorted; an end of 00:00 means midnight (24:00),
    as a time picker cannot say 24:00."""
    checked = []
    for start, end in intervals:
        if not (_HHMM.fullmatch(start) and _HHMM.fullmatch(end)):
            raise invalid(N_("Times are HH:MM, from 00:00 to 24:00."))
        end = "24:00" if end == "00:00" else end
        if _minutes(end) <= _minutes(start):
            raise invalid(N_("%(start)s-%(end)s ends before it starts."), start=start, end=end)
        checked.append((start, end))
    checked.sort(key=lambda interval: _minutes(interval[0]))
    for first, second in itertools.pairwise(checked):
        if _minutes(second[0]) < _minutes(first[1]):
            raise invalid(N_("%(first)s and %(second)s overlap."), first="-".join(first), second="-".join(second))
    return checked


class DayHours(BaseModel):
    """One weekday's intervals, for a form that shows a day's error beside that day."""

    intervals: list[tuple[str, str]] = Field(default_factory=list, max_length=INTERVALS_PER_DAY)

    _checked = field_validator("intervals")(day_intervals)


class HoursInput(BaseModel):
    """A branch's week: open around the clock, or intervals per weekday; holidays close whole
    local dates in both modes. A week without intervals (and not around the clock) is closed."""

    model_config = ConfigDict(extra="forbid")

    always_open: bool = False
    weekly: dict[int, list[tuple[str, str]]] = Field(default_factory=dict)
    holidays: list[date] = Field(default_factory=list, max_length=HOLIDAYS_MAX)

    @field_validator("weekly")
    @classmethod
    def _days(cls, weekly: dict[int, list[tuple[str, str]]]) -> dict[int, list[tuple[str, str]]]:
        if any(day not in WEEKDAYS for day in weekly):
            raise invalid(N_("Weekdays are 0 (Monday) to 6 (Sunday)."))
        return {day: DayHours(intervals=intervals).intervals for day, intervals in sorted(weekly.items()) if intervals}

    def schedule(self, timezone: str) -> dict[str, Any]:
        """The branch's working_hours JSON ({} for around the clock without holidays)."""
        holidays = sorted(set(self.holidays))
        if self.always_open and not holidays:
            return {}
        hours = WorkingHours(
            timezone=timezone,
            always_open=self.always_open,
            weekly={} if self.always_open else self.weekly,
            holidays=holidays,
        )
        return hours.model_dump(mode="json")


def hours_of(branch: Branch) -> HoursInput:
    """The branch's schedule as the editor shows it."""
    if not branch.working_hours:
        return HoursInput(always_open=True)
    hours = WorkingHours.model_validate(branch.working_hours)
    return HoursInput(always_open=hours.always_open, weekly=dict(hours.weekly), holidays=list(hours.holidays))


class RegionRuleInput(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    region: str = Field(min_length=1, max_length=100)
    branch_id: RowId


@dataclass(frozen=True)
class RoutingAnswer:
    """Which branch a contact from `region` goes to, and why."""

    region: str | None
    branch: Branch | None
    rule: RegionRule | None  # None: no rule applied, the default branch takes it


def _snapshot(branch: Branch) -> dict[str, Any]:
    return {"name": branch.name, "timezone": branch.timezone, "is_default": branch.is_default}


async def list_branches(db: AsyncSession) -> list[Branch]:
    return list((await db.scalars(select(Branch).order_by(Branch.is_default.desc(), func.lower(Branch.name)))).all())


async def get_branch(db: AsyncSession, branch_id: int, *, lock: bool = False) -> Branch:
    branch = await db.get(Branch, branch_id, with_for_update=lock)
    if branch is None:
        raise Forbidden()
    return branch


async def _become_default(db: AsyncSession, branch: Branch) -> None:
    # one default at a time (a unique partial index): the old one steps down first
    await db.execute(update(Branch).where(Branch.is_default, Branch.id != branch.id).values(is_default=False))


def _unique_name(db: AsyncSession):
    return unique_or_invalid(db, N_("A branch with this name exists already."), field="name")


async def create_branch(db: AsyncSession, actor: Operator, data: BranchInput) -> Branch:
    require_admin(actor)
    branch = Branch(name=data.name, timezone=data.timezone, is_default=data.is_default, working_hours={})
    async with _unique_name(db):
        if data.is_default:
            await _become_default(db, branch)
        db.add(branch)
    audit.record_change(
        db,
        "branch.created",
        operator_id=actor.id,
        subject={"branch_id": branch.id},
        before=None,
        after=_snapshot(branch),
    )
    return branch


async def update_branch(db: AsyncSession, actor: Operator, branch_id: int, data: BranchInput) -> Branch:
    require_admin(actor)
    branch = await get_branch(db, branch_id, lock=True)
    if branch.is_default and not data.is_default:
        raise Invalid(
            N_("One branch is always the default: make another branch the default instead."), field="is_default"
        )
    before = _snapshot(branch)
    async with _unique_name(db):
        if data.is_default and not branch.is_default:
            await _become_default(db, branch)
        branch.name, branch.timezone, branch.is_default = data.name, data.timezone, data.is_default
        if branch.working_hours:
            branch.working_hours = {**branch.working_hours, "timezone": data.timezone}
    audit.record_change(
        db,
        "branch.updated",
        operator_id=actor.id,
        subject={"branch_id": branch.id},
        before=before,
        after=_snapshot(branch),
    )
    return branch


async def set_working_hours(db: AsyncSession, actor: Operator, branch_id: int, data: HoursInput) -> Branch:
    require_admin(actor)
    branch = await get_branch(db, branch_id, lock=True)
    before = branch.working_hours
    branch.working_hours = data.schedule(branch.timezone)
    audit.record_change(
        db,
        "branch.working_hours",
        operator_id=actor.id,
        subject={"branch_id": branch.id},
        before={"working_hours": before},
        after={"working_hours": branch.working_hours},
    )
    return branch


async def delete_branch(db: AsyncSession, actor: Operator, branch_id: int) -> None:
    """Only a branch nobody works in and no open conversation waits in; its region rules and
    canned replies go with it."""
    require_admin(actor)
    branch = await get_branch(db, branch_id, lock=True)
    if branch.is_default:
        raise Invalid(N_("The default branch cannot be deleted: make another branch the default first."))
    staff = await db.scalar(select(func.count()).select_from(Operator).where(Operator.branch_id == branch.id))
    if staff:
        raise Invalid(N_("Move this branch's operators to another branch first."))
    waiting = await db.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.branch_id == branch.id, Conversation.status.in_(LIVE))
    )
    if waiting:
        raise Invalid(N_("This branch still has open conversations: transfer them first."))
    audit.record_change(
        db,
        "branch.deleted",
        operator_id=actor.id,
        subject={"branch_id": branch.id},
        before=_snapshot(branch),
        after=None,
    )
    await db.delete(branch)
    await db.flush()


async def branch_loads(db: AsyncSession) -> dict[int, tuple[int, int]]:
    """Per branch: (operators, open conversations), for the list."""
    staff = dict(
        (
            await db.execute(
                select(Operator.branch_id, func.count()).where(Operator.is_active).group_by(Operator.branch_id)
            )
        ).all()
    )
    open_ = dict(
        (
            await db.execute(
                select(Conversation.branch_id, func.count())
                .where(Conversation.status.in_(LIVE))
                .group_by(Conversation.branch_id)
            )
        ).all()
    )
    return {branch_id: (staff.get(branch_id, 0), open_.get(branch_id, 0)) for branch_id in {*staff, *open_} - {None}}


# -- region rules ----------------------------------------------------------------------------


async def list_rules(db: AsyncSession) -> list[RegionRule]:
    return list((await db.scalars(select(RegionRule).order_by(func.lower(RegionRule.region)))).all())


async def add_rule(db: AsyncSession, actor: Operator, data: RegionRuleInput) -> RegionRule:
    """Regions match ignoring case (domain.routing), so one rule per region in any spelling."""
    require_admin(actor)
    if await db.get(Branch, data.branch_id) is None:
        raise Invalid(N_("That branch does not exist."), field="branch_id")
    taken = await db.scalar(select(RegionRule.id).where(func.lower(RegionRule.region) == data.region.lower()))
    if taken is not None:
        raise Invalid(N_("This region has a rule already: delete it first."), field="region")
    rule = RegionRule(region=data.region, branch_id=data.branch_id)
    async with unique_or_invalid(db, N_("This region has a rule already: delete it first."), field="region"):
        db.add(rule)
    audit.record_change(
        db,
        "region_rule.created",
        operator_id=actor.id,
        subject={"region_rule_id": rule.id},
        before=None,
        after={"region": rule.region, "branch_id": rule.branch_id},
    )
    return rule


async def delete_rule(db: AsyncSession, actor: Operator, rule_id: int) -> None:
    require_admin(actor)
    rule = await db.get(RegionRule, rule_id, with_for_update=True)
    if rule is None:
        raise Forbidden()
    audit.record_change(
        db,
        "region_rule.deleted",
        operator_id=actor.id,
        subject={"region_rule_id": rule.id},
        before={"region": rule.region, "branch_id": rule.branch_id},
        after=None,
    )
    await db.delete(rule)
    await db.flush()


async def which_branch(db: AsyncSession, region: str | None, *, inbox_default: int | None = None) -> RoutingAnswer:
    """The branch a contact from `region` goes to, by the rule the conversation workflow applies
    (domain.routing): a region rule, else the inbox's default branch, else the default one."""
    rules = await list_rules(db)
    rule = matching_rule([RuleSpec(region=r.region, branch_id=r.branch_id) for r in rules], region)
    decided = next((r for r in rules if rule is not None and r.region == rule.region), None)
    branch_id = decided.branch_id if decided else inbox_default
    if branch_id is None:
        branch_id = await db.scalar(select(Branch.id).order_by(Branch.is_default.desc(), Branch.id).limit(1))
    return RoutingAnswer(region, await db.get(Branch, branch_id) if branch_id else None, decided)
