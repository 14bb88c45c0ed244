"""Settings -> Outgoing webhooks: an admin adds an endpoint (its events, one inbox or all), sees its
secret once, rotates it, pauses and resumes delivery, reads the delivery journal and redelivers
one event or every event since a time (services/webhooks.py). After each change the endpoint's
workflow is woken (web/workflows.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from domain.contracts import INT64_MAX
from domain.webhooks import WEBHOOK_EVENTS
from infra.models import Inbox, WebhookEndpoint
from services import webhooks
from services.errors import Forbidden, Invalid
from services.webhooks import EndpointInput, RedeliverInput
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import GENERAL, Form, read_form
from web.i18n import N_
from web.settings.nav import Id, done, render_settings
from web.templating import PageContext
from web.workflows import wake_webhook_endpoint

router = APIRouter(prefix="/settings/webhooks")
HOME = "/settings/webhooks"
JOURNAL_ROWS = 100
# what each subscribable event is, for the checkboxes
EVENT_LABELS = {
    "conversation.created": N_("A conversation is started"),
    "conversation.assigned": N_("A conversation is assigned"),
    "conversation.status_changed": N_("A conversation is resolved, closed or reopened"),
    "message.created": N_("A message is received or sent"),
    "message.status_changed": N_("A reply is sent, delivered, read or fails"),
    "contact.updated": N_("A contact is changed"),
}
MANUAL_PAUSE = N_("Paused by an admin.")
OUTCOMES = {"delivered": N_("delivered"), "failed": N_("failed"), "dead": N_("given up")}


class RedeliverForm(BaseModel):
    """The journal's buttons: one event by its id, or every event since a time the browser gives
    in the admin's own timezone (a datetime-local field has no offset)."""

    event_id: Annotated[int, Field(ge=1, le=INT64_MAX)] | None = None
    since: datetime | None = None


def _event_options(page: PageContext) -> list[tuple[str, str]]:
    return [(name, page.gettext(EVENT_LABELS[name])) for name in WEBHOOK_EVENTS]


async def _inboxes(db) -> list:
    return (await db.execute(select(Inbox.id, Inbox.name).order_by(Inbox.name))).all()


async def _list_page(
    page: PageContext, db, *, form: Form | None = None, issued: tuple | None = None, status_code: int = 200
) -> Response:
    context = {
        "endpoints": await webhooks.health(db),
        "inboxes": await _inboxes(db),
        "event_options": _event_options(page),
        "form": form,
        "issued": issued,  # (endpoint, secret) just created: shown on this answer only
    }
    response = render_settings(page, "settings/webhooks.html", context, status_code=status_code)
    if issued is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


async def _endpoint(db, endpoint_id: int) -> WebhookEndpoint:
    endpoint = await db.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise Forbidden()  # answered 404
    return endpoint


async def _endpoint_page(
    page: PageContext,
    db,
    endpoint: WebhookEndpoint,
    *,
    form: Form | None = None,
    redeliver_error: str | None = None,
    secret: str | None = None,
    status_code: int = 200,
) -> Response:
    health = next(h for h in await webhooks.health(db) if h.endpoint_id == endpoint.id)
    context = {
        "endpoint": endpoint,
        "health": health,
        "inbox_name": (await db.get(Inbox, endpoint.inbox_id)).name if endpoint.inbox_id else None,
        "journal": await webhooks.delivery_log(db, endpoint.id, limit=JOURNAL_ROWS),
        "event_options": _event_options(page),
        "form": form,
        "redeliver_error": redeliver_error,
        "secret": secret,
        "outcomes": {outcome: page.gettext(words) for outcome, words in OUTCOMES.items()},
        "overlap_hours": int(page.request.app.state.settings.webhook_secret_overlap_hours),
    }
    response = render_settings(page, "settings/webhook.html", context, status_code=status_code)
    if secret is not None:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("", name="settings_webhooks")
async def list_endpoints(page: AdminPage, db: SessionDep) -> Response:
    return await _list_page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def create_endpoint(page: AdminPage, db: SessionDep) -> Response:
    """The secret is shown on the answer itself, never in a redirect or a toast."""
    form = await read_form(page, EndpointInput)
    if form.data is not None:
        box = page.request.app.state.credential_box
        try:
            endpoint, secret = await webhooks.create_endpoint(db, box, form.data, operator_id=page.operator.id)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            await wake_webhook_endpoint(page.request, endpoint.id)
            return await _list_page(page, db, issued=(endpoint, secret), status_code=201)
    return await _list_page(page, db, form=form, status_code=422)


@router.get("/{endpoint_id}", name="settings_webhook")
async def show_endpoint(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    return await _endpoint_page(page, db, endpoint)


@router.post("/{endpoint_id}", dependencies=[CsrfChecked])
async def update_endpoint(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    form = await read_form(page, EndpointInput)
    if form.data is not None:
        try:
            await webhooks.update_endpoint(db, endpoint, form.data, operator_id=page.operator.id)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, f"{HOME}/{endpoint_id}", page.gettext("Endpoint “%(name)s” saved.", name=endpoint.name))
    return await _endpoint_page(page, db, endpoint, form=form, status_code=422)


@router.post("/{endpoint_id}/rotate", dependencies=[CsrfChecked])
async def rotate_secret(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    app = page.request.app.state
    secret = await webhooks.rotate_secret(
        db,
        app.credential_box,
        endpoint,
        overlap=timedelta(hours=app.settings.webhook_secret_overlap_hours),
        operator_id=page.operator.id,
    )
    await db.commit()
    return await _endpoint_page(page, db, endpoint, secret=secret)


@router.post("/{endpoint_id}/pause", dependencies=[CsrfChecked])
async def pause_endpoint(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    await webhooks.pause(db, endpoint, reason=MANUAL_PAUSE, operator_id=page.operator.id)
    await db.commit()
    return done(page, f"{HOME}/{endpoint_id}", page.gettext("Delivery paused: events keep queueing."))


@router.post("/{endpoint_id}/resume", dependencies=[CsrfChecked])
async def resume_endpoint(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    await webhooks.resume(db, endpoint, operator_id=page.operator.id)
    await db.commit()
    await wake_webhook_endpoint(page.request, endpoint_id)
    return done(page, f"{HOME}/{endpoint_id}", page.gettext("Delivery resumed."))


@router.post("/{endpoint_id}/redeliver", dependencies=[CsrfChecked])
async def redeliver(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    form = await read_form(page, RedeliverForm)
    error = " ".join(form.errors.values()) if form.data is None else None
    if form.data is not None:
        since = form.data.since
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=page.formats.timezone)
        try:
            queued = await webhooks.redeliver(
                db, endpoint, RedeliverInput(event_id=form.data.event_id, since=since), operator_id=page.operator.id
            )
        except Invalid as refusal:
            error = page.gettext(refusal.message, **refusal.params)
        else:
            await db.commit()
            await wake_webhook_endpoint(page.request, endpoint_id)
            text = page.ngettext("%(num)d event queued again.", "%(num)d events queued again.", queued)
            return done(page, f"{HOME}/{endpoint_id}", text)
    return await _endpoint_page(page, db, endpoint, redeliver_error=error or GENERAL, status_code=422)


@router.post("/{endpoint_id}/delete", dependencies=[CsrfChecked])
async def delete_endpoint(page: AdminPage, db: SessionDep, endpoint_id: Id) -> Response:
    endpoint = await _endpoint(db, endpoint_id)
    name = endpoint.name
    await webhooks.delete_endpoint(db, endpoint, operator_id=page.operator.id)
    await db.commit()
    return done(page, HOME, page.gettext("Endpoint “%(name)s” deleted.", name=name))
