"""What an operator does to conversations (open, take, reply, transfer, resolve), as services
the cabinet and the API call.

Each checks the caller's rights on the ids it is given (no IDOR), writes PostgreSQL, and
tells the conversation's workflow through the outbox when the workflow must react. Looking
(open) needs the conversation visible; every action in it goes through `acting_on`, which
also needs it writable: supervisors and admins watch what is someone else's until they `take`
it (domain.visibility, READ vs WRITE).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import ConversationStatus, MessageFormat, SenderKind
from infra.models import Branch, Contact, Conversation, Inbox, Operator
from services import audit
from services.assignment import LIVE, lock_branch, set_assignee
from services.errors import Invalid
from services.outbox import add_notice
from services.outgoing import queue_message
from services.visibility import load_conversation, require_write, staff, visible_to


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
        .where(visible_to(staff(operator)))
        .order_by(Conversation.last_activity_at.desc())
        .limit(limit)
    )
    return list((await db.execute(query)).all())


async def acting_on(db: AsyncSession, operator: Operator, conversation_id: int, *, lock: bool = False) -> Conversation:
    """The conversation, if `operator` may act in it (its assignee, or an operator of the branch
    whose pool holds it): Forbidden when they may not see it, Invalid (read-only) when they only
    watch it. The one check every action makes."""
    viewer = staff(operator)
    conversation = await load_conversation(db, viewer, conversation_id, lock=lock)
    require_write(viewer, conversation)
    return conversation


async def open_conversation(db: AsyncSession, operator: Operator, conversation_id: int) -> Conversation:
    """The assignee looked at it: stops the escalation timer for good. Supervisors stay invisible."""
    conversation = await load_conversation(db, staff(operator), conversation_id)
    await _opened_by(db, conversation, operator)
    return conversation


async def _opened_by(db: AsyncSession, conversation: Conversation, operator: Operator) -> None:
    """The first time the assignee opens or answers it: opened_at, and the OPENED notice."""
    if conversation.assignee_id != operator.id or conversation.opened_at is not None:
        return
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


async def take(db: AsyncSession, operator: Operator, conversation_id: int) -> Conversation:
    """ "Assign to me" (an operator, from their branch's pool) or "take over" (a supervisor or an
    admin, from anyone): at once, the caller is the assignee and has it open, so they may answer
    and no escalation takes it away. The workflow hears both through the outbox."""
    viewer = staff(operator)
    branch_id = await db.scalar(select(Conversation.branch_id).where(Conversation.id == conversation_id))
    if branch_id is not None:
        await lock_branch(db, branch_id)  # branch first, then the row: as every assignment does
    conversation = await load_conversation(db, viewer, conversation_id, lock=True)
    if conversation.status not in LIVE:
        raise Invalid("Only open conversations can be taken.")
    if conversation.assignee_id == operator.id and conversation.opened_at is not None:
        return conversation
    await set_assignee(db, conversation, operator.id, action="conversation.taken", actor_operator_id=operator.id)
    conversation.opened_at = datetime.now(UTC)
    await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.ASSIGNED, operator_id=operator.id))
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
    """Ask the workflow to move the conversation (to an operator, or to the first free one of a
    branch). The workflow checks the target again when it applies the notice."""
    if (to_operator_id is None) == (to_branch_id is None):
        raise Invalid("Choose either an operator or a branch to transfer to.")
    conversation = await acting_on(db, operator, conversation_id)
    if conversation.status not in LIVE:
        raise Invalid("Only open conversations can be transferred.")
    if to_operator_id is not None:
        target = await db.get(Operator, to_operator_id)
        if target is None or not target.is_active:
            raise Invalid("That operator does not exist or is deactivated.")
        if target.branch_id is None:
            raise Invalid("That operator is in no branch: give them one first.")
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
    conversation = await acting_on(db, operator, conversation_id)
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
    """Queue an operator's reply for delivery through the conversation's own channel. The
    assignee answering has opened it, as far as escalation goes.

    Returns (message id, created); the same idempotency key returns the first message.
    """
    text = text.strip()
    if not text:
        raise Invalid("The message is empty.")
    conversation = await acting_on(db, operator, conversation_id, lock=True)
    if conversation.status == ConversationStatus.CLOSED:
        raise Invalid("This conversation is closed.")
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
    await _opened_by(db, conversation, operator)
    conversation.last_activity_at = datetime.now(UTC)
    audit.record(
        db, "message.sent", operator_id=operator.id, conversation_id=conversation.id, details={"message_id": message_id}
    )
    return message_id, True
