"""Request dependencies: the DB session, the signed-in operator, CSRF, the page context, a
conversation the operator may see.

Routes take `CurrentOperator` (or `PageDep`, which includes it) and `ConversationDep` and never
read the cookie or load a conversation by id themselves, so none can forget the checks.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Form, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import OperatorRole
from infra.models import Branch, Conversation, Operator, WebSession
from infra.security import token_digest
from services.errors import Forbidden
from services.inbox import unread_conversations
from services.visibility import load_conversation, staff
from web.i18n import DEFAULT_LOCALE, UTC_ZONE, Formats, parse_locale, zone
from web.templating import NavCounts, PageContext, parse_theme
from web.toasts import read_flash

SESSION_COOKIE = "sb_session"


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_db)]


class LoginRequired(Exception):
    """Raised for a page request without a valid session; the app redirects to /login."""


async def load_session(request: Request, db: AsyncSession) -> tuple[WebSession, Operator] | None:
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
    loaded = await load_session(request, db)
    if loaded is None:
        raise LoginRequired()
    request.state.web_session, request.state.operator = loaded
    return loaded[0]


async def current_operator(request: Request, _: Annotated[WebSession, Depends(current_session)]) -> Operator:
    return request.state.operator


CurrentOperator = Annotated[Operator, Depends(current_operator)]


class FormExpired(HTTPException):
    """A state-changing request without the session's CSRF token: usually a page left open
    across a sign-out; the cabinet answers with a page (or toast) that says to reload."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_403_FORBIDDEN, "The form has expired. Reload the page and try again.")


async def require_csrf(
    request: Request,
    web_session: Annotated[WebSession, Depends(current_session)],
    csrf_token: Annotated[str | None, Form()] = None,
) -> None:
    """Every state-changing cabinet request carries the session's token (form field or HTMX header)."""
    sent = csrf_token or request.headers.get("X-CSRF-Token") or ""
    if not hmac.compare_digest(sent.encode(), web_session.csrf_token.encode()):
        raise FormExpired()


CsrfChecked = Depends(require_csrf)


async def page_context(request: Request, db: SessionDep, operator: CurrentOperator) -> PageContext:
    """The signed-in operator's page: their language, timezone (else their branch's, else UTC)
    and theme, the session's CSRF token and any toast a plain form post left."""
    timezone = zone(operator.timezone)
    if timezone is None and operator.branch_id is not None:
        timezone = zone(await db.scalar(select(Branch.timezone).where(Branch.id == operator.branch_id)))
    csrf_token = request.state.web_session.csrf_token
    return PageContext(
        request,
        Formats(parse_locale(operator.locale) or DEFAULT_LOCALE, timezone or UTC_ZONE),
        parse_theme(operator.theme),
        operator,
        csrf_token,
        NavCounts(unread=await unread_conversations(db, operator)),
        read_flash(request, secret=csrf_token),
    )


PageDep = Annotated[PageContext, Depends(page_context)]


async def conversation_in_path(conversation_id: int, db: SessionDep, operator: CurrentOperator) -> Conversation:
    """The `{conversation_id}` of the path, loaded only if the operator may see it: a 404 for
    "not yours" as for "no such conversation" (services.errors.Forbidden, web/problems.py)."""
    if not 0 < conversation_id < 2**63:
        raise Forbidden()  # not an id the database could hold: answered like any other guess
    return await load_conversation(db, staff(operator), conversation_id)


ConversationDep = Annotated[Conversation, Depends(conversation_in_path)]


async def admin_page(page: PageDep) -> PageContext:
    """An admin's page: anyone else gets 403 (the page says so; nothing of it is shown)."""
    if page.operator is None or page.operator.role != OperatorRole.ADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    return page


async def supervisor_page(page: PageDep) -> PageContext:
    """A page supervisors and admins read; operators get 403."""
    if page.operator is None or page.operator.role not in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN):
        raise HTTPException(status.HTTP_403_FORBIDDEN)
    return page


AdminPage = Annotated[PageContext, Depends(admin_page)]
SupervisorPage = Annotated[PageContext, Depends(supervisor_page)]
