"""What an operator does to conversations (open, take, reply, transfer, resolve, snooze, reopen),
as services the cabinet and the API call.

Each checks the caller's rights on the ids it is given (no IDOR), writes PostgreSQL, and
tells the conversation's workflow through the outbox when the workflow must react. Looking
(open) needs the conversation visible; every action in it goes through `acting_on`, which
also needs it writable: supervisors and admins watch what is someone else's until they `take`
it (domain.visibility, READ vs WRITE).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import ConversationStatus, MessageFormat, Priority, SenderKind
from domain.events import ConversationChange, ConversationStatusChanged, ConversationUpdated
from domain.visibility import may_move_to
from domain.wording import N_
from infra.event_log import conversation_ids, publish
from infra.models import ApiToken, Branch, Conversation, Operator
from services import audit, snoozes
from services.assignment import LIVE, lock_branch, set_assignee
from services.errors import Invalid
from services.outbox import add_notice
from services.outgoing import queue_message
from services.uploads import StoredUpload
from services.visibility import Caller, load_conversation, require_change, require_write, staff, viewer_of


async def acting_on(db: AsyncSession, caller: Caller, conversation_id: int, *, lock: bool = False) -> Conversation:
    """The conversation, if `caller` may act in it (its assignee, an operator of the branch whose
    pool holds it, a read-write token of its branch): Forbidden when they may not see it, Invalid
    (read-only) when they only watch it. The one check every action makes."""
    viewer = viewer_of(caller)
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
        raise Invalid(N_("Only open conversations can be taken."))
    if conversation.assignee_id == operator.id and conversation.opened_at is not None:
        return conversation
    await set_assignee(db, conversation, operator.id, action="conversation.taken", actor_operator_id=operator.id)
    conversation.opened_at = datetime.now(UTC)
    await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.ASSIGNED, operator_id=operator.id))
    await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.OPENED, operator_id=operator.id))
    return conversation


async def request_transfer(
    db: AsyncSession,
    caller: Caller,
    conversation_id: int,
    *,
    to_operator_id: int | None = None,
    to_branch_id: int | None = None,
) -> None:
    """Ask the workflow to move the conversation (to an operator, or to the first free one of a
    branch); a token moves only within its branches. The workflow checks the target again when
    it applies the notice."""
    if (to_operator_id is None) == (to_branch_id is None):
        raise Invalid(N_("Choose either an operator or a branch to transfer to."))
    viewer = viewer_of(caller)
    conversation = await acting_on(db, caller, conversation_id)
    if conversation.status not in LIVE:
        raise Invalid(N_("Only open conversations can be transferred."))
    if to_operator_id is not None:
        target = await db.get(Operator, to_operator_id)
        if target is None or not target.is_active or not may_move_to(viewer, target.branch_id):
            raise Invalid(N_("That operator does not exist or is deactivated."))
        if target.branch_id is None:
            raise Invalid(N_("That operator is in no branch: give them one first."))
    elif await db.get(Branch, to_branch_id) is None or not may_move_to(viewer, to_branch_id):
        raise Invalid(N_("That branch does not exist."))
    await add_notice(
        db,
        conversation.id,
        ConversationNotice(
            kind=NoticeKind.TRANSFER,
            operator_id=_operator_id(caller),
            target_operator_id=to_operator_id,
            target_branch_id=to_branch_id,
        ),
    )
    _audit_request(db, caller, "conversation.transfer_requested", conversation.id)


async def request_resolve(db: AsyncSession, caller: Caller, conversation_id: int) -> None:
    conversation = await acting_on(db, caller, conversation_id, lock=True)
    if conversation.status not in LIVE:
        raise Invalid(N_("This conversation is not open."))
    await snoozes.end(db, conversation, reason="resolve", actor=audit.by(caller))
    await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.RESOLVE, operator_id=_operator_id(caller)))
    _audit_request(db, caller, "conversation.resolve_requested", conversation.id)


async def set_priority(db: AsyncSession, caller: Caller, conversation_id: int, priority: Priority) -> Conversation:
    viewer = viewer_of(caller)
    conversation = await load_conversation(db, viewer, conversation_id, lock=True)
    require_change(viewer, conversation)
    if conversation.priority != priority:
        previous, conversation.priority = conversation.priority, int(priority)
        audit.record(
            db,
            "conversation.priority",
            **audit.by(caller),
            conversation_id=conversation.id,
            details={"from": previous, "to": int(priority)},
        )
        await publish(db, ConversationUpdated.of(conversation_ids(conversation), change=ConversationChange.PRIORITY))
    return conversation


async def snooze(db: AsyncSession, caller: Caller, conversation_id: int, until: datetime | None) -> Conversation:
    """Set it aside until `until`, or until the customer's next message (None); its assignee
    stays. Snoozing it again the same way changes nothing (a retried request)."""
    conversation = await acting_on(db, caller, conversation_id, lock=True)
    if conversation.status not in LIVE:
        raise Invalid(N_("Only open conversations can be snoozed."))
    await snoozes.start(db, conversation, until, actor=audit.by(caller), operator_id=_operator_id(caller))
    return conversation


async def reopen(db: AsyncSession, caller: Caller, conversation_id: int) -> Conversation:
    """Reopen a resolved or closed conversation: an operator gets it, opened (no escalation); a
    token leaves its assignee, whose escalation window starts again. Nothing is sent to the
    customer: the offline text and the auto-reply answer a customer's own message (ingest's
    REOPENED notice), not staff's decision."""
    viewer = viewer_of(caller)
    operator_id = _operator_id(caller)
    branch_id = await db.scalar(select(Conversation.branch_id).where(Conversation.id == conversation_id))
    if branch_id is not None:
        await lock_branch(db, branch_id)  # branch first, then the row: as every assignment does
    conversation = await load_conversation(db, viewer, conversation_id, lock=True)
    if operator_id is None:
        require_write(viewer, conversation)
    if conversation.status == ConversationStatus.OPEN and operator_id in (None, conversation.assignee_id):
        return conversation  # reopened already (a second click, a retried request)
    if conversation.status not in (ConversationStatus.RESOLVED, ConversationStatus.CLOSED):
        raise Invalid(N_("Only resolved or closed conversations can be reopened."))
    if conversation.status == ConversationStatus.CLOSED:
        newer = exists().where(
            Conversation.inbox_id == conversation.inbox_id,
            Conversation.identity_id == conversation.identity_id,
            Conversation.status != ConversationStatus.CLOSED,
        )
        if await db.scalar(select(newer)):
            raise Invalid(N_("The customer has a newer conversation in this inbox: answer there."))
    previous, conversation.status = conversation.status, ConversationStatus.OPEN
    conversation.resolved_at = conversation.closed_at = None
    now = datetime.now(UTC)
    if operator_id is not None and conversation.assignee_id != operator_id:
        await set_assignee(db, conversation, operator_id, action="conversation.taken", actor_operator_id=operator_id)
    elif conversation.assignee_id is not None:
        conversation.assigned_at = now
    conversation.opened_at = now if operator_id is not None else None
    conversation.last_activity_at = now
    audit.record(db, "conversation.reopened", **audit.by(caller), conversation_id=conversation.id)
    await publish(
        db,
        ConversationStatusChanged.of(
            conversation_ids(conversation), status=ConversationStatus.OPEN, previous_status=previous
        ),
    )
    await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.REOPEN, operator_id=operator_id))
    return conversation


def _operator_id(caller: Caller) -> int | None:
    """Who acted, as a notice tells the workflow (which audits the change itself)."""
    return None if isinstance(caller, ApiToken) else caller.id


def _audit_request(db: AsyncSession, caller: Caller, action: str, conversation_id: int) -> None:
    """The workflow audits what a token asked for as the system's doing: the request itself is
    recorded with the token here."""
    if isinstance(caller, ApiToken):
        audit.record(db, action, token_id=caller.id, conversation_id=conversation_id)


async def send_reply(
    db: AsyncSession,
    caller: Caller,
    conversation_id: int,
    text: str,
    *,
    idempotency_key: str,
    fmt: MessageFormat = MessageFormat.MARKDOWN,
    attachments: Sequence[StoredUpload] = (),
) -> tuple[int, bool]:
    """Queue a reply (an operator's, or an integration's), with any files already in the store,
    for delivery through the conversation's own channel. The assignee answering has opened it,
    as far as escalation goes.

    Returns (message id, created); the same idempotency key returns the first message.
    """
    text = text.strip()
    if not text and not attachments:
        raise Invalid(N_("The message is empty."))
    conversation = await acting_on(db, caller, conversation_id, lock=True)
    if conversation.status == ConversationStatus.CLOSED:
        raise Invalid(N_("This conversation is closed."))
    if isinstance(caller, ApiToken):
        sender = {"sender_kind": SenderKind.INTEGRATION, "sender_token_id": caller.id}
        scope = f"api{caller.id}"
    else:
        sender = {"sender_kind": SenderKind.OPERATOR, "sender_operator_id": caller.id}
        scope = str(caller.id)
    message_id, created = await queue_message(
        db,
        conversation,
        text,
        fmt=fmt,
        idempotency_key=f"reply:{scope}:{idempotency_key}",
        attachments=attachments,
        **sender,
    )
    if not created:
        return message_id, False
    if not isinstance(caller, ApiToken):
        await _opened_by(db, conversation, caller)
    await snoozes.end(db, conversation, reason="reply", actor=audit.by(caller))
    conversation.last_activity_at = datetime.now(UTC)
    audit.record(
        db, "message.sent", **audit.by(caller), conversation_id=conversation.id, details={"message_id": message_id}
    )
    return message_id, True
