"""Settings -> Operators: invite (a one-time link, sent by e-mail when SMTP is set up, or an
initial password shown once), role, branch and languages, password resets, deactivation
(services/accounts.py)."""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from babel import Locale as BabelLocale
from fastapi import APIRouter, Form as FormField
from fastapi.responses import Response
from sqlalchemy import select

from domain.enums import OperatorRole
from infra.mail import MailError
from infra.models import Branch
from services import accounts, presence
from services.accounts import SPOKEN_LANGUAGES, AccountInput, InviteInput, Issued
from services.errors import Invalid
from web import labels
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import GENERAL, Form, read_form
from web.settings.nav import Id, done, render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings/operators")
HOME = "/settings/operators"
log = logging.getLogger(__name__)


def language_names(page: PageContext) -> list[tuple[str, str]]:
    """(code, name in the page's language) for every language an operator may answer in."""
    return [
        (code, BabelLocale.parse(code).get_display_name(page.locale.value).capitalize()) for code in SPOKEN_LANGUAGES
    ]


async def _choices(page: PageContext, db) -> dict:
    branches = [(b.id, b.name) for b in await db.scalars(select(Branch).order_by(Branch.name))]
    return {
        "branch_options": branches,
        "branch_names": dict(branches),
        "role_options": [(role.value, page.gettext(labels.ROLE[role])) for role in OperatorRole],
        "languages": language_names(page),
    }


async def _list_page(
    page: PageContext, db, form: Form | None = None, status_code: int = 200, presence_form: Form | None = None
) -> Response:
    context = {
        "accounts": await accounts.list_accounts(db),
        "form": form,
        "presence_form": presence_form,
        "offline_after": await presence.offline_after_minutes(db),
        **await _choices(page, db),
    }
    return render_settings(page, "settings/operators.html", context, status_code=status_code)


@router.get("", name="settings_operators")
async def list_operators(page: AdminPage, db: SessionDep) -> Response:
    return await _list_page(page, db)


@router.post("/presence", dependencies=[CsrfChecked], name="settings_presence")
async def change_presence(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, presence.PresenceInput)
    if form.data is None:
        return await _list_page(page, db, presence_form=form, status_code=422)
    await presence.set_offline_after(db, page.operator, form.data)
    await db.commit()
    return done(page, HOME, page.gettext("Saved."))


def link_address(page: PageContext, token: str) -> str:
    return f"{page.request.app.state.settings.public_url.rstrip('/')}/invite/{token}"


async def _hand_over(page: PageContext, issued: Issued, *, reset: bool) -> Response:
    """The one time the link or password is shown (and e-mailed, when there is a mailer)."""
    operator = issued.operator
    link = link_address(page, issued.link_token) if issued.link_token else None
    emailed, mail_error = False, None
    mailer = page.request.app.state.mailer
    if link and mailer is not None:
        until = page.formats.datetime(issued.expires_at, "medium")
        body = page.gettext(
            "Hello, %(name)s!\n\n%(admin)s invites you to the Switchboard cabinet. Open this link to set your "
            "password; it works once, until %(until)s:\n\n%(link)s\n",
            name=operator.display_name,
            admin=page.operator.display_name,
            until=until,
            link=link,
        )
        if reset:
            body = page.gettext(
                "Hello, %(name)s!\n\nOpen this link to set a new password for the Switchboard cabinet; it works "
                "once, until %(until)s:\n\n%(link)s\n",
                name=operator.display_name,
                until=until,
                link=link,
            )
        try:
            await mailer.send(operator.email, page.gettext("Your Switchboard account"), body)
            emailed = True
        except MailError as exc:
            log.warning("could not e-mail operator %s their link: %s", operator.id, exc)
            mail_error = str(exc)
    context = {
        "account": operator,
        "link": link,
        "password": issued.password,
        "expires_at": issued.expires_at,
        "emailed": emailed,
        "mail_error": mail_error,
        "reset": reset,
    }
    response = render_settings(page, "settings/handover.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/invite", dependencies=[CsrfChecked])
async def invite(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, InviteInput)
    if form.data is not None:
        try:
            issued = await accounts.invite(db, page.operator, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return await _hand_over(page, issued, reset=False)
    return await _list_page(page, db, form, status_code=422)


async def _account_page(page: PageContext, db, operator_id: int, form: Form | None = None, status_code: int = 200):
    account = await accounts.get_account(db, operator_id)
    context = {"account": account, "form": form, "pending": accounts.is_pending(account), **await _choices(page, db)}
    return render_settings(page, "settings/operator.html", context, status_code=status_code)


@router.get("/{operator_id}", name="settings_operator")
async def show_operator(page: AdminPage, db: SessionDep, operator_id: Id) -> Response:
    return await _account_page(page, db, operator_id)


@router.post("/{operator_id}", dependencies=[CsrfChecked])
async def update_operator(page: AdminPage, db: SessionDep, operator_id: Id) -> Response:
    form = await read_form(page, AccountInput)
    if form.data is not None:
        try:
            account = await accounts.update_account(db, page.operator, operator_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            message = page.gettext("%(name)s saved.", name=account.display_name)
            return done(page, f"{HOME}/{account.id}", message)
    return await _account_page(page, db, operator_id, form, status_code=422)


async def _refused(page: PageContext, db, operator_id: int, refusal: Invalid) -> Response:
    form = Form({}, errors={GENERAL: page.gettext(refusal.message, **refusal.params)})
    return await _account_page(page, db, operator_id, form, status_code=422)


@router.post("/{operator_id}/deactivate", dependencies=[CsrfChecked])
async def deactivate(page: AdminPage, db: SessionDep, operator_id: Id) -> Response:
    try:
        returned = await accounts.deactivate(db, page.operator, operator_id)
    except Invalid as refusal:
        return await _refused(page, db, operator_id, refusal)
    await db.commit()
    message = page.ngettext(
        "Deactivated; %(num)d open conversation went back to the branch.",
        "Deactivated; %(num)d open conversations went back to the branch.",
        len(returned),
    )
    return done(page, f"{HOME}/{operator_id}", message)


@router.post("/{operator_id}/reactivate", dependencies=[CsrfChecked])
async def reactivate(page: AdminPage, db: SessionDep, operator_id: Id) -> Response:
    account = await accounts.reactivate(db, page.operator, operator_id)
    await db.commit()
    return done(page, f"{HOME}/{operator_id}", page.gettext("%(name)s can sign in again.", name=account.display_name))


@router.post("/{operator_id}/reset", dependencies=[CsrfChecked])
async def reset(
    page: AdminPage, db: SessionDep, operator_id: Id, delivery: Annotated[Literal["link", "password"], FormField()]
) -> Response:
    try:
        issued = await accounts.reset_password(db, page.operator, operator_id, delivery)
    except Invalid as refusal:
        return await _refused(page, db, operator_id, refusal)
    await db.commit()
    return await _hand_over(page, issued, reset=True)
