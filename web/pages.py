"""Cabinet pages. Every route here depends on CurrentOperator."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import aliased

from domain.enums import OperatorRole
from infra.models import Contact, Conversation, Inbox, Operator
from web.deps import CurrentOperator, SessionDep
from web.templating import templates

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, db: SessionDep, operator: CurrentOperator) -> Response:
    assignee = aliased(Operator)
    query = (
        select(
            Conversation.id,
            Conversation.status,
            Conversation.last_activity_at,
            Contact.display_name.label("contact_name"),
            Inbox.channel,
            assignee.display_name.label("assignee_name"),
        )
        .join(Contact, Contact.id == Conversation.contact_id)
        .join(Inbox, Inbox.id == Conversation.inbox_id)
        .outerjoin(assignee, assignee.id == Conversation.assignee_id)
        .order_by(Conversation.last_activity_at.desc())
        .limit(100)
    )
    if operator.role == OperatorRole.OPERATOR:
        # operators see their branch's pool and what is assigned to them
        query = query.where(
            (Conversation.assignee_id == operator.id)
            | ((Conversation.branch_id == operator.branch_id) & Conversation.assignee_id.is_(None))
        )
    rows = (await db.execute(query)).all()
    return templates.TemplateResponse(
        request,
        "home.html",
        {"operator": operator, "csrf_token": request.state.web_session.csrf_token, "conversations": rows},
    )
