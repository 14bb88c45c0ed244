"""Private notes: a message row marked as a note, never queued for delivery, announced to staff
only (never to the conversation's visitor), idempotent per key."""

from __future__ import annotations

from sqlalchemy import func, select

from domain.enums import DeliveryStatus, OperatorRole, SenderKind
from domain.events import MessageCreated
from domain.visibility import Staff, Visitor, may_receive
from infra.models import Conversation, Message, Operator, OutboxEvent, RealtimeEvent
from services.ingest import ingest
from services.messages import add_note


async def test_a_note_is_stored_for_staff_and_queued_for_no_one(world):
    supervisor = await world.operator(role=OperatorRole.SUPERVISOR)
    colleague = await world.operator()
    result = await ingest(world.factory, world.event("note-1", "hello"))
    async with world.factory() as db, db.begin():
        conversation = await db.get(Conversation, result.conversation_id)
        conversation.branch_id, conversation.assignee_id = world.branch_id, colleague
        await db.execute(OutboxEvent.__table__.delete())
    async with world.factory() as db, db.begin():
        # a supervisor who only watches may still note: notes never reach the customer
        first = await add_note(
            db, await db.get(Operator, supervisor), result.conversation_id, " VIP ", idempotency_key="n1"
        )
    async with world.factory() as db, db.begin():
        again = await add_note(
            db, await db.get(Operator, supervisor), result.conversation_id, " VIP ", idempotency_key="n1"
        )
    assert first[1] is True and again == (first[0], False)
    async with world.factory() as db:
        note = await db.get(Message, first[0])
        queued = await db.scalar(select(func.count()).select_from(OutboxEvent))
        events = (await db.scalars(select(RealtimeEvent).where(RealtimeEvent.type == "message.created"))).all()
    assert note.is_note and note.text == "VIP" and note.delivery_status == DeliveryStatus.RECEIVED
    assert note.sender_kind == SenderKind.OPERATOR and note.sender_operator_id == supervisor
    assert queued == 0  # nothing to deliver
    announced = MessageCreated.model_validate(next(e.payload for e in events if e.payload["message_id"] == note.id))
    assert announced.note is True
    assert not may_receive(Visitor(result.conversation_id), announced.scope())
    assert may_receive(Staff(colleague, OperatorRole.OPERATOR, world.branch_id), announced.scope())
    # a customer's message of the same conversation still reaches its visitor
    customer = MessageCreated.model_validate(next(e.payload for e in events if e.payload["message_id"] != note.id))
    assert may_receive(Visitor(result.conversation_id), customer.scope())
