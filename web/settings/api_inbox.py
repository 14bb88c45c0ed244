"""Settings -> Inboxes -> Add an API inbox: an inbox of the API channel, into which an
integration posts its customers' messages with an API token (services/api_channel.py). Nothing
to connect; once added it is an inbox like the others (its settings page under Inboxes)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from domain.contracts import RowId
from infra.models import Branch
from services import api_channel
from services.errors import Invalid
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import Form, read_form
from web.settings.nav import done, render_settings
from web.templating import PageContext

router = APIRouter(prefix="/settings/api-inbox")


class ApiInboxForm(BaseModel):
    name: str = Field(max_length=api_channel.NAME_MAX)
    default_branch_id: RowId | None = None


async def _page(page: PageContext, db, *, form: Form | None = None, status_code: int = 200) -> Response:
    branches = (await db.execute(select(Branch.id, Branch.name).order_by(Branch.name))).all()
    context = {"branches": branches, "form": form}
    return render_settings(page, "settings/api_inbox.html", context, status_code=status_code)


@router.get("", name="settings_api_inbox")
async def new_api_inbox(page: AdminPage, db: SessionDep) -> Response:
    return await _page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def add_api_inbox(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, ApiInboxForm)
    if form.data is not None:
        data = form.data
        if data.default_branch_id is not None and await db.get(Branch, data.default_branch_id) is None:
            form.refuse(page, Invalid(api_channel.NO_SUCH_BRANCH, field="default_branch_id"))
        else:
            try:
                inbox = await api_channel.create_inbox(
                    db, data.name, default_branch_id=data.default_branch_id, operator_id=page.operator.id
                )
            except Invalid as refusal:
                form.refuse(page, refusal)
            else:
                await db.commit()
                text = page.gettext("Inbox “%(name)s” added.", name=inbox.name)
                return done(page, f"/settings/inboxes/{inbox.id}", text)
    return await _page(page, db, form=form, status_code=422)
