"""What an operator does to conversations (open, reply, transfer, resolve), as services the
cabinet and the API call.

Each checks the caller's rights on the ids it is given (no IDOR), writes PostgreSQL, and
tells the conversation's workflow through the outbox when the workflow must react.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import ConversationStatus, MessageFormat, OperatorRole, SenderKind
from infra.models import Branch, Contact, Conversation, Inbox, Operator
from services import audit
from services.assignment import LIVE
from services.errors import Forbidden, Invalid
from services.operators import is_supervisor
from services.outbox import add_notice
from services.outgoing import queue_message


async def conversation_for(
    db: AsyncSession, operator: Operator, conversation_id: int, *, lock: bool = False
) -> Conversation:
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


async def recent_conversations(db: AsyncSession, operator: Operator, limit: int = 100) -> list[Row]:
    """The latest conversations the operator may see, newest activity first, with the names a
    list shows (contact, channel, assignee)."""
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
        .limit(limit)
    )
    if not is_supervisor(operator):
        # operators see their branch's pool and what is assigned to them
        query = query.where(
            (Conversation.assignee_id == operator.id)
            | ((Conversation.branch_id == operator.branch_id) & Conversation.assignee_id.is_(None))
        )
    return list((await db.execute(query)).all())


async def open_conversation(db: AsyncSession, operator: Operator, conversation_id: int) -> Conversation:
    """The assignee looked at it: stops the escalation timer for good. Supervisors stay invisible."""
    conversation = await conversation_for(db, operator, conversation_id)
    if conversation.assignee_id == operator.id and conversation.opened_at is None:
        opened = await db.scalar(
            update(Conversation)
            .where(
                Conversation.id == conversation.id,
                Conversation.assignee_id == operator.id,
                Conversation.opened_at.is_(None),
            )
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
        ConversationNotice(
            kind=NoticeKind.TRANSFER,
            operator_id=operator.id,
            target_operator_id=to_operator_id,
            target_branch_id=to_branch_id,
        ),
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
    message_id, created = await queue_message(
        db,
        conversation,
        text,
        fmt=fmt,
        sender_kind=SenderKind.OPERATOR,
        sender_operator_id=operator.id,
        idempotency_key=f"reply:{operator.id}:{idempotency_key}",
    )
    if not created:
        return message_id, False
    conversation.last_activity_at = datetime.now(UTC)
    audit.record(
        db, "message.sent", operator_id=operator.id, conversation_id=conversation.id, details={"message_id": message_id}
    )
    return message_id, True
