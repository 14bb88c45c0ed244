"""Lists of conversations as the cabinet and the API show them: the visibility predicate, filters,
newest activity first, and keyset pagination (never OFFSET) on (last_activity_at, id).

A cursor is the last row's position, opaque to clients; it stays valid while rows change (a
row whose activity moves past the cursor is simply found on an earlier page).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime

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
    # a piece of the contact's name, phone or username, or of a message's text
    search: str | None = Field(default=None, max_length=SEARCH_MAX)


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page ended: the last row's activity time and id."""

    last_activity_at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.last_activity_at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            moment, conversation_id = raw.split("|")
            at = datetime.fromisoformat(moment)
            if at.tzinfo is None:
                raise ValueError("naive time")
            return cls(at, int(conversation_id))
        except (ValueError, UnicodeDecodeError):
            raise Invalid("This cursor is not one a list gave out.") from None


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


async def list_conversations(
    db: AsyncSession, viewer: Viewer, wanted: ConversationFilter, *, after: Cursor | None = None, limit: int = 50
) -> tuple[list[Row], Cursor | None]:
    """One page of the conversations `viewer` may see, and the cursor of the next (None: last)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = _filtered(_rows().where(visible_to(viewer)), wanted)
    if after is not None:
        query = query.where(tuple_(Conversation.last_activity_at, Conversation.id) < (after.last_activity_at, after.id))
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit + 1)
    rows = list((await db.execute(query)).all())
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], Cursor(last.last_activity_at, last.id)


async def conversation_row(db: AsyncSession, viewer: Viewer, conversation_id: int) -> Row:
    """One conversation as lists show it, if `viewer` may see it (Forbidden otherwise)."""
    row = (await db.execute(_rows().where(Conversation.id == conversation_id, visible_to(viewer)))).first()
    if row is None:
        raise Forbidden()
    return row
