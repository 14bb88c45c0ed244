"""A conversation's messages as staff and integrators read them, and private notes.

A note is a message row with `is_note`: written by staff or an integration, never queued for
delivery, never sent to a channel, and kept from the customer in every read path (this module's
list, and the realtime event, whose audience is staff only).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import DeliveryStatus, MessageDirection, MessageFormat, SenderKind
from domain.events import MessageCreated
from infra.event_log import conversation_ids, publish
from infra.models import ApiToken, Message
from services import audit
from services.errors import Invalid
from services.visibility import Caller, load_conversation, require_write, viewer_of

NOTE_MAX = 10_000


async def add_note(
    db: AsyncSession, caller: Caller, conversation_id: int, text: str, *, idempotency_key: str
) -> tuple[int, bool]:
    """A private note in the conversation: (message id, created); the same key returns the first
    note. Whoever may see the conversation may note in it (a supervisor watching too); a token
    must be read-write."""
    text = text.strip()
    if not text:
        raise Invalid("The note is empty.")
    if len(text) > NOTE_MAX:
        raise Invalid(f"A note may have at most {NOTE_MAX} characters.")
    viewer = viewer_of(caller)
    conversation = await load_conversation(db, viewer, conversation_id)
    if isinstance(caller, ApiToken):
        require_write(viewer, conversation)
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
