"""Conversations: list (filters, sorts, cursor), get, update (status, assignee, priority),
transfer, resolve, reopen, snooze. Status and assignee changes are carried out by the conversation's workflow a moment
after the answer, which shows the conversation as it is when answered."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Row

from domain.enums import ChannelKind, ConversationStatus, Interface, Priority
from services import conversations
from services.conversation_list import ConversationFilter, Cursor, Sort, conversation_row, list_conversations
from services.visibility import integration
from web.api_v1.auth import TokenDep, WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.idempotency import OnceDep
from web.api_v1.paging import MAX_ID, CursorQuery, IdPath, IdQuery, Limit, Page, json_response
from web.deps import SessionDep

router = APIRouter(prefix="/conversations", tags=["conversations"])

PriorityName = Literal["none", "low", "medium", "high", "urgent"]


class Named(BaseModel):
    id: int
    name: str


class ConversationOut(BaseModel):
    id: int
    inbox_id: int
    channel: ChannelKind
    interface: Interface
    contact: Named
    branch_id: int | None
    assignee: Named | None
    status: ConversationStatus
    priority: PriorityName
    unanswered: bool = Field(description="The customer wrote last and nobody has answered yet.")
    created_at: datetime
    last_activity_at: datetime
    last_in_at: datetime | None = Field(description="The customer's last message.")
    last_out_at: datetime | None = Field(description="Our last answer that was sent.")
    assigned_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    rating: int | None
    snoozed: bool = Field(description="Set aside: out of the operators' Mine and Unassigned lists until it wakes.")
    snoozed_until: datetime | None = Field(
        description="When a snoozed conversation wakes; null while snoozed: when the customer writes next."
    )


def conversation_out(row: Row) -> ConversationOut:
    return ConversationOut(
        id=row.id,
        inbox_id=row.inbox_id,
        channel=row.channel,
        interface=row.interface,
        contact=Named(id=row.contact_id, name=row.contact_name),
        branch_id=row.branch_id,
        assignee=None if row.assignee_id is None else Named(id=row.assignee_id, name=row.assignee_name or ""),
        status=row.status,
        priority=Priority(row.priority).name.lower(),
        unanswered=row.status in (ConversationStatus.OPEN, ConversationStatus.PENDING)
        and row.last_in_at is not None
        and (row.last_out_at is None or row.last_in_at > row.last_out_at),
        created_at=row.created_at,
        last_activity_at=row.last_activity_at,
        last_in_at=row.last_in_at,
        last_out_at=row.last_out_at,
        assigned_at=row.assigned_at,
        resolved_at=row.resolved_at,
        closed_at=row.closed_at,
        rating=row.rating,
        snoozed=row.snoozed_at is not None,
        snoozed_until=row.snoozed_until,
    )


@router.get("", summary="List conversations in one of four orders", response_model=Page[ConversationOut])
async def list_(
    token: TokenDep,
    db: SessionDep,
    limit: Limit = 50,
    cursor: CursorQuery = None,
    status: Annotated[list[ConversationStatus] | None, Query(description="Any of these statuses.")] = None,
    inbox_id: IdQuery = None,
    branch_id: IdQuery = None,
    assignee_id: IdQuery = None,
    unassigned: Annotated[bool | None, Query(description="Only unassigned (true) or assigned (false) ones.")] = None,
    channel: ChannelKind | None = None,
    contact_id: IdQuery = None,
    unanswered: Annotated[bool | None, Query(description="Only those waiting for our answer (true).")] = None,
    sort: Annotated[
        Sort,
        Query(
            description="`activity`: newest activity first; `waiting`: the customer waiting longest for an answer"
            " first, those with nothing waiting last; `created`: newest first; `priority`: highest first, then"
            " newest activity. A cursor pages on only in the sort that gave it out."
        ),
    ] = Sort.ACTIVITY,
) -> Response:
    """The conversations of the token's branches (or all), filtered; `cursor` pages on."""
    wanted = ConversationFilter(
        status=status,
        inbox_id=inbox_id,
        branch_id=branch_id,
        assignee_id=assignee_id,
        unassigned=unassigned,
        channel=channel,
        contact_id=contact_id,
        unanswered=unanswered,
    )
    after = Cursor.decode(cursor, sort) if cursor else None
    rows, following = await list_conversations(db, integration(token), wanted, sort=sort, after=after, limit=limit)
    page = Page(items=[conversation_out(r) for r in rows], next_cursor=following.encode() if following else None)
    return json_response(page)


@router.get("/{conversation_id:int}", summary="One conversation")
async def get(conversation_id: IdPath, token: TokenDep, db: SessionDep) -> ConversationOut:
    return conversation_out(await conversation_row(db, integration(token), conversation_id))


class ConversationChanges(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"priority": "high"}, {"status": "resolved"}]}
    )

    status: Literal["resolved"] | None = Field(
        None, description="Only `resolved` can be set: a conversation reopens when the customer writes."
    )
    assignee_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Transfer to this operator (of the token's branches)."
    )
    priority: PriorityName | None = None

    @model_validator(mode="after")
    def _something(self) -> ConversationChanges:
        if not self.model_fields_set:
            raise ValueError("Send at least one of status, assignee_id, priority.")
        return self


@router.patch("/{conversation_id:int}", summary="Change status, assignee or priority", responses=WRITE_ERRORS)
async def update(
    conversation_id: IdPath, changes: ConversationChanges, token: WriterDep, db: SessionDep
) -> ConversationOut:
    if changes.priority is not None:
        await conversations.set_priority(db, token, conversation_id, Priority[changes.priority.upper()])
    if changes.assignee_id is not None:
        await conversations.request_transfer(db, token, conversation_id, to_operator_id=changes.assignee_id)
    if changes.status == "resolved":
        await conversations.request_resolve(db, token, conversation_id)
    await db.commit()
    return conversation_out(await conversation_row(db, integration(token), conversation_id))


class Transfer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"branch_id": 2}, {"operator_id": 7}]})

    operator_id: int | None = Field(None, ge=1, le=MAX_ID, description="To this operator ...")
    branch_id: int | None = Field(None, ge=1, le=MAX_ID, description="... or to the first free operator of a branch.")


@router.post(
    "/{conversation_id:int}/transfer",
    status_code=202,
    summary="Transfer to an operator or a branch",
    responses=WRITE_ERRORS,
)
async def transfer(
    conversation_id: IdPath, target: Transfer, token: WriterDep, db: SessionDep, once: OnceDep
) -> ConversationOut:
    if (first := await once.replay(target)) is not None:
        return first
    await conversations.request_transfer(
        db, token, conversation_id, to_operator_id=target.operator_id, to_branch_id=target.branch_id
    )
    response = await once.answer(202, conversation_out(await conversation_row(db, integration(token), conversation_id)))
    await db.commit()
    return response


@router.post("/{conversation_id:int}/resolve", status_code=202, summary="Resolve", responses=WRITE_ERRORS)
async def resolve(conversation_id: IdPath, token: WriterDep, db: SessionDep, once: OnceDep) -> ConversationOut:
    if (first := await once.replay(None)) is not None:
        return first
    await conversations.request_resolve(db, token, conversation_id)
    response = await once.answer(202, conversation_out(await conversation_row(db, integration(token), conversation_id)))
    await db.commit()
    return response


@router.post("/{conversation_id:int}/reopen", summary="Reopen", responses=WRITE_ERRORS)
async def reopen(conversation_id: IdPath, token: WriterDep, db: SessionDep, once: OnceDep) -> ConversationOut:
    """A resolved or closed conversation opens again with its assignee (or, without one, for
    the next free operator); nothing is sent to the customer. Reopening an open one changes
    nothing."""
    if (first := await once.replay(None)) is not None:
        return first
    await conversations.reopen(db, token, conversation_id)
    response = await once.answer(200, conversation_out(await conversation_row(db, integration(token), conversation_id)))
    await db.commit()
    return response


class Snooze(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"until": "2026-12-01T09:00:00+03:00"}, {"until": None}]}
    )

    until: AwareDatetime | None = Field(
        None, description="When it wakes (within a year); null: when the customer writes next."
    )


@router.post("/{conversation_id:int}/snooze", summary="Snooze", responses=WRITE_ERRORS)
async def snooze(
    conversation_id: IdPath, wanted: Snooze, token: WriterDep, db: SessionDep, once: OnceDep
) -> ConversationOut:
    """Set an open conversation aside until a time or the customer's next message; its assignee
    stays, nothing is assigned or escalated meanwhile. An answer or a resolve wakes it early.
    The same snooze again changes nothing."""
    if (first := await once.replay(wanted)) is not None:
        return first
    await conversations.snooze(db, token, conversation_id, wanted.until)
    response = await once.answer(200, conversation_out(await conversation_row(db, integration(token), conversation_id)))
    await db.commit()
    return response
