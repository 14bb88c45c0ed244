"""Settings -> Labels: a name and a colour each (services/labels.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from services import labels
from services.errors import Invalid
from services.labels import LabelInput
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import Form, read_form
from web.settings.nav import Id, done, render_settings

router = APIRouter(prefix="/settings/labels")


async def _page(page, db, *, form: Form | None = None, editing: int | None = None, status_code: int = 200) -> Response:
    context = {"all_labels": await labels.list_labels(db), "form": form, "editing": editing}
    return render_settings(page, "settings/labels.html", context, status_code=status_code)


@router.get("", name="settings_labels")
async def list_labels(page: AdminPage, db: SessionDep) -> Response:
    return await _page(page, db)


@router.post("", dependencies=[CsrfChecked])
async def create_label(page: AdminPage, db: SessionDep) -> Response:
    form = await read_form(page, LabelInput)
    if form.data is not None:
        try:
            label = await labels.create_label(db, page.operator, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, "/settings/labels", page.gettext("Label “%(name)s” added.", name=label.name))
    return await _page(page, db, form=form, status_code=422)


@router.post("/{label_id}", dependencies=[CsrfChecked])
async def update_label(page: AdminPage, db: SessionDep, label_id: Id) -> Response:
    form = await read_form(page, LabelInput)
    if form.data is not None:
        try:
            label = await labels.update_label(db, page.operator, label_id, form.data)
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return done(page, "/settings/labels", page.gettext("Label “%(name)s” saved.", name=label.name))
    return await _page(page, db, form=form, editing=label_id, status_code=422)


@router.post("/{label_id}/delete", dependencies=[CsrfChecked])
async def delete_label(page: AdminPage, db: SessionDep, label_id: Id) -> Response:
    await labels.delete_label(db, page.operator, label_id)
    await db.commit()
    return done(page, "/settings/labels", page.gettext("Label deleted."))
