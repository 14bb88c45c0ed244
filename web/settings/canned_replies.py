"""Settings -> Canned replies: global or per branch (services/canned_replies.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import select

from infra.models import Branch
from services import canned_replies
from services.canned_replies import VARIABLES, CannedReplyInput
from services.errors import Forbidden, Invalid
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import Form, read_form
from web.settings.nav import Id, done, render_settings

router = APIRouter(prefix="/settings/canned-replies")
HOME = "/settings/canned-replies"


async def _branches(db) -> list[tuple[int, str]]:
    return [(b.id, b.name) for b in await db.scalars(select(Branch).order_by(Branch.name))]


async def _list_page(page, db, form: Form | None = None, status_code: int = 200) -> Response:
    context = {
        "replies": await canned_replies.list_all(db),
        "branches": await _branches(db),
        "variables": VARIABLES,
        "form": form,
    }
    return render_settings(page, "settings/canned_replies.html", context, status_code=status_code)


@router.get("", name="settings_canned_replies")
async def list_replies(page: AdminPage, db: SessionDep) -> Response:
    return await _list_page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def create_reply(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, CannedReplyInput)
    if form.data is not None:
        try:
            reply = await canned_replies.create(db, page.operator, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, HOME, page.gettext("Canned reply /%(shortcut)s added.", shortcut=reply.shortcut))
    return await _list_page(page, db, form, status_code=422)


async def _edit_page(page, db, reply_id: int, form: Form | None = None, status_code: int = 200) -> Response:
    reply = next((r for r in await canned_replies.list_all(db) if r.id == reply_id), None)
    if reply is None:
        raise Forbidden()
    context = {"reply": reply, "branches": await _branches(db), "variables": VARIABLES, "form": form}
    return render_settings(page, "settings/canned_reply.html", context, status_code=status_code)


@router.get("/{reply_id}", name="settings_canned_reply")
async def edit_reply(page: AdminPage, db: SessionDep, reply_id: Id) -> Response:
    return await _edit_page(page, db, reply_id)


@router.post("/{reply_id}", dependencies=[CsrfChecked])
async def update_reply(page: AdminPage, db: SessionDep, reply_id: Id) -> Response:
    form = await read_form(page, CannedReplyInput)
    if form.data is not None:
        try:
            reply = await canned_replies.update(db, page.operator, reply_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, HOME, page.gettext("Canned reply /%(shortcut)s saved.", shortcut=reply.shortcut))
    return await _edit_page(page, db, reply_id, form, status_code=422)


@router.post("/{reply_id}/delete", dependencies=[CsrfChecked])
async def delete_reply(page: AdminPage, db: SessionDep, reply_id: Id) -> Response:
    await canned_replies.delete(db, page.operator, reply_id)
    await db.commit()
    return done(page, HOME, page.gettext("Canned reply deleted."))
