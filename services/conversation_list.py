"""Lists of conversations as the cabinet and the API show them: the visibility predicate, filters,
one of four sorts, and keyset pagination (never OFFSET) on the sort's key and the id.

A cursor is the last row's position in its sort, opaque to clients; it stays valid while rows
change (a row whose key moves past the cursor is simply found on an earlier page), and a cursor
of one sort given to another is refused (Invalid), never read as a position it is not.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Row, Select, and_, exists, literal_column, or_, select, tuple_, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.enums import ChannelKind, ConversationStatus
from domain.visibility import Viewer
from infra.models import (
    PHONE_DIGITS,
    AuditEvent,
    Contact,
    ContactIdentity,
    Conversation,
    ConversationLabel,
    Inbox,
    Message,
    Operator,
)
from services.errors import Forbidden, Invalid
from services.visibility import visible_to

MAX_PAGE = 200
ESCALATION_EXHAUSTED = "conversation.escalation_exhausted"  # the audit action activities write
SEARCH_MAX = 100


class ConversationFilter(BaseModel):
    status: list[ConversationStatus] | None = None
    inbox_id: int | None = None
    branch_id: int | None = None
    assignee_id: int | None = None
    unassigned: bool | None = None
    channel: ChannelKind | None = None
    contact_id: int | None = None
    conversation_id: int | None = None  # one conversation, if it passes the other filters
    # the customer wrote last and nobody has answered (an open or pending conversation)
    unanswered: bool | None = None
    label_id: int | None = None
    # every escalation ran out and nobody has been assigned since (an alert the supervisors got)
    escalation_exhausted: bool | None = None
    # snoozed (services.snoozes) or not
    snoozed: bool | None = None
    # a piece of the contact's name, phone or username, or of a message's text
    search: str | None = Field(default=None, max_length=SEARCH_MAX)


class Sort(StrEnum):
    ACTIVITY = "activity"  # newest activity first (the default)
    WAITING = "waiting"  # the longest-waiting unanswered customer first; nothing waiting last
    CREATED = "created"  # newest conversation first
    PRIORITY = "priority"  # highest priority first, then newest activity


@dataclass(frozen=True, slots=True)
class _Order:
    key: tuple  # columns compared as one row value, ending in the id
    descending: bool


# each key has an index (infra.models.Conversation) whose columns are exactly the key
_ORDERS = {
    Sort.ACTIVITY: _Order((Conversation.last_activity_at, Conversation.id), descending=True),
    Sort.WAITING: _Order((Conversation.waiting_since, Conversation.id), descending=False),
    Sort.CREATED: _Order((Conversation.created_at, Conversation.id), descending=True),
    Sort.PRIORITY: _Order((Conversation.priority, Conversation.last_activity_at, Conversation.id), descending=True),
}
_INVALID_CURSOR = "This cursor is not one a list of this sort gave out."


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the sort, and the last row's key in it (its last part the id)."""

    sort: Sort
    key: tuple

    def encode(self) -> str:
        parts = [v.isoformat() if isinstance(v, datetime) else str(v) for v in self.key]
        raw = "|".join([self.sort.value, *parts]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str, sort: Sort = Sort.ACTIVITY) -> Cursor:
        """The cursor, if a list in `sort` gave it out (Invalid otherwise)."""
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            parts = raw.split("|")
            if len(parts) == 2:  # given out before lists had sorts: newest activity first
                parts.insert(0, Sort.ACTIVITY.value)
            if parts[0] != sort.value or len(parts) != len(_ORDERS[sort].key) + 1:
                raise ValueError("another sort's cursor")
            return cls(
                sort, tuple(_read(column, text) for column, text in zip(_ORDERS[sort].key, parts[1:], strict=True))
            )
        except (ValueError, UnicodeDecodeError):
            raise Invalid(_INVALID_CURSOR) from None


def _read(column: ColumnElement, text: str) -> datetime | int:
    if column is Conversation.id or column is Conversation.priority:
        return int(text)
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError("naive time")
    return moment


def _rows() -> Select:
    return _ROWS


def _build_rows() -> Select:
    assignee = aliased(Operator)
    return (
        select(
            Conversation.id,
            Conversation.inbox_id,
            Inbox.channel,
            Conversation.interface,
            Conversation.contact_id,
            Contact.display_name.label("contact_name"),
            Conversation.branch_id,
            Conversation.assignee_id,
            assignee.display_name.label("assignee_name"),
            Conversation.status,
            Conversation.priority,
            Conversation.created_at,
            Conversation.last_activity_at,
            Conversation.last_in_at,
            Conversation.last_out_at,
            Conversation.assigned_at,
            Conversation.resolved_at,
            Conversation.closed_at,
            Conversation.rating,
            Conversation.snoozed_at,
            Conversation.snoozed_until,
        )
        .join(Contact, Contact.id == Conversation.contact_id)
        .join(Inbox, Inbox.id == Conversation.inbox_id)
        .outerjoin(assignee, assignee.id == Conversation.assignee_id)
    )


_ROWS = _build_rows()  # built once: a Select is immutable, and building it costs more than the query


def _filtered(query: Select, wanted: ConversationFilter) -> Select:
    if wanted.status:
        query = query.where(Conversation.status.in_(wanted.status))
    if wanted.inbox_id is not None:
        query = query.where(Conversation.inbox_id == wanted.inbox_id)
    if wanted.branch_id is not None:
        query = query.where(Conversation.branch_id == wanted.branch_id)
    if wanted.assignee_id is not None:
        query = query.where(Conversation.assignee_id == wanted.assignee_id)
    if wanted.unassigned is not None:
        query = query.where(
            Conversation.assignee_id.is_(None) if wanted.unassigned else Conversation.assignee_id.isnot(None)
        )
    if wanted.channel is not None:
        query = query.where(Inbox.channel == wanted.channel)
    if wanted.contact_id is not None:
        query = query.where(Conversation.contact_id == wanted.contact_id)
    if wanted.conversation_id is not None:
        query = query.where(Conversation.id == wanted.conversation_id)
    if wanted.unanswered is not None:
        unanswered = and_(
            Conversation.status.in_((ConversationStatus.OPEN, ConversationStatus.PENDING)),
            Conversation.last_in_at.isnot(None),
            or_(Conversation.last_out_at.is_(None), Conversation.last_in_at > Conversation.last_out_at),
        )
        query = query.where(unanswered if wanted.unanswered else ~unanswered)
    if wanted.label_id is not None:
        query = query.where(
            Conversation.id.in_(
                select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == wanted.label_id)
            )
        )
    if wanted.escalation_exhausted is not None:
        exhausted = exists().where(
            AuditEvent.conversation_id == Conversation.id,
            AuditEvent.action == ESCALATION_EXHAUSTED,
            or_(Conversation.assigned_at.is_(None), AuditEvent.created_at > Conversation.assigned_at),
        )
        query = query.where(exhausted if wanted.escalation_exhausted else ~exhausted)
    if wanted.snoozed is not None:
        query = query.where(
            Conversation.snoozed_at.isnot(None) if wanted.snoozed else Conversation.snoozed_at.is_(None)
        )
    if wanted.search and wanted.search.strip():
        query = query.where(_matching(wanted.search.strip()))
    return query


def _matching(term: str) -> ColumnElement[bool]:
    """The contact's name, phone or username, or a message's text, holds `term`. Trigram
    indexes answer each ILIKE (migration 0017); the matches are gathered first as one set of
    conversation ids, so the list joins a few rows instead of testing every conversation."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    contacts = [select(Contact.id).where(Contact.display_name.ilike(pattern, escape="\\"))]
    digits = "".join(ch for ch in term if ch.isdigit())
    if len(digits) >= 3:  # a phone is compared digit for digit, however either was written
        contacts.append(select(Contact.id).where(literal_column(PHONE_DIGITS).like(f"%{digits}%")))
    username = f"%{escaped.removeprefix('@')}%"
    contacts.append(select(ContactIdentity.contact_id).where(ContactIdentity.username.ilike(username, escape="\\")))
    theirs = aliased(Conversation)
    by_contact = select(theirs.id).where(theirs.contact_id.in_(union(*contacts)))
    by_text = select(Message.conversation_id).where(Message.text.ilike(pattern, escape="\\"))
    return Conversation.id.in_(union(by_contact, by_text))


def list_query(
    viewer: Viewer, wanted: ConversationFilter, *, sort: Sort = Sort.ACTIVITY, after: Cursor | None = None
) -> Select:
    """The page query without its LIMIT, its sort key as columns sort_key_0, sort_key_1, ..."""
    order = _ORDERS[sort]
    query = _filtered(_rows().where(visible_to(viewer)), wanted)
    if after is not None:
        if after.sort != sort:
            raise Invalid(_INVALID_CURSOR)
        position = tuple_(*order.key)
        query = query.where(position < after.key if order.descending else position > after.key)
    columns = [c.desc() if order.descending else c.asc() for c in order.key]
    return query.add_columns(*(c.label(f"sort_key_{i}") for i, c in enumerate(order.key))).order_by(*columns)


def descending(sort: Sort) -> bool:
    return _ORDERS[sort].descending


def position(row: Row) -> tuple | None:
    """A listed row's key in its list's sort (what a cursor after it would hold), None for a row
    read otherwise; a live update uses it to put the row where the list's next load would."""
    key = []
    while (value := getattr(row, f"sort_key_{len(key)}", None)) is not None:
        key.append(value)
    return tuple(key) or None


async def list_conversations(
    db: AsyncSession,
    viewer: Viewer,
    wanted: ConversationFilter,
    *,
    sort: Sort = Sort.ACTIVITY,
    after: Cursor | None = None,
    limit: int = 50,
) -> tuple[list[Row], Cursor | None]:
    """One page of the conversations `viewer` may see, and the cursor of the next (None: last)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = list_query(viewer, wanted, sort=sort, after=after)
    rows = list((await db.execute(query.limit(limit + 1))).all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Cursor(sort, tuple(getattr(last, f"sort_key_{i}") for i in range(len(_ORDERS[sort].key))))


async def conversation_row(db: AsyncSession, viewer: Viewer, conversation_id: int) -> Row:
    """One conversation as lists show it, if `viewer` may see it (Forbidden otherwise)."""
    row = (await db.execute(_rows().where(Conversation.id == conversation_id, visible_to(viewer)))).first()
    if row is None:
        raise Forbidden()
    return row
