"""What an operator's inbox shows besides the list itself: each row's last message and unread
count, the tabs' counts, the unread badge, and the read marks that feed them.

Unread is per operator: the customer's messages after the last one the operator read
(`read_states`). Only someone who may act in a conversation marks it read; a supervisor who
watches someone else's conversation leaves it unread for its assignee.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import and_, func, literal_column, select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import ConversationStatus, MessageDirection
from domain.visibility import Access, Viewer, access
from infra.models import Branch, Conversation, Message, Operator, ReadState
from services import audit
from services.conversations import open_conversation
from services.visibility import placement, staff, visible_to

LIVE = (ConversationStatus.OPEN, ConversationStatus.PENDING)
PREVIEW_CHARS = 120


@dataclass(frozen=True, slots=True)
class RowExtras:
    preview: str
    preview_is_ours: bool  # the last message is ours (an operator's or the system's), not the customer's
    unread: int


async def row_extras(db: AsyncSession, operator: Operator, conversation_ids: Iterable[int]) -> dict[int, RowExtras]:
    """For each conversation: its last message (notes aside) and how many of the customer's
    messages `operator` has not read."""
    ids = list(conversation_ids)
    if not ids:
        return {}
    read_upto = (
        select(ReadState.last_read_message_id)
        .where(ReadState.operator_id == operator.id, ReadState.conversation_id == Conversation.id)
        .correlate(Conversation)
        .scalar_subquery()
    )
    last = (
        select(Message.text, Message.direction)
        .where(Message.conversation_id == Conversation.id, Message.is_note.is_(False))
        .order_by(Message.id.desc())
        .limit(1)
        .lateral("last")
    )
    unread = (
        select(func.count().label("n"))
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == MessageDirection.IN,
            Message.id > func.coalesce(read_upto, 0),
        )
        .lateral("unread")
    )
    query = (
        select(Conversation.id, last.c.text, last.c.direction, unread.c.n)
        .select_from(Conversation)
        .outerjoin(last, true())
        .join(unread, true())
        .where(Conversation.id.in_(ids))
    )
    rows = await db.execute(query)
    return {
        row.id: RowExtras(
            " ".join((row.text or "").split())[:PREVIEW_CHARS],
            row.direction == MessageDirection.OUT,
            row.n,
        )
        for row in rows
    }


def _unread_for(operator: Operator):
    """EXISTS: a customer's message in the conversation the operator has not read."""
    read_upto = (
        select(ReadState.last_read_message_id)
        .where(ReadState.operator_id == operator.id, ReadState.conversation_id == Conversation.id)
        .correlate(Conversation)
        .scalar_subquery()
    )
    return (
        select(Message.id)
        .where(
            Message.conversation_id == Conversation.id,
            Message.direction == MessageDirection.IN,
            Message.id > func.coalesce(read_upto, 0),
        )
        .exists()
    )


async def unread_conversations(db: AsyncSession, operator: Operator) -> int:
    """The navigation's badge and the tab title: the operator's own live conversations with a
    customer message they have not read."""
    return await db.scalar(
        select(func.count())
        .select_from(Conversation)
        .where(Conversation.assignee_id == operator.id, Conversation.status.in_(LIVE), _unread_for(operator))
    )


@dataclass(frozen=True, slots=True)
class TabCounts:
    mine: int
    unassigned: int
    all: int | None  # None: the operator has no "All" tab


async def tab_counts(db: AsyncSession, operator: Operator, *, with_all: bool) -> TabCounts:
    """Live (open or pending, not snoozed) conversations per tab: mine, my branch's pool, all I may see."""
    viewer = staff(operator)
    live = and_(Conversation.status.in_(LIVE), Conversation.snoozed_at.is_(None), visible_to(viewer))
    pool = Conversation.assignee_id.is_(None)
    if operator.branch_id is not None:
        pool = and_(pool, Conversation.branch_id == operator.branch_id)
    counts = select(
        func.count().filter(Conversation.assignee_id == operator.id),
        func.count().filter(pool),
        func.count() if with_all else literal_column("NULL"),
    ).where(live)
    mine, unassigned, everything = (await db.execute(counts)).one()
    return TabCounts(mine, unassigned, everything)


def marks_read(viewer: Viewer, conversation: Conversation) -> bool:
    """Whether looking at the conversation counts as reading it: only for who may act in it."""
    return access(viewer, placement(conversation)) == Access.WRITE


async def mark_read(db: AsyncSession, operator: Operator, conversation: Conversation, up_to: int | None = None) -> bool:
    """The operator has read the conversation up to message `up_to` (default: its last message).
    Never moves back; a watcher who may not act in it marks nothing. True when it moved on."""
    if not marks_read(staff(operator), conversation):
        return False
    newest = select(func.max(Message.id)).where(Message.conversation_id == conversation.id)
    if up_to is not None:
        newest = newest.where(Message.id <= up_to)
    marked = select(ReadState.last_read_message_id).where(
        ReadState.operator_id == operator.id, ReadState.conversation_id == conversation.id
    )
    last, read_upto = (await db.execute(select(newest.scalar_subquery(), marked.scalar_subquery()))).one()
    if last is None or (read_upto is not None and read_upto >= last):
        # nothing to move: no upsert, which would lock the row even when it changes nothing
        # (every view of a conversation already read would wait for the others)
        return False
    moved = await db.scalar(
        insert(ReadState)
        .values(operator_id=operator.id, conversation_id=conversation.id, last_read_message_id=last)
        .on_conflict_do_update(
            index_elements=["operator_id", "conversation_id"],
            set_={"last_read_message_id": last, "read_at": func.now()},
            where=ReadState.last_read_message_id < last,
        )
        .returning(ReadState.operator_id)
    )
    return moved is not None


@dataclass(frozen=True, slots=True)
class Look:
    read_only: bool  # a supervisor watching someone else's conversation
    read: bool  # the operator's read mark moved on: their unread counts may have changed


async def look_at(db: AsyncSession, operator: Operator, conversation: Conversation) -> Look:
    """The operator opened the conversation's page: for whoever may act in it, that is opening
    it (escalation stops) and reading it; a supervisor watching someone else's conversation
    changes nothing anyone sees, and the look is audited."""
    if not marks_read(staff(operator), conversation):
        audit.record(db, "conversation.watched", operator_id=operator.id, conversation_id=conversation.id)
        return Look(read_only=True, read=False)
    await open_conversation(db, operator, conversation.id)
    return Look(read_only=False, read=await mark_read(db, operator, conversation))


@dataclass(frozen=True, slots=True)
class TransferTarget:
    operator: Operator
    branch_name: str | None
    load: int  # live conversations assigned to them now


async def transfer_targets(db: AsyncSession) -> list[TransferTarget]:
    """Every active operator with their branch, status and current load, for "transfer to"."""
    load = (
        select(func.count())
        .where(Conversation.assignee_id == Operator.id, Conversation.status.in_(LIVE))
        .correlate(Operator)
        .scalar_subquery()
    )
    rows = await db.execute(
        select(Operator, Branch.name, load)
        .outerjoin(Branch, Branch.id == Operator.branch_id)
        .where(Operator.is_active, Operator.branch_id.isnot(None))
        .order_by(Branch.name, Operator.display_name)
    )
    return [TransferTarget(operator, branch, n) for operator, branch, n in rows]
