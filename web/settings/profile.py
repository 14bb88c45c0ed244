"""Settings -> My profile, for every operator: name, language, timezone, notifications, password,
and their sessions with "sign out elsewhere" (services/operators.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from domain.enums import NotifyMode
from services import operators
from services.branches import timezones
from services.errors import Invalid
from services.operators import NotificationsInput, PasswordChange, ProfileInput
from web import labels
from web.deps import CsrfChecked, PageDep, SessionDep
from web.forms import Form, read_form
from web.i18n import N_, translations
from web.settings.nav import done, render_settings
from web.templating import PageContext, remember_preferences

router = APIRouter(prefix="/settings/profile")
HOME = "/settings/profile"
NOTIFY_MODES = {
    NotifyMode.ALL: N_("Every new conversation and message I can see"),
    NotifyMode.MINE: N_("Only conversations assigned to me"),
    NotifyMode.OFF: N_("None"),
}


async def _page(page: PageContext, db, *, forms: dict[str, Form] | None = None, status_code: int = 200) -> Response:
    context = {
        "forms": forms or {},
        "sessions": await operators.sessions_of(db, page.operator),
        "this_session": page.request.state.web_session.id,
        "timezones": timezones(),
        "locale_options": [(locale.value, name) for locale, name in labels.LANGUAGE.items()],
        "notify_modes": [(mode.value, page.gettext(text)) for mode, text in NOTIFY_MODES.items()],
    }
    return render_settings(page, "settings/profile.html", context, status_code=status_code)


@router.get("", name="settings_profile")
async def show(page: PageDep, db: SessionDep) -> Response:
    return await _page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def update(page: PageDep, db: SessionDep) -> Response:
    form = await read_form(page, ProfileInput)
    if form.data is None:
        return await _page(page, db, forms={"profile": form}, status_code=422)
    await operators.update_profile(db, page.operator, form.data)
    await db.commit()
    # said in the language just chosen
    response = done(page, HOME, translations(form.data.locale).gettext("Your profile is saved."))
    remember_preferences(page.request, response, locale=page.operator.locale)
    return response


@router.post("/notifications", dependencies=[CsrfChecked])
async def notifications(page: PageDep, db: SessionDep) -> Response:
    form = await read_form(page, NotificationsInput)
    if form.data is None:
        return await _page(page, db, forms={"notifications": form}, status_code=422)
    await operators.set_notifications(db, page.operator, form.data)
    await db.commit()
    return done(page, HOME, page.gettext("Notification settings saved."))


@router.post("/password", dependencies=[CsrfChecked])
async def password(page: PageDep, db: SessionDep) -> Response:
    form = await read_form(page, PasswordChange)
    if form.data is not None:
        try:
            ended = await operators.change_password(
                db, page.operator, form.data, session_id=page.request.state.web_session.id
            )
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            message = page.ngettext(
                "Password changed; %(num)d other session was signed out.",
                "Password changed; %(num)d other sessions were signed out.",
                ended,
            )
            return done(page, HOME, message)
    form.values = {}  # passwords are never written back into the page
    return await _page(page, db, forms={"password": form}, status_code=422)


@router.post("/sessions/end-others", dependencies=[CsrfChecked])
async def end_others(page: PageDep, db: SessionDep) -> Response:
    ended = await operators.end_other_sessions(db, page.operator, session_id=page.request.state.web_session.id)
    await db.commit()
    message = page.ngettext("%(num)d other session signed out.", "%(num)d other sessions signed out.", ended)
    return done(page, HOME, message)
