"""Snoozes: a conversation set aside until a time, or until the customer's next message.

The database holds the snooze (`snoozed_at`, `snoozed_until`), so it leaves Mine and Unassigned
at once; the conversation's workflow holds the timer and pauses assignment and escalation
meanwhile. It wakes when its time comes (the workflow's `wake_conversation`), when the customer
writes (whichever snooze it was: they are not left unseen until a time), or when an operator
answers or resolves it; waking
is announced so its row comes back into the lists and its assignee is told as of a new message.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from domain.conversation import ConversationNotice, NoticeKind
from domain.events import ConversationChange, ConversationUpdated
from domain.wording import N_
from infra.event_log import conversation_ids, publish
from infra.models import Conversation
from services import audit
from services.errors import Invalid
from services.outbox import add_notice

LONGEST = timedelta(days=365)
TIME = "time"  # the reason a snooze ends when its time came


async def start(
    db: AsyncSession,
    conversation: Conversation,
    until: datetime | None,
    *,
    actor: dict[str, int],
    operator_id: int | None,
) -> bool:
    """Snooze the (locked, live) conversation; False when it is snoozed so already (a retry)."""
    now = datetime.now(UTC)
    if until is not None:
        if until.tzinfo is None:
            raise Invalid(N_("Give the time with its time zone."))
        if until <= now:
            raise Invalid(N_("Choose a time in the future."))
        if until > now + LONGEST:
            raise Invalid(N_("A conversation can be snoozed for a year at most."))
        until = until.astimezone(UTC)
    if conversation.snoozed_at is not None and conversation.snoozed_until == until:
        return False
    conversation.snoozed_at, conversation.snoozed_until = now, until
    details = {"until": until.isoformat() if until else None}
    audit.record(db, "conversation.snoozed", **actor, conversation_id=conversation.id, details=details)
    await publish(db, ConversationUpdated.of(conversation_ids(conversation), change=ConversationChange.SNOOZE))
    notice = ConversationNotice(kind=NoticeKind.SNOOZE, operator_id=operator_id, until=until)
    await add_notice(db, conversation.id, notice)
    return True


async def end(
    db: AsyncSession,
    conversation: Conversation,
    *,
    reason: str,
    actor: dict[str, int] | None = None,
    tell_workflow: bool = True,
) -> bool:
    """Wake the (locked) conversation if it is snoozed; `reason`: time, customer, reply, resolve.
    The workflow is told unless it is the one waking it."""
    if conversation.snoozed_at is None:
        return False
    conversation.snoozed_at = conversation.snoozed_until = None
    conversation.last_activity_at = datetime.now(UTC)  # back at the top of the list
    audit.record(db, "conversation.woken", **(actor or {}), conversation_id=conversation.id, details={"reason": reason})
    # a customer's message or an operator's answer announces itself (and tells the assignee)
    change = ConversationChange.WOKEN if reason == TIME else ConversationChange.SNOOZE
    await publish(db, ConversationUpdated.of(conversation_ids(conversation), change=change))
    if tell_workflow:
        await add_notice(db, conversation.id, ConversationNotice(kind=NoticeKind.WAKE))
    return True
