"""Settings -> Branches: each branch's name, timezone, default flag and working hours, and the
region rules with the "which branch would this region go to?" tester (services/branches.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from babel.dates import get_day_names
from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from domain.schedule import WorkingHours
from services import branches
from services.assignment import forget_branch_schedules
from services.branches import BranchInput, DayHours, HoursInput, RegionRuleInput
from services.errors import Invalid
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import GENERAL, Form, errors_of, read_form
from web.settings.nav import Id, done, render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings/branches")
HOME = "/settings/branches"
REGIONS = "/settings/branches/regions"


def open_now(branch) -> bool:
    hours = branch.working_hours
    return not hours or WorkingHours.model_validate(hours).is_open(datetime.now(UTC))


async def _list_page(page: PageContext, db, form: Form | None = None, status_code: int = 200) -> Response:
    all_branches = await branches.list_branches(db)
    context = {
        "branches": all_branches,
        "loads": await branches.branch_loads(db),
        "open_now": {b.id: open_now(b) for b in all_branches},
        "timezones": branches.timezones(),
        "form": form,
    }
    return render_settings(page, "settings/branches.html", context, status_code=status_code)


@router.get("", name="settings_branches")
async def list_branches(page: AdminPage, db: SessionDep) -> Response:
    return await _list_page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def create_branch(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, BranchInput)
    if form.data is not None:
        try:
            branch = await branches.create_branch(db, page.operator, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            forget_branch_schedules()
            return done(page, f"{HOME}/{branch.id}", page.gettext("Branch “%(name)s” added.", name=branch.name))
    return await _list_page(page, db, form, status_code=422)


# -- region rules (before /{branch_id}, which would take "regions" for an id) --------------


async def _regions_page(
    page: PageContext, db, *, form: Form | None = None, region: str | None = None, status_code: int = 200
) -> Response:
    all_branches = await branches.list_branches(db)
    answer = await branches.which_branch(db, region) if region is not None and region.strip() else None
    context = {
        "rules": await branches.list_rules(db),
        "branch_names": {b.id: b.name for b in all_branches},
        "branch_options": [(b.id, b.name) for b in all_branches],
        "form": form,
        "tested": region,
        "answer": answer,
        # an IP can be tried once the app has a GeoIP resolver (the website widget brings it)
        "ip_lookup": page.request.app.state.region_resolver is not None,
    }
    return render_settings(page, "settings/regions.html", context, status_code=status_code)


@router.get("/regions", name="settings_regions")
async def list_rules(
    page: AdminPage,
    db: SessionDep,
    region: str | None = Query(None, max_length=100),
    ip: str | None = Query(None, max_length=64),
) -> Response:
    resolver = page.request.app.state.region_resolver
    if ip and resolver is not None and not (region or "").strip():
        region = resolver.region_for(ip.strip()) or ""
    return await _regions_page(page, db, region=region)


@router.post("/regions", dependencies=[CsrfChecked])
async def add_rule(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, RegionRuleInput)
    if form.data is not None:
        try:
            rule = await branches.add_rule(db, page.operator, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, REGIONS, page.gettext("Rule for %(region)s added.", region=rule.region))
    return await _regions_page(page, db, form=form, status_code=422)


@router.post("/regions/{rule_id}/delete", dependencies=[CsrfChecked])
async def delete_rule(page: AdminPage, db: SessionDep, rule_id: Id) -> Response:
    await branches.delete_rule(db, page.operator, rule_id)
    await db.commit()
    return done(page, REGIONS, page.gettext("Rule deleted."))


# -- one branch -----------------------------------------------------------------------------


def _weekday_names(page: PageContext) -> list[str]:
    names = get_day_names("wide", locale=page.locale.value)
    return [names[day].capitalize() for day in branches.WEEKDAYS]


async def _branch_page(
    page: PageContext,
    db,
    branch_id: int,
    *,
    form: Form | None = None,
    hours_form: Form | None = None,
    status_code: int = 200,
) -> Response:
    branch = await branches.get_branch(db, branch_id)
    context = {
        "branch": branch,
        "form": form,
        "hours_form": hours_form,
        "hours": branches.hours_of(branch),
        "weekdays": _weekday_names(page),
        "timezones": branches.timezones(),
        "open_now": open_now(branch),
        "per_day": branches.INTERVALS_PER_DAY,
    }
    return render_settings(page, "settings/branch.html", context, status_code=status_code)


@router.get("/{branch_id}", name="settings_branch")
async def show_branch(page: AdminPage, db: SessionDep, branch_id: Id) -> Response:
    return await _branch_page(page, db, branch_id)


@router.post("/{branch_id}", dependencies=[CsrfChecked])
async def update_branch(page: AdminPage, db: SessionDep, branch_id: Id) -> Response:
    form = await read_form(page, BranchInput)
    if form.data is not None:
        try:
            branch = await branches.update_branch(db, page.operator, branch_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            forget_branch_schedules()
            return done(page, f"{HOME}/{branch.id}", page.gettext("Branch “%(name)s” saved.", name=branch.name))
    return await _branch_page(page, db, branch_id, form=form, status_code=422)


def read_hours(page: PageContext, posted: FormData) -> Form[HoursInput]:
    """The week editor's fields: `mode` (always | weekly), per weekday `d<n>_start` / `d<n>_end`
    repeated in pairs, and `holidays`, one date a line. A day's error is keyed `d<n>`."""
    errors: dict[str, str] = {}
    weekly: dict[int, list[tuple[str, str]]] = {}
    values: dict[str, object] = {"mode": posted.get("mode"), "holidays": posted.get("holidays") or ""}
    for day in branches.WEEKDAYS:
        starts, ends = posted.getlist(f"d{day}_start"), posted.getlist(f"d{day}_end")
        pairs = [(str(s).strip(), str(e).strip()) for s, e in zip(starts, ends, strict=False)]
        values[f"d{day}"] = pairs
        filled = [(s, e) for s, e in pairs if s or e]
        if any(not (s and e) for s, e in filled):
            errors[f"d{day}"] = page.gettext("Give both the opening and the closing time.")
            continue
        try:
            weekly[day] = DayHours(intervals=filled).intervals
        except ValidationError as exc:
            errors[f"d{day}"] = next(iter(errors_of(page, exc).values()))
    holidays: list[date] = []
    for line in str(values["holidays"]).split():
        try:
            holidays.append(date.fromisoformat(line.strip().rstrip(",;")))
        except ValueError:
            errors["holidays"] = page.gettext("%(value)s is not a date as YYYY-MM-DD.", value=line[:20])
            break
    if values["mode"] not in ("always", "weekly"):
        errors["mode"] = page.gettext("Choose one of the options.")
    if errors:
        return Form(values, errors=errors)
    try:
        data = HoursInput(always_open=values["mode"] == "always", weekly=weekly, holidays=holidays)
    except ValidationError as exc:
        return Form(values, errors=errors_of(page, exc) or {GENERAL: page.gettext("This value is not valid.")})
    return Form(values, data=data)


@router.post("/{branch_id}/hours", dependencies=[CsrfChecked])
async def set_hours(page: AdminPage, db: SessionDep, branch_id: Id) -> Response:
    form = read_hours(page, await page.request.form())
    if form.data is not None:
        branch = await branches.set_working_hours(db, page.operator, branch_id, form.data)
        await db.commit()
        forget_branch_schedules()
        return done(page, f"{HOME}/{branch.id}", page.gettext("Working hours of “%(name)s” saved.", name=branch.name))
    return await _branch_page(page, db, branch_id, hours_form=form, status_code=422)


@router.post("/{branch_id}/delete", dependencies=[CsrfChecked])
async def delete_branch(page: AdminPage, db: SessionDep, branch_id: Id) -> Response:
    try:
        await branches.delete_branch(db, page.operator, branch_id)
    except Invalid as refusal:
        form = Form({}, errors={GENERAL: page.gettext(refusal.message, **refusal.params)})
        return await _branch_page(page, db, branch_id, form=form, status_code=422)
    await db.commit()
    forget_branch_schedules()
    return done(page, HOME, page.gettext("Branch deleted."))
