"""Request dependencies: the DB session, the signed-in operator, CSRF.

Routes take `CurrentOperator` and never read the cookie themselves, so none can forget it.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from infra.models import Operator, WebSession
from infra.security import token_digest

SESSION_COOKIE = "sb_session"


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_db)]


class LoginRequired(Exception):
    """Raised for a page request without a valid session; the app redirects to /login."""


async def _load_session(request: Request, db: AsyncSession) -> tuple[WebSession, Operator] | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    row = (
        await db.execute(
            select(WebSession, Operator)
            .join(Operator, Operator.id == WebSession.operator_id)
            .where(WebSession.token_hash == token_digest(token), WebSession.expires_at > datetime.now(UTC))
        )
    ).first()
    if row is None or not row.Operator.is_active:
        return None
    return row.WebSession, row.Operator


async def current_session(request: Request, db: SessionDep) -> WebSession:
    loaded = await _load_session(request, db)
    if loaded is None:
        raise LoginRequired()
    request.state.web_session, request.state.operator = loaded
    return loaded[0]


async def current_operator(request: Request, _: Annotated[WebSession, Depends(current_session)]) -> Operator:
    return request.state.operator


CurrentOperator = Annotated[Operator, Depends(current_operator)]


async def require_csrf(
    request: Request,
    web_session: Annotated[WebSession, Depends(current_session)],
    csrf_token: Annotated[str | None, Form()] = None,
) -> None:
    """Every state-changing cabinet request carries the session's token (form field or HTMX header)."""
    sent = csrf_token or request.headers.get("X-CSRF-Token") or ""
    if not hmac.compare_digest(sent.encode(), web_session.csrf_token.encode()):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "The form has expired. Reload the page and try again.")


CsrfChecked = Depends(require_csrf)
