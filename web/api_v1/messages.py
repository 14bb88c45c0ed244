"""A conversation's messages: list (cursor), send a reply (it leaves through the conversation's
own channel), write a private note (staff only, never sent)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from domain.enums import DeliveryStatus, MessageDirection, MessageFormat, SenderKind
from infra.models import Attachment, Message
from services.conversations import send_reply
from services.errors import Invalid
from services.messages import NOTE_MAX, add_note, list_messages
from services.visibility import integration
from web.api_v1.auth import TokenDep, WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.idempotency import OnceDep
from web.api_v1.paging import CursorQuery, IdPath, Limit, Page, json_response
from web.deps import SessionDep

router = APIRouter(prefix="/conversations/{conversation_id:int}", tags=["messages"])

TEXT_MAX = 10_000


class AttachmentOut(BaseModel):
    id: int
    kind: str
    file_name: str
    mime_type: str
    size: int | None


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    direction: MessageDirection
    sender_kind: SenderKind
    sender_operator_id: int | None
    sender_token_id: int | None
    note: bool = Field(description="A private note: staff and integrations see it, the customer never does.")
    text: str
    format: MessageFormat
    delivery_status: DeliveryStatus = Field(
        description="For our messages: queued -> sent -> delivered -> read, or failed."
    )
    error: str | None = Field(description="Why delivery failed.")
    created_at: datetime
    sent_at: datetime | None
    edited_at: datetime | None
    attachments: list[AttachmentOut]


def message_out(message: Message, attachments: list[Attachment] = ()) -> MessageOut:
    return MessageOut(
        id=message.id,
        conversation_id=message.conversation_id,
        direction=message.direction,
        sender_kind=message.sender_kind,
        sender_operator_id=message.sender_operator_id,
        sender_token_id=message.sender_token_id,
        note=message.is_note,
        text=message.text,
        format=message.format,
        delivery_status=message.delivery_status,
        error=message.error,
        created_at=message.created_at,
        sent_at=message.sent_at,
        edited_at=message.edited_at,
        attachments=[
            AttachmentOut(id=a.id, kind=a.kind, file_name=a.file_name, mime_type=a.mime_type, size=a.size)
            for a in attachments
        ],
    )


@router.get("/messages", summary="List messages", response_model=Page[MessageOut])
async def list_(
    conversation_id: IdPath,
    token: TokenDep,
    db: SessionDep,
    limit: Limit = 50,
    cursor: CursorQuery = None,
    order: Annotated[Literal["asc", "desc"], Query(description="Oldest first (asc) or newest first.")] = "asc",
) -> Response:
    """Notes included (`note: true`). Keep `order` the same while following `next_cursor`."""
    if cursor is not None and not cursor.isdigit():
        raise Invalid("This cursor is not one a list gave out.")
    position = int(cursor) if cursor else None
    newest_first = order == "desc"
    page = await list_messages(
        db,
        integration(token),
        conversation_id,
        after=None if newest_first else position,
        before=position if newest_first else None,
        newest_first=newest_first,
        limit=limit,
    )
    items = [message_out(m, page.attachments.get(m.id, [])) for m in page.messages]
    return json_response(Page(items=items, next_cursor=None if page.next_after is None else str(page.next_after)))


class Reply(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "Your order ships **today**."}]})

    text: str = Field(min_length=1, max_length=TEXT_MAX)
    format: Literal["markdown", "plain"] = Field(
        "markdown", description="markdown: **bold**, _italic_, `code`, [links](url), as the channel can show them."
    )


async def _message(db: SessionDep, message_id: int) -> Message:
    return await db.get(Message, message_id)


@router.post("/messages", status_code=201, summary="Send a reply", responses=WRITE_ERRORS)
async def send(conversation_id: IdPath, reply: Reply, token: WriterDep, db: SessionDep, once: OnceDep) -> MessageOut:
    """Queued at once and delivered through the conversation's own channel (its status moves on
    from `queued`; read it back, or follow the webhooks)."""
    if (first := await once.replay(reply)) is not None:
        return first
    message_id, _ = await send_reply(
        db, token, conversation_id, reply.text, idempotency_key=once.effect_key(), fmt=MessageFormat(reply.format)
    )
    response = await once.answer(201, message_out(await _message(db, message_id)))
    await db.commit()
    return response


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"text": "VIP: call back before 6 pm"}]})

    text: str = Field(min_length=1, max_length=NOTE_MAX)


@router.post("/notes", status_code=201, summary="Write a private note", responses=WRITE_ERRORS)
async def note(conversation_id: IdPath, note: Note, token: WriterDep, db: SessionDep, once: OnceDep) -> MessageOut:
    """Seen by staff and integrations, never sent to the customer."""
    if (first := await once.replay(note)) is not None:
        return first
    message_id, _ = await add_note(db, token, conversation_id, note.text, idempotency_key=once.effect_key())
    response = await once.answer(201, message_out(await _message(db, message_id)))
    await db.commit()
    return response
