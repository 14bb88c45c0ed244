"""Who and where: the inboxes (connected bots and the widget) and the operators with their status."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from domain.enums import ChannelKind, OperatorRole, OperatorStatus
from services.inboxes import list_inboxes
from services.operators import list_operators
from services.visibility import integration
from web.api_v1.auth import TokenDep
from web.deps import SessionDep

router = APIRouter()


class InboxOut(BaseModel):
    id: int
    name: str
    channel: ChannelKind
    active: bool
    webhook: bool = Field(description="Updates arrive by webhook (else the inbox is polled).")
    created_at: datetime


@router.get("/inboxes", tags=["inboxes"], summary="List inboxes")
async def inboxes(token: TokenDep, db: SessionDep) -> list[InboxOut]:
    return [
        InboxOut(
            id=i.id,
            name=i.name,
            channel=i.channel,
            active=i.is_active,
            webhook=i.webhook_url is not None,
            created_at=i.created_at,
        )
        for i in await list_inboxes(db)
    ]


class OperatorOut(BaseModel):
    id: int
    display_name: str
    email: str
    role: OperatorRole
    branch_id: int | None
    status: OperatorStatus
    status_changed_at: datetime


@router.get("/operators", tags=["operators"], summary="List operators with their status")
async def operators(token: TokenDep, db: SessionDep) -> list[OperatorOut]:
    """The active operators (for a token of some branches: of those branches)."""
    return [
        OperatorOut(
            id=o.id,
            display_name=o.display_name,
            email=o.email,
            role=o.role,
            branch_id=o.branch_id,
            status=o.status,
            status_changed_at=o.status_changed_at,
        )
        for o in await list_operators(db, integration(token))
    ]
