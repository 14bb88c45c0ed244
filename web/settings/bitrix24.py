"""Settings -> Bitrix24: a branch or an inbox connected to a portal by its inbound-webhook URL, the
Bitrix24 user its tasks are for and their deadline (services/bitrix24.py). "Send to B24" on a
conversation uses the inbox's connection, else its branch's. The URL holds the webhook's code, a
secret: it is kept encrypted and only the portal's address is shown back."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from infra.models import Bitrix24Connection, Branch, Inbox
from services import bitrix24
from services.bitrix24 import ConnectionInput
from services.errors import Forbidden, Invalid
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import Form, read_form
from web.settings.nav import Id, done, render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings/bitrix24")
HOME = "/settings/bitrix24"


def _portal(page: PageContext, connection: Bitrix24Connection) -> str:
    url = page.request.app.state.credential_box.open(connection.webhook_url_encrypted).get("webhook_url", "")
    return urlsplit(url).netloc


async def _page(page: PageContext, db, *, form: Form | None = None, status_code: int = 200) -> Response:
    branches = (await db.execute(select(Branch.id, Branch.name).order_by(Branch.name))).all()
    inboxes = (await db.execute(select(Inbox.id, Inbox.name).order_by(Inbox.name))).all()
    branch_names, inbox_names = dict(branches), dict(inboxes)
    connections = (await db.scalars(select(Bitrix24Connection).order_by(Bitrix24Connection.id))).all()
    rows = [
        {
            "connection": c,
            "owner": page.gettext("Branch “%(name)s”", name=branch_names.get(c.branch_id, ""))
            if c.branch_id
            else page.gettext("Inbox “%(name)s”", name=inbox_names.get(c.inbox_id, "")),
            "portal": _portal(page, c),
        }
        for c in connections
    ]
    owners = [(f"branch:{i}", page.gettext("Branch “%(name)s”", name=n)) for i, n in branches] + [
        (f"inbox:{i}", page.gettext("Inbox “%(name)s”", name=n)) for i, n in inboxes
    ]
    context = {"rows": rows, "owners": owners, "form": form}
    return render_settings(page, "settings/bitrix24.html", context, status_code=status_code)


@router.get("", name="settings_bitrix24")
async def list_connections(page: AdminPage, db: SessionDep) -> Response:
    return await _page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def connect(page: AdminPage, db: SessionDep) -> Response:
    """Connect, or replace what that branch or inbox had."""
    form = await read_form(page, ConnectionInput)
    if form.data is not None:
        box = page.request.app.state.credential_box
        try:
            await bitrix24.connect(db, box, form.data, operator_id=page.operator.id)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, HOME, page.gettext("Bitrix24 connected."))
    form.values.pop("webhook_url", None)  # a secret is never echoed into the page
    return await _page(page, db, form=form, status_code=422)


@router.post("/{connection_id}/delete", dependencies=[CsrfChecked])
async def disconnect(page: AdminPage, db: SessionDep, connection_id: Id) -> Response:
    connection = await db.get(Bitrix24Connection, connection_id)
    if connection is None:
        raise Forbidden()  # answered 404
    await bitrix24.disconnect(db, connection, operator_id=page.operator.id)
    await db.commit()
    return done(page, HOME, page.gettext("Bitrix24 disconnected."))
