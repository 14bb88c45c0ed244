"""Queueing an outgoing message, the one way: the message row (queued), keyed for idempotency,
and its delivery through the outbox, in the caller's transaction. Operator replies and the
workflow's system messages (offline text, auto-reply, rating request) both come here; a reply
to a contact the conversation's bot cannot reach is refused here, before anything is queued
(the workflow skips its own messages to them)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import DeliveryStatus, MessageDirection, MessageFormat, SenderKind
from domain.events import MessageCreated
from domain.wording import N_
from infra.event_log import conversation_ids, publish
from infra.logs import correlation_id
from infra.models import ContactChat, Conversation, Message
from services.errors import ContactUnreachable
from services.outbox import add_delivery
from services.uploads import StoredUpload


async def queue_message(
    db: AsyncSession,
    conversation: Conversation,
    text: str,
    *,
    fmt: MessageFormat,
    sender_kind: SenderKind,
    idempotency_key: str,
    sender_operator_id: int | None = None,
    sender_token_id: int | None = None,
    purpose: str | None = None,
    attachments: Sequence[StoredUpload] = (),
) -> tuple[int, bool]:
    """(message id, created). The same idempotency key returns the first message and queues
    nothing again (nor its files), so a retried click or a retried activity sends once. Raises
    ContactUnreachable for a reply by a person (not the system) that could not be delivered."""
    if sender_kind != SenderKind.SYSTEM and not await _reachable(db, conversation):
        # a retry of a reply accepted before the contact blocked the bot gets that reply back
        accepted = await db.scalar(select(Message.id).where(Message.idempotency_key == idempotency_key))
        if accepted is not None:
            return accepted, False
        raise ContactUnreachable(
            N_(
                "The customer has blocked or stopped this bot, so the reply cannot reach them. "
                "They can be answered here again once they restart it."
            )
        )
    message_id = await db.scalar(
        insert(Message)
        .values(
            conversation_id=conversation.id,
            inbox_id=conversation.inbox_id,
            direction=MessageDirection.OUT,
            sender_kind=sender_kind,
            sender_operator_id=sender_operator_id,
            sender_token_id=sender_token_id,
            text=text,
            format=fmt,
            idempotency_key=idempotency_key,
            delivery_status=DeliveryStatus.QUEUED,
            correlation_id=correlation_id(),
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Message.id)
    )
    if message_id is None:
        return await db.scalar(select(Message.id).where(Message.idempotency_key == idempotency_key)), False
    db.add_all(item.row(message_id) for item in attachments)
    await add_delivery(db, conversation.id, message_id)
    await publish(
        db,
        MessageCreated.of(
            conversation_ids(conversation),
            message_id=message_id,
            direction=MessageDirection.OUT,
            sender_kind=sender_kind,
            purpose=purpose,
        ),
    )
    return message_id, True


async def _reachable(db: AsyncSession, conversation: Conversation) -> bool:
    return bool(
        await db.scalar(
            select(ContactChat.reachable).where(
                ContactChat.identity_id == conversation.identity_id, ContactChat.inbox_id == conversation.inbox_id
            )
        )
    )
