"""Settings -> Inboxes: connect a Telegram or MAX bot by its token (checked with the provider and
named before anything is kept), each inbox's connection (webhook or long polling, the provider's
last error, re-subscribe / restart polling), its token and webhook secret (never shown back),
its settings, a test message and switching it off (services/inbox_settings.py, inboxes.py)."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form as FormField
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from channels.base import Webhook
from domain.contracts import DeliveryError
from domain.enums import ChannelKind, RatingMode
from infra.models import Branch, Inbox
from infra.temporal import WorkflowStarter
from services import inbox_settings, widget_identity, widget_snippet
from services.errors import Invalid
from services.inbox_settings import ConnectInput, InboxSettingsInput, TestMessageInput, TokenInput
from services.inboxes import connect_inbox
from web import labels
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import GENERAL, Form, read_form
from web.i18n import N_
from web.settings.nav import Id, done, render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings/inboxes")
HOME = "/settings/inboxes"
log = logging.getLogger(__name__)
RATING_MODES = {
    RatingMode.NONE: N_("Do not ask"),
    RatingMode.STARS: N_("1 to 5 stars"),
    RatingMode.NPS: N_("NPS, 0 to 10"),
}


def _state(page: PageContext):
    app = page.request.app.state
    return app.credential_box, {ChannelKind(k): a for k, a in app.adapters.items()}


async def _starter(page: PageContext) -> WorkflowStarter:
    app = page.request.app.state
    return WorkflowStarter(await app.temporal.client(), app.settings.temporal_task_queue)


async def _connect(page: PageContext, inbox_id: int) -> str | None:
    """Connect (webhook or long polling); None when it worked, else what went wrong, in words."""
    box, adapters = _state(page)
    app = page.request.app.state
    app.inbox_cache.pop(inbox_id, None)
    try:
        starter = await _starter(page)
        connection = await connect_inbox(app.sessionmaker, adapters, box, starter, inbox_id, app.settings.public_url)
    except Exception as exc:  # noqa: BLE001 - a provider or Temporal failure is shown, never a 500
        log.warning("inbox %s: connecting failed: %s", inbox_id, type(exc).__name__)
        return getattr(exc, "reason", None) or type(exc).__name__
    log.info("inbox %s connected by %s", inbox_id, connection.mode)
    return None


async def _channel_options(page: PageContext) -> list[tuple[str, str]]:
    _, adapters = _state(page)
    return [(kind.value, page.gettext(labels.CHANNEL[kind])) for kind in inbox_settings.bot_channels(adapters)]


@router.get("", name="settings_inboxes")
async def list_inboxes(page: AdminPage, db: SessionDep) -> Response:
    inboxes = (await db.scalars(select(Inbox).order_by(Inbox.is_active.desc(), Inbox.name))).all()
    return render_settings(page, "settings/inboxes.html", {"inboxes": inboxes})


async def _connect_page(page: PageContext, form: Form | None = None, status_code: int = 200) -> Response:
    context = {
        "form": form,
        "channels": await _channel_options(page),
        "public_url": page.request.app.state.settings.public_url,
    }
    return render_settings(page, "settings/inbox_connect.html", context, status_code=status_code)


@router.get("/connect", name="settings_inbox_connect")
async def connect_form(page: AdminPage) -> Response:
    return await _connect_page(page)


@router.post("/connect/check", dependencies=[CsrfChecked])
async def check_token(page: AdminPage) -> Response:
    form = await read_form(page, ConnectInput)
    if form.data is not None:
        box, adapters = _state(page)
        try:
            checked = await inbox_settings.check_token(adapters, box, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            context = {
                "bot": checked.profile,
                "sealed": checked.sealed,
                "name": form.data.name,
                "channel": form.data.channel,
            }
            response = render_settings(page, "settings/inbox_confirm.html", context)
            response.headers["Cache-Control"] = "no-store"
            return response
    form.values.pop("token", None)  # a token is never written back into a page
    return await _connect_page(page, form, status_code=422)


@router.post("/connect", dependencies=[CsrfChecked])
async def connect(page: AdminPage, db: SessionDep, sealed: Annotated[str, FormField(max_length=4000)]) -> Response:
    box, _ = _state(page)
    try:
        inbox = await inbox_settings.create_checked(db, box, page.operator, sealed)
    except Invalid as refusal:
        return await _connect_page(page, Form({}, errors={GENERAL: page.gettext(refusal.message)}), status_code=422)
    await db.commit()
    problem = await _connect(page, inbox.id)
    if problem is not None:
        message = page.gettext(
            "Inbox “%(name)s” is saved, but connecting failed: %(reason)s", name=inbox.name, reason=problem
        )
    else:
        message = page.gettext("Inbox “%(name)s” is connected.", name=inbox.name)
    return done(page, f"{HOME}/{inbox.id}", message)


async def _inbox_page(
    page: PageContext,
    db,
    inbox_id: int,
    *,
    forms: dict[str, Form] | None = None,
    status_code: int = 200,
    identity_secret: str | None = None,
) -> Response:
    inbox = await inbox_settings.get_inbox(db, inbox_id)
    box, adapters = _state(page)
    settings = page.request.app.state.settings
    branches = [(b.id, b.name) for b in await db.scalars(select(Branch).order_by(Branch.name))]
    public_url = settings.public_url.rstrip("/")
    try:  # the snippet's options, as the page's small form asked for them
        options = widget_snippet.SnippetOptions.model_validate(dict(page.request.query_params))
    except ValidationError:
        options = widget_snippet.SnippetOptions()
    context = {
        "inbox": inbox,
        "forms": forms or {},
        "current": InboxSettingsInput.of(inbox, settings.default_escalation_minutes),
        "widget_text_limits": inbox_settings.WIDGET_TEXTS,
        "branch_options": branches,
        "rating_options": [(mode.value, page.gettext(text)) for mode, text in RATING_MODES.items()],
        "token": inbox_settings.masked_token(box, inbox),
        "previous_secret_until": inbox_settings.secret_state(box, inbox),
        "messenger": ChannelKind(inbox.channel) in inbox_settings.bot_channels(adapters),
        "webhooks_possible": public_url.lower().startswith("https://"),
        "widget_snippet": (
            widget_snippet.snippet(public_url, inbox.id, options) if inbox.channel == ChannelKind.WIDGET else None
        ),
        "snippet_options": options,
        "widget_csp": widget_snippet.csp_sources(public_url),
        "identity_secret": identity_secret,
    }
    return render_settings(page, "settings/inbox.html", context, status_code=status_code)


@router.get("/{inbox_id}", name="settings_inbox")
async def show_inbox(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    return await _inbox_page(page, db, inbox_id)


@router.post("/{inbox_id}", dependencies=[CsrfChecked])
async def update_settings(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    form = await read_form(page, InboxSettingsInput)
    if form.data is not None:
        try:
            inbox = await inbox_settings.update_settings(db, page.operator, inbox_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, f"{HOME}/{inbox.id}", page.gettext("Settings of “%(name)s” saved.", name=inbox.name))
    return await _inbox_page(page, db, inbox_id, forms={"settings": form}, status_code=422)


@router.post("/{inbox_id}/token", dependencies=[CsrfChecked])
async def replace_token(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    form = await read_form(page, TokenInput)
    box, adapters = _state(page)
    if form.data is not None:
        try:
            inbox = await inbox_settings.replace_token(db, box, adapters, page.operator, inbox_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            problem = await _connect(page, inbox_id) if inbox.is_active else None
            if problem is not None:
                return done(
                    page,
                    f"{HOME}/{inbox_id}",
                    page.gettext("The token is saved, but connecting failed: %(reason)s", reason=problem),
                )
            return done(page, f"{HOME}/{inbox_id}", page.gettext("The token is replaced."))
    form.values = {}
    return await _inbox_page(page, db, inbox_id, forms={"token": form}, status_code=422)


@router.post("/{inbox_id}/rotate-secret", dependencies=[CsrfChecked])
async def rotate_secret(page: AdminPage, inbox_id: Id) -> Response:
    box, adapters = _state(page)
    app = page.request.app.state
    try:
        rotation = await inbox_settings.rotate_secret(app.sessionmaker, box, adapters, page.operator, inbox_id)
    except Invalid as refusal:
        app.inbox_cache.pop(inbox_id, None)
        return done(page, f"{HOME}/{inbox_id}", page.gettext(refusal.message, **refusal.params))
    app.inbox_cache.pop(inbox_id, None)
    until = page.formats.time(rotation.previous_until)
    message = page.gettext("A new webhook secret is in use; the old one is accepted until %(until)s.", until=until)
    return done(page, f"{HOME}/{inbox_id}", message)


@router.post("/{inbox_id}/identity-secret", dependencies=[CsrfChecked])
async def identity_secret(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    """A new identity secret for a website chat, shown on this answer only."""
    box, _ = _state(page)
    try:
        secret = await widget_identity.new_identity_secret(db, box, page.operator, inbox_id)
    except Invalid as refusal:
        return done(page, f"{HOME}/{inbox_id}", page.gettext(refusal.message, **refusal.params))
    await db.commit()
    return await _inbox_page(page, db, inbox_id, identity_secret=secret)


@router.post("/{inbox_id}/reconnect", dependencies=[CsrfChecked])
async def reconnect(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    inbox = await inbox_settings.get_inbox(db, inbox_id)
    if not inbox.is_active:
        return done(page, f"{HOME}/{inbox_id}", page.gettext("Switch the inbox on first."))
    problem = await _connect(page, inbox_id)
    if problem is not None:
        return done(page, f"{HOME}/{inbox_id}", page.gettext("Connecting failed: %(reason)s", reason=problem))
    return done(page, f"{HOME}/{inbox_id}", page.gettext("Connected again."))


@router.post("/{inbox_id}/check", dependencies=[CsrfChecked])
async def check_connection(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    await inbox_settings.get_inbox(db, inbox_id)  # 404 for no such inbox, before anything is asked
    box, adapters = _state(page)
    try:
        check = await inbox_settings.check_connection(
            page.request.app.state.sessionmaker, box, adapters, await _starter(page), inbox_id
        )
    except Exception as exc:  # noqa: BLE001 - Temporal or the provider away: said, not a 500
        message = page.gettext("The check could not be done: %(reason)s", reason=type(exc).__name__)
        return done(page, f"{HOME}/{inbox_id}", message)
    if check.working and not check.error:
        message = page.gettext("All is well: the provider reports no error.")
    elif check.working:
        message = page.gettext("Connected, but the provider reports: %(error)s", error=check.error)
    elif check.mode == "polling":
        message = page.gettext("The poller is not running: use “Restart polling”.")
    else:
        message = page.gettext("Not subscribed: %(error)s. Use “Re-subscribe”.", error=check.error or "—")
    return done(page, f"{HOME}/{inbox_id}", message)


@router.post("/{inbox_id}/test-message", dependencies=[CsrfChecked])
async def test_message(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    form = await read_form(page, TestMessageInput)
    box, adapters = _state(page)
    if form.data is not None:
        try:
            await inbox_settings.send_test_message(db, box, adapters, page.operator, inbox_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, f"{HOME}/{inbox_id}", page.gettext("The test message is sent."))
    return await _inbox_page(page, db, inbox_id, forms={"test": form}, status_code=422)


@router.post("/{inbox_id}/deactivate", dependencies=[CsrfChecked])
async def deactivate(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    inbox = await inbox_settings.set_active(db, page.operator, inbox_id, False)
    await db.commit()
    page.request.app.state.inbox_cache.pop(inbox_id, None)
    box, adapters = _state(page)
    adapter = adapters.get(ChannelKind(inbox.channel))
    if inbox.webhook_url and isinstance(adapter, Webhook):
        # the provider stops posting to a webhook that now answers 404 (its poller stops by itself)
        try:
            await adapter.unregister_webhook(box.open(inbox.credentials_encrypted), inbox.webhook_url)
        except (DeliveryError, ValueError) as exc:
            log.warning("inbox %s: removing the webhook failed: %s", inbox_id, getattr(exc, "reason", exc))
    return done(page, f"{HOME}/{inbox_id}", page.gettext("Inbox “%(name)s” is switched off.", name=inbox.name))


@router.post("/{inbox_id}/activate", dependencies=[CsrfChecked])
async def activate(page: AdminPage, db: SessionDep, inbox_id: Id) -> Response:
    inbox = await inbox_settings.set_active(db, page.operator, inbox_id, True)
    await db.commit()
    problem = (
        await _connect(page, inbox_id)
        if ChannelKind(inbox.channel) in inbox_settings.bot_channels(_state(page)[1])
        else None
    )
    if problem is not None:
        message = page.gettext(
            "Inbox “%(name)s” is on, but connecting failed: %(reason)s", name=inbox.name, reason=problem
        )
    else:
        message = page.gettext("Inbox “%(name)s” is switched on.", name=inbox.name)
    return done(page, f"{HOME}/{inbox_id}", message)
