"""The one inbound service every channel uses: an InboundEvent becomes contact, conversation
and message in one transaction, announced on commit, idempotent on the provider's ids.

Plain text messages, nearly all traffic, take one hand-written statement on the driver
connection: into an open conversation, or a contact's first message. Everything else, and
whatever those statements cannot settle alone, takes the general ORM path. All paths write the
same rows; tests/integration/test_ingest_fast_path.py pins what the statements must still do.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from sqlalchemy import Select, exists, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from domain.contracts import InboundEvent, InboundKind
from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import (
    ConversationStatus,
    DeliveryStatus,
    MessageDirection,
    MessageFormat,
    MessageKind,
    PhoneSource,
    SenderKind,
)
from domain.events import (
    ContactReachabilityChanged,
    ContactRead,
    ContactTyping,
    ConversationCreated,
    ConversationRated,
    ConversationStatusChanged,
    MessageChange,
    MessageCreated,
    MessageUpdated,
)
from domain.rating import parse_rating
from infra import metrics
from infra.event_log import conversation_ids, event_select, events_insert_sql, load_conversation_ids, publish
from infra.logs import correlation_id, new_correlation_id
from infra.models import (
    Attachment,
    Contact,
    ContactChat,
    ContactIdentity,
    Conversation,
    Inbox,
    Message,
    MessageRevision,
)
from services import snoozes
from services.assignment import branch_is_open, branch_schedules, is_open
from services.outbox import NOTICE, WAKE_CHANNEL, add_fetch, add_notice, notice_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    conversation_id: int | None
    message_id: int | None
    duplicate: bool = False
    created_conversation: bool = False


class _DuplicateMessage(Exception):
    """A concurrent delivery of the same update committed first: undo all of ours."""


async def ingest(factory: async_sessionmaker[AsyncSession], event: InboundEvent) -> IngestResult:
    """Raises SQLAlchemy's DBAPIError when the database refuses the event (see
    `refused_for_its_data`) or is away; an event is stored whole or not at all."""
    # the request that brought it (the webhook's), or one of its own (a long poll's batch)
    correlation = correlation_id() or new_correlation_id()
    result = await _ingest_any(factory, event, correlation)
    if result.message_id is not None and not result.duplicate and event.kind == InboundKind.MESSAGE:
        metrics.INBOUND_MESSAGES.labels(channel=event.channel.value).inc()
    return result


async def _ingest_any(factory: async_sessionmaker[AsyncSession], event: InboundEvent, correlation: str) -> IngestResult:
    if event.kind == InboundKind.MESSAGE and not event.attachments:
        try:
            async with _driver_connection(factory) as raw:
                fast = await _message_into_open_conversation(raw, event, correlation) or await _first_message(
                    raw, event, correlation
                )
        except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
            fast = None  # the general path meets the same refusal and reports it the one way
        if fast is not None:
            return fast
    try:
        async with factory() as db, db.begin():
            return await _ingest(db, event, correlation)
    except _DuplicateMessage:
        async with factory() as db:
            return IngestResult(None, await _stored_message_id(db, event), duplicate=True)


def refused_for_its_data(exc: DBAPIError) -> bool:
    """SQLSTATE classes 22 (data exception) and 23 (integrity violation): this event's data, which
    no retry will change, not the database being away (08 connection, 40 rollback, 53 ...)."""
    return (getattr(exc.orig, "sqlstate", None) or "")[:2] in ("22", "23")


# SQLSTATE classes of a database that is away or asks for the transaction again: connection
# exception, transaction rollback (serialization, deadlock), insufficient resources, operator
# intervention (shutdown, cancelled or timed-out statement), system error.
_AWAY = ("08", "40", "53", "57", "58")


def database_away(exc: BaseException) -> bool:
    """The database could not be reached, or asked for the work to be tried again: nothing is
    wrong with the event, and giving up on it would lose it."""
    if isinstance(exc, DBAPIError):
        sqlstate = getattr(exc.orig, "sqlstate", None)  # none from the driver's own connection errors
        return exc.connection_invalidated or sqlstate is None or sqlstate[:2] in _AWAY
    return isinstance(
        exc, OSError | TimeoutError | PoolTimeout | asyncpg.InterfaceError | asyncpg.PostgresConnectionError
    )


async def _stored_message_id(db: AsyncSession, event: InboundEvent) -> int | None:
    return await db.scalar(
        select(Message.id).where(
            Message.inbox_id == event.inbox_id, Message.provider_message_id == event.provider_message_id
        )
    )


async def _ingest(db: AsyncSession, event: InboundEvent, correlation: str) -> IngestResult:
    # Edits, typing and read receipts concern what exists already: they never create a contact.
    if event.kind == InboundKind.EDIT:
        return await _edit(db, event)
    if event.kind in (InboundKind.TYPING, InboundKind.READ):
        return await _seen(db, event)
    # No "already stored?" query first: duplicates are rare, and the message insert's
    # ON CONFLICT catches them (rolling back whatever this transaction did before it).
    identity = await _identity(db, event)
    chat = await _chat(db, event, identity)
    if event.kind in (InboundKind.BLOCKED, InboundKind.STARTED):
        return await _reachability(db, event, identity, chat)
    return await _message(db, event, identity, correlation)


# The common case, a known contact writing into its open conversation, is one statement on the
# raw driver connection, atomic on its own: an ORM session and an explicit transaction were most
# of the webhook's CPU. The conversation row is locked and its status re-checked on the latest
# version, so a concurrent resolve sends this message down the general path (which reopens), as
# does a snooze (which the customer's message ends). A message from another chat
# than the one stored goes there too (which stores the new one). A
# duplicate inserts and announces nothing. The statement is told which branches are closed now,
# from the process's schedule cache, and writes the off-hours notice for those itself; it stores
# nothing for a branch the cache does not know yet ($8 lists the known ones).
_FAST_ANNOUNCED = events_insert_sql(
    event_select(
        MessageCreated,
        "FROM stored JOIN conv ON conv.id = stored.conversation_id",
        columns={
            "conversation_id": "conv.id",
            "inbox_id": "$1",
            "branch_id": "conv.branch_id",
            "assignee_id": "conv.assignee_id",
            "message_id": "stored.id",
        },
        constants={"direction": MessageDirection.IN, "sender_kind": SenderKind.CONTACT},
    )
)
_FAST_MESSAGE = f"""
    WITH conv AS (
        SELECT c.id, c.branch_id, c.assignee_id,
               c.branch_id IS NULL OR c.branch_id = ANY($7::bigint[]) AS branch_known
        FROM contact_identities i
        JOIN conversations c ON c.identity_id = i.id AND c.inbox_id = $1
        JOIN contact_chats ch ON ch.identity_id = i.id AND ch.inbox_id = $1 AND ch.provider_chat_id = $12
        WHERE i.channel = CAST($2 AS channel_kind) AND i.provider_user_id = $3
          AND c.status IN ('open', 'pending')
          AND c.snoozed_at IS NULL
        FOR UPDATE OF c
    ), stored AS (
        INSERT INTO messages (conversation_id, inbox_id, direction, sender_kind, text, format,
                              provider_message_id, delivery_status, provider_time, correlation_id)
        SELECT conv.id, $1, 'in', 'contact', $4, 'plain', $5, 'received', $6, $13
        FROM conv WHERE conv.branch_known
        ON CONFLICT (inbox_id, provider_message_id) DO NOTHING
        RETURNING id, conversation_id
    ), touched AS (
        UPDATE conversations SET last_in_at = now(), last_activity_at = now()
        FROM stored WHERE conversations.id = stored.conversation_id
    ), noticed AS (
        INSERT INTO outbox_events (conversation_id, kind, payload)
        SELECT stored.conversation_id, $9, $10::jsonb
        FROM stored JOIN conv ON conv.id = stored.conversation_id
        WHERE conv.branch_id = ANY($8::bigint[])
        RETURNING id
    ), announced AS (
        {_FAST_ANNOUNCED}
    )
    SELECT conv.id AS conversation_id, conv.branch_known, stored.id AS message_id,
           CASE WHEN EXISTS (SELECT 1 FROM noticed) THEN pg_notify($11, '') END
    FROM conv LEFT JOIN stored ON true
"""
_STORED_MESSAGE_ID = "SELECT id FROM messages WHERE inbox_id = $1 AND provider_message_id = $2"
_ALL_SCHEDULES = "SELECT id, working_hours FROM branches"
_OFF_HOURS = json.dumps(notice_payload(ConversationNotice(kind=NoticeKind.OFF_HOURS_MESSAGE)))


@asynccontextmanager
async def _driver_connection(factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection's asyncpg connection, for the hot paths' hand-written statements."""
    engine: AsyncEngine = factory.kw["bind"]
    async with engine.connect() as conn:
        try:
            yield (await conn.get_raw_connection()).driver_connection
        except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError):
            # SQLAlchemy did not see this connection fail: keep it out of the pool
            await conn.invalidate()
            raise


async def _message_into_open_conversation(
    raw: asyncpg.Connection, event: InboundEvent, correlation: str
) -> IngestResult | None:
    """None when another path must decide (new contact or conversation, resolved, closed)."""
    for reload in (False, True):
        schedules = await branch_schedules(lambda: raw.fetch(_ALL_SCHEDULES), reload=reload)
        now = datetime.now(UTC)
        row = await raw.fetchrow(
            _FAST_MESSAGE,
            event.inbox_id,
            event.channel.value,
            event.provider_user_id,
            event.text,
            event.provider_message_id,
            event.provider_time,
            list(schedules),
            [branch for branch, schedule in schedules.items() if not is_open(schedule, now)],
            NOTICE,
            _OFF_HOURS,
            WAKE_CHANNEL,
            event.provider_chat_id,
            correlation,
        )
        if row is None:
            return None
        if row["message_id"] is not None:
            return IngestResult(row["conversation_id"], row["message_id"])
        if row["branch_known"]:
            stored = await raw.fetchval(_STORED_MESSAGE_ID, event.inbox_id, event.provider_message_id)
            return IngestResult(None, stored, duplicate=True)
    return None  # a branch created and gone in a blink: the general path copes


# A contact's first message, or the first since their last conversation was closed: contact
# (if new), identity, its chat with this inbox (the event's chat), conversation, message, the
# STARTED notice and both announcements in one statement. Whatever it cannot settle on its own
# (a concurrent first message won the identity or the conversation, a duplicate, a resolved
# conversation) it leaves to the general path, rolling back what it wrote.
_NEW_CONVERSATION = {"conversation_id": "conv.id", "inbox_id": "$1", "branch_id": "NULL", "assignee_id": "NULL"}
_FIRST_ANNOUNCED = events_insert_sql(
    event_select(
        ConversationCreated,
        "FROM stored JOIN conv ON conv.id = stored.conversation_id",
        columns=_NEW_CONVERSATION | {"contact_id": "conv.contact_id"},
    ),
    event_select(
        MessageCreated,
        "FROM stored JOIN conv ON conv.id = stored.conversation_id",
        columns=_NEW_CONVERSATION | {"message_id": "stored.id"},
        constants={"direction": MessageDirection.IN, "sender_kind": SenderKind.CONTACT},
    ),
)
_FIRST_MESSAGE = f"""
    WITH existing AS (
        SELECT id, contact_id FROM contact_identities
        WHERE channel = CAST($2 AS channel_kind) AND provider_user_id = $3
    ), new_contact AS (
        INSERT INTO contacts (display_name, region)
        SELECT $7, $8 WHERE NOT EXISTS (SELECT 1 FROM existing)
        RETURNING id
    ), new_identity AS (
        INSERT INTO contact_identities (contact_id, channel, provider_user_id, username)
        SELECT id, CAST($2 AS channel_kind), $3, $10 FROM new_contact
        ON CONFLICT (channel, provider_user_id) DO NOTHING
        RETURNING id, contact_id
    ), identity AS (
        SELECT id, contact_id FROM existing UNION ALL SELECT id, contact_id FROM new_identity
    ), chat AS (
        INSERT INTO contact_chats (identity_id, inbox_id, provider_chat_id)
        SELECT id, $1, $9 FROM identity
        ON CONFLICT (identity_id, inbox_id) DO UPDATE SET provider_chat_id = EXCLUDED.provider_chat_id
    ), conv AS (
        INSERT INTO conversations (inbox_id, contact_id, identity_id, interface, status, last_in_at)
        SELECT $1, contact_id, id, CAST($11 AS interface), 'open', now() FROM identity
        ON CONFLICT (inbox_id, identity_id) WHERE status <> 'closed' DO NOTHING
        RETURNING id, contact_id
    ), stored AS (
        INSERT INTO messages (conversation_id, inbox_id, direction, sender_kind, text, format,
                              provider_message_id, delivery_status, provider_time, correlation_id)
        SELECT conv.id, $1, 'in', 'contact', $4, 'plain', $5, 'received', $6, $15
        FROM conv
        ON CONFLICT (inbox_id, provider_message_id) DO NOTHING
        RETURNING id, conversation_id
    ), noticed AS (
        INSERT INTO outbox_events (conversation_id, kind, payload)
        SELECT conversation_id, $12, $13::jsonb FROM stored
        RETURNING id
    ), announced AS (
        {_FIRST_ANNOUNCED}
    )
    SELECT conv.id AS conversation_id, stored.id AS message_id,
           CASE WHEN EXISTS (SELECT 1 FROM noticed) THEN pg_notify($14, '') END
    FROM conv LEFT JOIN stored ON true
"""
_STARTED = json.dumps(notice_payload(ConversationNotice(kind=NoticeKind.STARTED)))


class _LeaveIt(Exception):
    """Roll back the hand-written attempt: the general path decides."""


async def _first_message(raw: asyncpg.Connection, event: InboundEvent, correlation: str) -> IngestResult | None:
    profile = event.profile
    try:
        async with raw.transaction():
            row = await raw.fetchrow(
                _FIRST_MESSAGE,
                event.inbox_id,
                event.channel.value,
                event.provider_user_id,
                event.text,
                event.provider_message_id,
                event.provider_time,
                profile.display_name or profile.username or "",
                profile.region,
                event.provider_chat_id,
                profile.username,
                event.interface.value,
                NOTICE,
                _STARTED,
                WAKE_CHANNEL,
                correlation,
            )
            if row is None or row["message_id"] is None:
                raise _LeaveIt
            return IngestResult(row["conversation_id"], row["message_id"], created_conversation=True)
    except _LeaveIt:
        return None


async def _identity(db: AsyncSession, event: InboundEvent) -> ContactIdentity:
    """Find or create, race-safe on (channel, provider_user_id)."""
    query = select(ContactIdentity).where(
        ContactIdentity.channel == event.channel, ContactIdentity.provider_user_id == event.provider_user_id
    )
    identity = await db.scalar(query)
    if identity is not None:
        return identity
    profile = event.profile
    contact = Contact(display_name=profile.display_name or profile.username or "", region=profile.region)
    db.add(contact)
    await db.flush()
    inserted = await db.scalar(
        insert(ContactIdentity)
        .values(
            contact_id=contact.id,
            channel=event.channel,
            provider_user_id=event.provider_user_id,
            username=profile.username,
        )
        .on_conflict_do_nothing(index_elements=["channel", "provider_user_id"])
        .returning(ContactIdentity.id)
    )
    if inserted is None:
        # another transaction created it first (its commit unblocked our insert): use theirs
        await db.delete(contact)
    return await db.scalar(query.execution_options(populate_existing=True))


async def _chat(db: AsyncSession, event: InboundEvent, identity: ContactIdentity) -> ContactChat:
    """The identity's chat with the event's inbox, made at its first event and following the
    chat id every event carries; locked until this transaction ends."""
    chat = await db.scalar(
        insert(ContactChat)
        .values(identity_id=identity.id, inbox_id=event.inbox_id, provider_chat_id=event.provider_chat_id)
        .on_conflict_do_update(
            index_elements=["identity_id", "inbox_id"], set_={"provider_chat_id": event.provider_chat_id}
        )
        .returning(ContactChat)
        .execution_options(populate_existing=True)
    )
    assert chat is not None
    return chat


async def _reachability(
    db: AsyncSession, event: InboundEvent, identity: ContactIdentity, chat: ContactChat
) -> IngestResult:
    """A start or stop of this inbox's bot, applied in the provider's order: one from before the
    last applied (a redelivery, or one that arrived late) changes nothing."""
    if chat.lifecycle_at is not None and event.provider_time < chat.lifecycle_at:
        log.info("inbox %s: a %s older than the last start or stop ignored", event.inbox_id, event.kind.value)
        return IngestResult(None, None, duplicate=True)
    chat.lifecycle_at = event.provider_time
    reachable = event.kind == InboundKind.STARTED
    if chat.reachable == reachable:
        return IngestResult(None, None, duplicate=True)
    chat.reachable = reachable
    chat.unreachable_reason = None if reachable else "the contact blocked or stopped the bot"
    conversation = await db.scalar(_live_of(event, identity))
    changed = {"identity_id": identity.id, "reachable": reachable}
    if conversation is None:
        await publish(
            db,
            ContactReachabilityChanged(
                conversation_id=None, inbox_id=event.inbox_id, branch_id=None, assignee_id=None, **changed
            ),
        )
        return IngestResult(None, None)
    kind = NoticeKind.UNBLOCKED if reachable else NoticeKind.BLOCKED
    await add_notice(db, conversation.id, ConversationNotice(kind=kind))
    await publish(db, ContactReachabilityChanged.of(conversation_ids(conversation), **changed))
    return IngestResult(conversation.id, None)


def _live_of(event: InboundEvent, identity: ContactIdentity) -> Select[tuple[Conversation]]:
    """The identity's not-closed conversation in the event's inbox (there is at most one)."""
    return select(Conversation).where(
        Conversation.identity_id == identity.id,
        Conversation.inbox_id == event.inbox_id,
        Conversation.status != ConversationStatus.CLOSED,
    )


async def _seen(db: AsyncSession, event: InboundEvent) -> IngestResult:
    """Typing or a read receipt: shown in the contact's live conversation, if there is one."""
    conversation = await db.scalar(
        select(Conversation)
        .join(ContactIdentity, ContactIdentity.id == Conversation.identity_id)
        .where(
            ContactIdentity.channel == event.channel,
            ContactIdentity.provider_user_id == event.provider_user_id,
            Conversation.inbox_id == event.inbox_id,
            Conversation.status != ConversationStatus.CLOSED,
        )
    )
    if conversation is not None:  # otherwise nobody has a place to show it
        seen = ContactTyping if event.kind == InboundKind.TYPING else ContactRead
        await publish(db, seen.of(conversation_ids(conversation)))
    return IngestResult(None, None)


async def _edit(db: AsyncSession, event: InboundEvent) -> IngestResult:
    """Every version is kept (the original and each edit, at the provider's times); the message
    shows the newest, whatever order the edits arrive in."""
    message = await db.scalar(
        select(Message)
        .where(Message.inbox_id == event.inbox_id, Message.provider_message_id == event.provider_message_id)
        .with_for_update()
    )
    if message is None:
        log.info("edit of an unknown message in inbox %s ignored", event.inbox_id)
        return IngestResult(None, None)
    stored = await db.execute(
        select(MessageRevision.text, MessageRevision.provider_time).where(MessageRevision.message_id == message.id)
    )
    versions = {(body, at) for body, at in stored}
    if (event.text, event.provider_time) in versions:
        return IngestResult(message.conversation_id, message.id, duplicate=True)
    if not versions:
        original_time = message.provider_time or message.created_at
        db.add(MessageRevision(message_id=message.id, text=message.text, provider_time=original_time))
    db.add(MessageRevision(message_id=message.id, text=event.text, provider_time=event.provider_time))
    if message.edited_at is None or event.provider_time >= message.edited_at:
        message.text = event.text
        message.edited_at = event.provider_time
    ref = await load_conversation_ids(db, message.conversation_id)
    await publish(db, MessageUpdated.of(ref, message_id=message.id, change=MessageChange.EDITED))
    return IngestResult(message.conversation_id, message.id)


async def _message(db: AsyncSession, event: InboundEvent, identity: ContactIdentity, correlation: str) -> IngestResult:
    conversation, created = await _live_conversation(db, event, identity)
    now = datetime.now(UTC)
    notice: NoticeKind | None = NoticeKind.STARTED if created else None

    if conversation.status == ConversationStatus.RESOLVED:
        rating = await _rating_answer(db, event, conversation)
        if rating is not None:
            conversation.rating, conversation.rated_at = rating, now
            await publish(db, ConversationRated.of(conversation_ids(conversation), rating=rating))
        else:
            conversation.status = ConversationStatus.OPEN
            conversation.resolved_at = None
            notice = NoticeKind.REOPENED
            reopened = ConversationStatusChanged.of(
                conversation_ids(conversation),
                status=ConversationStatus.OPEN,
                previous_status=ConversationStatus.RESOLVED,
            )
            await publish(db, reopened)

    if conversation.snoozed_at is not None:  # whether until this message or until a time
        await snoozes.end(db, conversation, reason="customer")

    if (
        notice is None
        and conversation.branch_id is not None
        and not await branch_is_open(db, conversation.branch_id, now)
    ):
        notice = NoticeKind.OFF_HOURS_MESSAGE  # the offline text may be due for this period

    content: dict[str, object] = {"text": event.text}
    if event.kind == InboundKind.CALLBACK:  # shown as "pressed: <label>", not as text they typed
        label = event.callback_label or event.callback_data or ""
        content = {"kind": MessageKind.BUTTON, "text": label, "button_data": event.callback_data}
    # Store the message and touch the conversation in one round trip.
    stored = (
        insert(Message)
        .values(
            conversation_id=conversation.id,
            inbox_id=event.inbox_id,
            direction=MessageDirection.IN,
            sender_kind=SenderKind.CONTACT,
            format=MessageFormat.PLAIN,
            provider_message_id=event.provider_message_id,
            delivery_status=DeliveryStatus.RECEIVED,
            provider_time=event.provider_time,
            **content,
            correlation_id=correlation,
        )
        .on_conflict_do_nothing(index_elements=["inbox_id", "provider_message_id"])
        .returning(Message.id)
        .cte("stored")
    )
    touched = (
        update(Conversation)
        .where(Conversation.id == conversation.id, exists(select(stored.c.id)))
        .values(last_in_at=now, last_activity_at=now)
        .cte("touched")
    )
    message_id = await db.scalar(select(stored.c.id).add_cte(touched))
    if message_id is None:
        raise _DuplicateMessage()
    if created:
        await publish(db, ConversationCreated.of(conversation_ids(conversation), contact_id=conversation.contact_id))
    await publish(
        db,
        MessageCreated.of(
            conversation_ids(conversation),
            message_id=message_id,
            direction=MessageDirection.IN,
            sender_kind=SenderKind.CONTACT,
        ),
    )

    for ref in event.attachments:
        db.add(
            Attachment(
                message_id=message_id,
                kind=ref.kind.value,
                file_name=ref.file_name or "",
                mime_type=ref.mime_type or "application/octet-stream",
                size=ref.size,
                provider_ref=ref.model_dump(mode="json"),
            )
        )
    if any(ref.file_id or ref.url for ref in event.attachments):
        await add_fetch(db, conversation.id, message_id)
    if event.profile.phone:  # the parser sets it only from the sender's own contact card
        await _own_phone(db, conversation.contact_id, event.profile.phone)
    if notice is not None:
        await add_notice(db, conversation.id, ConversationNotice(kind=notice))
    return IngestResult(conversation.id, message_id, created_conversation=created)


async def _live_conversation(
    db: AsyncSession, event: InboundEvent, identity: ContactIdentity
) -> tuple[Conversation, bool]:
    """The identity's not-closed conversation in this inbox, created if there is none.

    The partial unique index (inbox_id, identity_id) WHERE status <> 'closed' makes two
    concurrent first messages agree on one conversation.
    """
    query = _live_of(event, identity).with_for_update().execution_options(populate_existing=True)
    conversation = await db.scalar(query)
    if conversation is not None:
        return conversation, False
    new_id = await db.scalar(
        insert(Conversation)
        .values(
            inbox_id=event.inbox_id,
            contact_id=identity.contact_id,
            identity_id=identity.id,
            interface=event.interface,
            status=ConversationStatus.OPEN,
        )
        .on_conflict_do_nothing(index_elements=["inbox_id", "identity_id"], index_where=text("status <> 'closed'"))
        .returning(Conversation.id)
    )
    conversation = await db.scalar(query)
    assert conversation is not None
    return conversation, new_id is not None


async def _own_phone(db: AsyncSession, contact_id: int, phone: str) -> None:
    """The customer's own card is their phone, replacing one from an earlier card of theirs but
    not one that came from anyone else (an operator's is theirs to change)."""
    await db.execute(
        update(Contact)
        .where(
            Contact.id == contact_id,
            or_(Contact.phone.is_(None), Contact.phone_source == PhoneSource.CUSTOMER),
        )
        .values(phone=phone, phone_source=PhoneSource.CUSTOMER)
    )


async def _rating_answer(db: AsyncSession, event: InboundEvent, conversation: Conversation) -> int | None:
    """A reply to the rating request is a score, not a reason to reopen."""
    if conversation.rating is not None:
        return None
    settings = await db.scalar(select(Inbox.settings).where(Inbox.id == event.inbox_id))
    return parse_rating((settings or {}).get("rating_mode", "none"), event.callback_data or event.text)
