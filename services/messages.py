"""A conversation's messages as staff and integrators read them, and private notes.

A note is a message row with `is_note`: written by staff or an integration, never queued for
delivery, never sent to a channel, and kept from the customer in every read path (this module's
list, and the realtime event, whose audience is staff only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from domain.enums import DeliveryStatus, MessageDirection, MessageFormat, SenderKind
from domain.events import MessageCreated
from domain.visibility import Viewer, Visitor
from domain.wording import N_
from infra.event_log import conversation_ids, publish
from infra.models import ApiToken, Attachment, Conversation, Message, MessageRevision, Operator
from services import audit
from services.errors import Forbidden, Invalid
from services.uploads import StoredUpload
from services.visibility import Caller, load_conversation, require_change, viewer_of, visible_to

NOTE_MAX = 10_000
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class MessagePage:
    messages: list[Message]
    attachments: dict[int, list[Attachment]]  # by message id
    next_after: int | None  # pass as `after` (ascending) or `before` (descending) for the next page


async def list_messages(
    db: AsyncSession,
    viewer: Viewer,
    conversation_id: int,
    *,
    after: int | None = None,
    before: int | None = None,
    newest_first: bool = False,
    limit: int = 50,
) -> MessagePage:
    """A page of the conversation's messages in id order (oldest first, or newest first), after
    or before a message id (keyset, never OFFSET). A visitor never gets a note."""
    conversation = await load_conversation(db, viewer, conversation_id)
    limit = max(1, min(limit, MAX_PAGE))
    query = select(Message).where(Message.conversation_id == conversation.id)
    if isinstance(viewer, Visitor):
        query = query.where(Message.is_note.is_(False))
    if after is not None:
        query = query.where(Message.id > after)
    if before is not None:
        query = query.where(Message.id < before)
    query = query.order_by(Message.id.desc() if newest_first else Message.id).limit(limit + 1)
    messages = list((await db.scalars(query)).all())
    next_after = messages[limit - 1].id if len(messages) > limit else None
    messages = messages[:limit]
    attachments: dict[int, list[Attachment]] = {}
    if messages:
        found = await db.scalars(
            select(Attachment).where(Attachment.message_id.in_([m.id for m in messages])).order_by(Attachment.id)
        )
        for attachment in found:
            attachments.setdefault(attachment.message_id, []).append(attachment)
    return MessagePage(messages, attachments, next_after)


async def add_note(
    db: AsyncSession,
    caller: Caller,
    conversation_id: int,
    text: str,
    *,
    idempotency_key: str,
    attachments: Sequence[StoredUpload] = (),
) -> tuple[int, bool]:
    """A private note in the conversation, with any files already in the store (staff see them;
    a note is never delivered): (message id, created); the same key returns the first note.
    Whoever may see the conversation may note in it (a supervisor watching too); a token must be
    read-write."""
    text = text.strip()
    if not text and not attachments:
        raise Invalid(N_("The note is empty."))
    if len(text) > NOTE_MAX:
        raise Invalid(f"A note may have at most {NOTE_MAX} characters.")
    viewer = viewer_of(caller)
    conversation = await load_conversation(db, viewer, conversation_id)
    require_change(viewer, conversation)
    if isinstance(caller, ApiToken):
        sender = {"sender_kind": SenderKind.INTEGRATION, "sender_token_id": caller.id}
        key = f"note:api{caller.id}:{idempotency_key}"
    else:
        sender = {"sender_kind": SenderKind.OPERATOR, "sender_operator_id": caller.id}
        key = f"note:{caller.id}:{idempotency_key}"
    message_id = await db.scalar(
        insert(Message)
        .values(
            conversation_id=conversation.id,
            inbox_id=conversation.inbox_id,
            direction=MessageDirection.OUT,
            text=text,
            format=MessageFormat.MARKDOWN,
            is_note=True,
            idempotency_key=key,
            delivery_status=DeliveryStatus.RECEIVED,  # nothing to deliver
            **sender,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(Message.id)
    )
    if message_id is None:
        return await db.scalar(select(Message.id).where(Message.idempotency_key == key)), False
    db.add_all(item.row(message_id) for item in attachments)
    await publish(
        db,
        MessageCreated.of(
            conversation_ids(conversation),
            message_id=message_id,
            direction=MessageDirection.OUT,
            sender_kind=sender["sender_kind"],
            note=True,
        ),
    )
    audit.record(
        db, "note.added", **audit.by(caller), conversation_id=conversation.id, details={"message_id": message_id}
    )
    return message_id, True


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """A page of a contact's history as the thread shows it: oldest first."""

    messages: list[Message]
    attachments: dict[int, list[Attachment]]  # by message id
    originals: dict[int, str]  # an edited message's first text, by message id
    senders: dict[int, str]  # operators' names, by operator id
    older: int | None  # the `before` of the previous page; None: this is the beginning


async def contact_history(
    db: AsyncSession, viewer: Viewer, conversation: Conversation, *, before: int | None = None, limit: int = 50
) -> HistoryPage:
    """The newest `limit` messages before message id `before` in every conversation of the
    contact that `viewer` may see (keyset on the id, never OFFSET), oldest first."""
    limit = max(1, min(limit, MAX_PAGE))
    conversations = (
        select(Conversation.id)
        .where(Conversation.contact_id == conversation.contact_id, visible_to(viewer))
        .subquery("contact_conversations")
    )
    # the newest messages of each conversation apart (its index, read backwards, stops after
    # limit + 1), then of them all: `conversation_id IN (...) ORDER BY id DESC` read every
    # message of the contact and sorted them, so a long thread cost its length on each page
    each = select(Message).where(Message.conversation_id == conversations.c.id)
    if isinstance(viewer, Visitor):
        each = each.where(Message.is_note.is_(False))
    if before is not None:
        each = each.where(Message.id < before)
    newest_each = each.order_by(Message.id.desc()).limit(limit + 1).lateral("newest_each")
    newest = aliased(Message, newest_each)
    query = select(newest).select_from(conversations).join(newest_each, true())
    newest_first = list((await db.scalars(query.order_by(newest.id.desc()).limit(limit + 1))).all())
    older = newest_first[limit - 1].id if len(newest_first) > limit else None
    messages = list(reversed(newest_first[:limit]))
    ids = [m.id for m in messages]
    attachments: dict[int, list[Attachment]] = {}
    originals: dict[int, str] = {}
    senders: dict[int, str] = {}
    if ids:
        for attachment in await db.scalars(
            select(Attachment).where(Attachment.message_id.in_(ids)).order_by(Attachment.id)
        ):
            attachments.setdefault(attachment.message_id, []).append(attachment)
        edited = [m.id for m in messages if m.edited_at is not None]
        if edited:
            first = (
                select(MessageRevision.message_id, MessageRevision.text)
                .where(MessageRevision.message_id.in_(edited))
                .order_by(MessageRevision.message_id, MessageRevision.provider_time, MessageRevision.id)
                .distinct(MessageRevision.message_id)
            )
            originals = {message_id: text for message_id, text in await db.execute(first)}
        operator_ids = {m.sender_operator_id for m in messages if m.sender_operator_id is not None}
        if operator_ids:
            found = await db.execute(select(Operator.id, Operator.display_name).where(Operator.id.in_(operator_ids)))
            senders = {row.id: row.display_name for row in found}
    return HistoryPage(messages, attachments, originals, senders, older)


async def attachment_in(db: AsyncSession, conversation: Conversation, attachment_id: int) -> Attachment:
    """A stored file of one of the conversation's messages (Forbidden for any other id)."""
    attachment = await db.scalar(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(Attachment.id == attachment_id, Message.conversation_id == conversation.id)
    )
    if attachment is None or attachment.sha256 is None:
        raise Forbidden()
    return attachment
