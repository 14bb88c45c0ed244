"""What a website widget visitor does in their own conversation: write (through the one ingest
path, idempotent on the widget's client message id), read its history, catch up on its events
without a stream (the polling fallback), report what their browser received and showed (the
ticks), type, and rate. The visitor's scope is `domain.visibility.Visitor`: their conversation,
never another; anything else is as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.text import render_html
from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import (
    ChannelKind,
    ConversationStatus,
    DeliveryStatus,
    Interface,
    MessageDirection,
    MessageFormat,
    RatingMode,
)
from domain.events import BY_NAME, ConversationRated, MessageStatusChanged
from domain.rating import RANGES
from domain.visibility import Visitor, may_receive
from infra import event_log
from infra.event_log import conversation_ids, publish
from infra.models import Attachment, Conversation, Inbox, Message
from services.errors import Forbidden, Invalid
from services.ingest import IngestResult, ingest
from services.messages import list_messages
from services.widget_sessions import VisitorSession, current_conversation

PAGE = 100  # messages or events per answer; the widget asks again while `more` is true
TICKS_AT_ONCE = 200  # messages one acknowledgement may mark


def client_message_key(session: VisitorSession, client_id: str) -> str:
    """The stored provider id of a visitor's message: their own id space, so a client id another
    visitor also used (or guessed) never meets theirs."""
    return f"{session.visitor_id}:{client_id}"


def visitor_event(session: VisitorSession, kind: InboundKind, **fields: Any) -> InboundEvent:
    return InboundEvent(
        inbox_id=session.inbox_id,
        channel=ChannelKind.WIDGET,
        interface=Interface.WIDGET,
        kind=kind,
        provider_user_id=session.visitor_id,
        provider_chat_id=session.visitor_id,
        provider_time=datetime.now(UTC),
        **fields,
    )


async def post_message(
    factory: async_sessionmaker[AsyncSession],
    session: VisitorSession,
    client_id: str,
    text: str,
    *,
    profile: ContactProfile | None = None,
) -> IngestResult:
    """Store what the visitor wrote; the same client id again stores nothing and answers the
    message stored the first time."""
    event = visitor_event(
        session,
        InboundKind.MESSAGE,
        provider_message_id=client_message_key(session, client_id),
        text=text,
        profile=profile or ContactProfile(),
    )
    return await ingest(factory, event)


async def typing(factory: async_sessionmaker[AsyncSession], session: VisitorSession) -> None:
    await ingest(factory, visitor_event(session, InboundKind.TYPING))


@dataclass(frozen=True, slots=True)
class History:
    conversation: Conversation | None
    messages: list[dict[str, Any]]
    more: bool


def _message_out(session: VisitorSession, message: Message, attachments: list[Attachment]) -> dict[str, Any]:
    mine = message.direction == MessageDirection.IN
    prefix = f"{session.visitor_id}:"
    client_id = (
        message.provider_message_id[len(prefix) :]
        if mine and message.provider_message_id and message.provider_message_id.startswith(prefix)
        else None
    )
    # the visitor's own text is plain; ours may be Markdown-lite: both through the one renderer,
    # plain text escaped as text, never as markup
    html = render_html(message.text) if message.format == MessageFormat.MARKDOWN else _plain_html(message.text)
    return {
        "id": message.id,
        "mine": mine,
        "sender": message.sender_kind.value,
        "client_id": client_id,
        "html": html,
        "at": message.created_at.isoformat(),
        "status": None if mine else message.delivery_status.value,
        "attachments": [
            {"id": a.id, "name": a.file_name, "type": a.mime_type, "size": a.size, "ready": a.sha256 is not None}
            for a in attachments
        ],
    }


def _plain_html(text: str) -> str:
    """Plain text as HTML: escaped, nothing formatted (the `<` of a visitor stays a `<`)."""
    return escape(text, quote=False)


async def history(db: AsyncSession, session: VisitorSession, after: int | None) -> History:
    conversation = await current_conversation(db, session)
    if conversation is None:
        return History(None, [], False)
    page = await list_messages(db, Visitor(conversation.id), conversation.id, after=after, limit=PAGE)
    messages = [_message_out(session, m, page.attachments.get(m.id, [])) for m in page.messages]
    return History(conversation, messages, page.next_after is not None)


def conversation_out(conversation: Conversation | None, inbox: Inbox) -> dict[str, Any] | None:
    if conversation is None:
        return None
    mode = RatingMode((inbox.settings or {}).get("rating_mode") or RatingMode.NONE)
    return {
        "id": conversation.id,
        "status": conversation.status.value,
        # the rating form shows once the conversation is resolved and while it has no score
        "rating": None if mode == RatingMode.NONE else {"mode": mode.value, "score": conversation.rating},
    }


_VISITOR_EVENTS = (
    "SELECT id, type, payload::text AS payload FROM realtime_events"
    " WHERE id > $1 AND payload->>'conversation_id' = $2 ORDER BY id LIMIT $3"
)


@dataclass(frozen=True, slots=True)
class Poll:
    events: list[dict[str, Any]]
    last_event_id: int
    resync: bool  # what the visitor missed is gone from the log: reload the history


async def poll(db: AsyncSession, session: VisitorSession, after: int | None) -> Poll:
    """The visitor's events after `after` (an event id, as the stream's Last-Event-ID): the same
    events in the same order as the stream gives, for when a stream cannot be kept open."""
    conn = await db.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    bounds = await event_log.bounds(raw)
    head = bounds.newest or 0
    if after is None:
        return Poll([], head, resync=False)
    if after > bounds.issued or (bounds.oldest is not None and after < bounds.oldest - 1):
        return Poll([], head, resync=True)
    conversation = await current_conversation(db, session)
    if conversation is None:
        return Poll([], max(after, head), resync=False)
    viewer = Visitor(conversation.id)
    rows = await raw.fetch(
        _VISITOR_EVENTS,
        after,
        str(conversation.id),
        PAGE,
    )
    events = []
    for row in rows:
        model = BY_NAME.get(row["type"])
        if model is None:
            continue
        parsed = model.model_validate_json(row["payload"])
        if may_receive(viewer, parsed.scope()):
            events.append({"id": row["id"], "type": row["type"], "data": parsed.payload()})
    # a full page: go on from its last row; otherwise everything committed so far was seen
    last = rows[-1]["id"] if len(rows) == PAGE else max(after, head)
    return Poll(events, last, resync=False)


async def acknowledge(
    db: AsyncSession, session: VisitorSession, *, delivered_up_to: int | None, read_up_to: int | None
) -> int:
    """The visitor's browser received (delivered) or showed (read) our messages up to these ids:
    their times are stored and their status moves on (never back); how many changed status."""
    conversation = await current_conversation(db, session)
    if conversation is None:
        raise Forbidden()
    now = datetime.now(UTC)
    changed = 0
    for column, status, up_to in (
        (Message.delivered_at, DeliveryStatus.DELIVERED, max(delivered_up_to or 0, read_up_to or 0)),
        (Message.read_at, DeliveryStatus.READ, read_up_to or 0),
    ):
        if not up_to:
            continue
        ours = (
            Message.conversation_id == conversation.id,
            Message.direction == MessageDirection.OUT,
            Message.is_note.is_(False),
            Message.id <= up_to,
            column.is_(None),
        )
        rows = (
            await db.execute(
                select(Message.id, Message.delivery_status)
                .where(*ours)
                .order_by(Message.id.desc())
                .limit(TICKS_AT_ONCE)
                .with_for_update()
            )
        ).all()
        if not rows:
            continue
        await db.execute(update(Message).where(Message.id.in_([r.id for r in rows])).values({column: now}))
        # the status moves only for what has been handed over: before that, the delivery
        # records the tick itself when it marks the message sent (activities/delivery.py)
        moved = [r.id for r in rows if r.delivery_status in _before(status)]
        if moved:
            await db.execute(update(Message).where(Message.id.in_(moved)).values(delivery_status=status))
            ref = conversation_ids(conversation)
            for message_id in sorted(moved):
                await publish(db, MessageStatusChanged.of(ref, message_id=message_id, status=status))
            changed += len(moved)
    return changed


def _before(status: DeliveryStatus) -> tuple[DeliveryStatus, ...]:
    if status == DeliveryStatus.READ:
        return (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)
    return (DeliveryStatus.SENT,)


async def rate(db: AsyncSession, session: VisitorSession, score: int, comment: str | None) -> Conversation:
    """The visitor's score for their resolved conversation, in the inbox's scale, once."""
    conversation = await current_conversation(db, session)
    if conversation is None:
        raise Forbidden()
    conversation = await db.get(Conversation, conversation.id, with_for_update=True, populate_existing=True)
    assert conversation is not None
    inbox = await db.get(Inbox, conversation.inbox_id)
    mode = RatingMode(((inbox.settings if inbox else None) or {}).get("rating_mode") or RatingMode.NONE)
    scale = RANGES.get(mode)
    if scale is None or conversation.status not in (ConversationStatus.RESOLVED, ConversationStatus.CLOSED):
        raise Invalid("This conversation is not waiting for a rating.")
    if not scale[0] <= score <= scale[1]:
        raise Invalid("The score must be from %(low)s to %(high)s.", field="score", low=scale[0], high=scale[1])
    if conversation.rating is not None:
        return conversation  # a second click of the same form: the first score stands
    conversation.rating, conversation.rating_comment, conversation.rated_at = score, comment, datetime.now(UTC)
    await publish(db, ConversationRated.of(conversation_ids(conversation), rating=score))
    return conversation
