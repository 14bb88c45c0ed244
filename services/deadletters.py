"""The dead-letter list: outgoing messages that failed for good, which a supervisor retries
or discards. Both are audited. Supervisors and admins see the list and may retry or discard any
of it; an operator may retry a failed message in a conversation they may act in (its Retry in the
thread), nothing else."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.enums import DeliveryStatus, MessageDirection
from domain.events import MessageStatusChanged
from infra.event_log import load_conversation_ids, publish
from infra.models import Message, Operator
from services import audit
from services.errors import Forbidden, Invalid
from services.operators import is_supervisor
from services.outbox import add_delivery
from services.visibility import load_conversation, require_write, staff


def _require_supervisor(operator: Operator) -> None:
    if not is_supervisor(operator):
        raise Forbidden()


async def list_dead_letters(
    db: AsyncSession, operator: Operator, *, limit: int = 100, before_id: int | None = None
) -> list[Message]:
    """Newest first by id; `before_id` (the last id of a page) gives the next page."""
    _require_supervisor(operator)
    query = select(Message).where(
        Message.delivery_status == DeliveryStatus.FAILED,
        Message.discarded_at.is_(None),
        Message.direction == MessageDirection.OUT,
    )
    if before_id is not None:
        query = query.where(Message.id < before_id)
    return list((await db.scalars(query.order_by(Message.id.desc()).limit(limit))).all())


async def _failed(db: AsyncSession, message_id: int) -> Message:
    message = await db.get(Message, message_id, with_for_update=True)
    if message is None or message.direction != MessageDirection.OUT:
        raise Forbidden()
    if message.delivery_status != DeliveryStatus.FAILED or message.discarded_at is not None:
        raise Invalid("Only failed messages on the dead-letter list can be retried or discarded.")
    return message


async def retry_dead_letter(db: AsyncSession, operator: Operator, message_id: int) -> None:
    """Queue it again: a new run of delivery-{id} with the full retry schedule."""
    if not is_supervisor(operator):
        # in a conversation they may act in (the thread's Retry): Forbidden when they cannot
        # see it, before anything says whether the message failed
        viewer = staff(operator)
        conversation_id = await db.scalar(select(Message.conversation_id).where(Message.id == message_id))
        if conversation_id is None:
            raise Forbidden()
        require_write(viewer, await load_conversation(db, viewer, conversation_id))
    message = await _failed(db, message_id)
    message.delivery_status = DeliveryStatus.QUEUED
    previous_error, message.error, message.error_class = message.error, None, None
    audit.record(
        db,
        "delivery.retried",
        operator_id=operator.id,
        conversation_id=message.conversation_id,
        details={"message_id": message.id, "previous_error": previous_error},
    )
    await add_delivery(db, message.conversation_id, message.id, retry=True)
    ref = await load_conversation_ids(db, message.conversation_id)
    await publish(db, MessageStatusChanged.of(ref, message_id=message.id, status=DeliveryStatus.QUEUED))


async def discard_dead_letter(db: AsyncSession, operator: Operator, message_id: int) -> None:
    _require_supervisor(operator)
    message = await _failed(db, message_id)
    message.discarded_at = datetime.now(UTC)
    audit.record(
        db,
        "delivery.discarded",
        operator_id=operator.id,
        conversation_id=message.conversation_id,
        details={"message_id": message.id},
    )
