"""What an operator does to conversations (open, reply, transfer, resolve), as services the
cabinet and the API call.

Each checks the caller's rights on the ids it is given (no IDOR), writes PostgreSQL, and
tells the conversation's workflow through the outbox when the workflow must react.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import ConversationStatus, DeliveryStatus, MessageDirection, MessageFormat, OperatorRole, SenderKind
from infra.models import AuditEvent, Branch, Conversation, Message, Operator
from infra.realtime import publish
from services.assignment import LIVE
from services.errors import Forbidden, Invalid
from services.operators import is_supervisor
from services.outbox import add_delivery, add_notice

async def conversation_for(db: AsyncSession, operator: Operator, conversation_id: int, *, lock: bool = False) -> Conversation:
    """Load a conversation the operator may see: supervisors all; operators their own and their branch's pool."""
    query = select(Conversation).where(Conversation.id == conversation_id)
    if lock:
        query = query.with_for_update()
    conversation = await db.scalar(query)
    if conversation is None:
        raise Forbidden()
    if is_supervisor(operator):
        return conversation
    own = conversation.assignee_id == operator.id
    pool = conversation.assignee_id is None and conversation.branch_id == operator.branch_id
    if not (own or pool):
        raise Forbidden()
    return conversation


async def open_conversation(db: AsyncSession, operator: Operator, conversation_id: int) -> Conversation:
    """The assignee looked at it: stops the escalation timer for good. Supervisors stay invisible."""
    conversation = await conversation_for(db, operator, conversation_id)
    if conversation.assignee_id == operator.id and conversation.opened_at is None:
        opened = await db.scalar(
            update(Conversation)
            .where(Conversation.id == conversation.id, Conversation.assignee_id == operator.id,
                   Conversation.opened_at.is_(None))
            .values(opened_at=datetime.now(UTC))
            .returning(Conversation.opened_at)
        )
        if opened is not None:
            conversation.opened_at = opened
            await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.OPENED, operator_id=operator.id))
    return conversation


async def request_transfer(
    db: AsyncSession,
    operator: Operator,
    conversation_id: int,
    *,
    to_operator_id: int | None = None,
    to_branch_id: int | None = None,
) -> None:
    if (to_operator_id is None) == (to_branch_id is None):
        raise Invalid("Choose either an operator or a branch to transfer to.")
    conversation = await conversation_for(db, operator, conversation_id)
    if conversation.status not in LIVE:
        raise Invalid("Only open conversations can be transferred.")
    if to_operator_id is not None:
        target = await db.get(Operator, to_operator_id)
        if target is None or not target.is_active:
            raise Invalid("That operator does not exist or is deactivated.")
    elif await db.get(Branch, to_branch_id) is None:
        raise Invalid("That branch does not exist.")
    await add_notice(
        db,
        conversation.id,
        ConversationNotice(kind=NoticeKind.TRANSFER, operator_id=operator.id,
                           target_operator_id=to_operator_id, target_branch_id=to_branch_id),
    )


async def request_resolve(db: AsyncSession, operator: Operator, conversation_id: int) -> None:
    conversation = await conversation_for(db, operator, conversation_id)
    if conversation.status not in LIVE:
        raise Invalid("This conversation is not open.")
    await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.RESOLVE, operator_id=operator.id))


async def send_reply(
    db: AsyncSession,
    operator: Operator,
    conversation_id: int,
    text: str,
    *,
    idempotency_key: str,
    fmt: MessageFormat = MessageFormat.MARKDOWN,
) -> tuple[int, bool]:
    """Queue an operator's reply for delivery through the conversation's own channel.

    Returns (message id, created); the same idempotency key returns the first message.
    """
    text = text.strip()
    if not text:
        raise Invalid("The message is empty.")
    conversation = await conversation_for(db, operator, conversation_id, lock=True)
    if conversation.status == ConversationStatus.CLOSED:
        raise Invalid("This conversation is closed.")
    if operator.role == OperatorRole.ADMIN and conversation.assignee_id != operator.id:
        raise Invalid("Read-only view: take the conversation before answering.")
    key = f"reply:{operator.id}:{idempotency_key}"
    message_id = await db.scalar(
        insert(Message)
        .values(conversation_id=conversation.id, inbox_id=conversation.inbox_id, direction=MessageDirection.OUT,
                sender_kind=SenderKind.OPERATOR, sender_operator_id=operator.id, text=text, format=fmt,
                idempotency_key=key, delivery_status=DeliveryStatus.QUEUED)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Message.id)
    )
    if message_id is None:
        return await db.scalar(select(Message.id).where(Message.idempotency_key == key)), False
    conversation.last_activity_at = datetime.now(UTC)
    await add_delivery(db, conversation.id, message_id)
    db.add(AuditEvent(actor_operator_id=operator.id, actor_kind="operator", action="message.sent",
                      conversation_id=conversation.id, details={"message_id": message_id}))
    await publish(db, "message.created", conversation_id=conversation.id, message_id=message_id,
                  branch_id=conversation.branch_id, assignee_id=conversation.assignee_id, direction="out")
    return message_id, True
