"""Settings -> API tokens: an admin creates a token for an integration (its branches or all,
read-only or read-write), sees it once, and revokes it (services/api_tokens.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from domain.contracts import INT64_MAX
from infra.models import Branch
from services import api_tokens
from services.errors import Forbidden, Invalid
from web.deps import AdminPage, CsrfChecked, SessionDep
from web.forms import Form, read_form
from web.settings.nav import Id, render_settings
from web.toasts import ToastLevel

router = APIRouter(prefix="/settings/api-tokens")
HERE = "/settings/api-tokens"


async def _page(
    page, db, *, form: Form | None = None, issued=None, error: str | None = None, status_code: int = 200
) -> Response:
    context = {
        "tokens": await api_tokens.list_tokens(db, page.operator),
        "branches": (await db.execute(select(Branch.id, Branch.name).order_by(Branch.name))).all(),
        "form": form,
        "issued": issued,
        "error": error,
    }
    response = render_settings(page, "settings/api_tokens.html", context, status_code=status_code)
    if issued is not None:
        response.headers["Cache-Control"] = "no-store"  # the token is on this page once
    return response


@router.get("", name="settings_api_tokens")
async def list_tokens(page: AdminPage, db: SessionDep) -> Response:
    return await _page(page, db)


class TokenForm(BaseModel):
    """The new-token form: a name, all branches or the ticked ones, read-only unless ticked."""

    name: str = Field(max_length=api_tokens.NAME_MAX)
    scope: Literal["all", "branches"] = "all"
    branch: list[Annotated[int, Field(ge=1, le=INT64_MAX)]] = []
    write: bool = False


@router.post("", dependencies=[CsrfChecked])
async def create_token(page: AdminPage, db: SessionDep) -> Response:
    """The new token is shown on the answer itself, never in a redirect or a toast."""
    form = await read_form(page, TokenForm)
    if (data := form.data) is not None:
        try:
            issued = await api_tokens.create_token(
                db,
                page.operator,
                name=data.name,
                branch_ids=data.branch if data.scope == "branches" else None,
                can_write=data.write,
            )
        except Invalid as refusal:
            form.refuse(page, refusal)
        else:
            await db.commit()
            return await _page(page, db, issued=issued, status_code=201)
    return await _page(page, db, form=form, status_code=422)


@router.post("/{token_id}/revoke", dependencies=[CsrfChecked])
async def revoke_token(page: AdminPage, db: SessionDep, token_id: Id) -> Response:
    try:
        token = await api_tokens.revoke_token(db, page.operator, token_id)
    except Forbidden:
        return await _page(page, db, error=page.gettext("There is no such token."), status_code=404)
    await db.commit()
    response = RedirectResponse(HERE, status_code=303)
    page.toast(response, ToastLevel.SUCCESS, page.gettext("Token “%(name)s” revoked.", name=token.name))
    return response
