"""Snooze and reopen on real PostgreSQL and the Temporal dev server: a snooze until a time wakes
by the workflow's timer, a snoozed conversation does not escalate, a snooze until the customer's
next message wakes with it, and an operator's reopen out of hours sends the customer nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from domain.enums import ConversationStatus, SenderKind
from infra.models import AuditEvent, Branch, Conversation, Inbox, Message, Operator
from services import conversations
from services.ingest import ingest
from tests.integration.conftest import wait_until, workflow_state


async def _knows(engine_stack, cid: int, check) -> bool:
    state = await workflow_state(engine_stack.client, cid)
    return state is not None and check(state)


async def _conversation(world, cid: int) -> Conversation:
    async with world.factory() as db:
        return await db.get(Conversation, cid)


async def _audit(world, cid: int) -> list[tuple[str, dict | None]]:
    async with world.factory() as db:
        rows = await db.execute(
            select(AuditEvent.action, AuditEvent.details)
            .where(AuditEvent.conversation_id == cid)
            .order_by(AuditEvent.id)
        )
        return [(action, details) for action, details in rows]


async def _escalation_in(world, minutes: float) -> None:
    async with world.factory() as db, db.begin():
        inbox = await db.get(Inbox, world.inbox_id)
        inbox.settings = {**inbox.settings, "escalation_minutes": minutes}


async def test_a_snoozed_conversation_does_not_escalate_and_wakes_at_its_time(world, engine_stack):
    await _escalation_in(world, 0.05)  # 3 s unopened
    ann, _bob = await world.operator(), await world.operator()
    cid = (await ingest(world.factory, world.event("snooze-time", "where is my order?"))).conversation_id
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.assignee_id == ann))
    until = datetime.now(UTC) + timedelta(seconds=6)
    async with world.factory() as db, db.begin():
        await conversations.snooze(db, await db.get(Operator, ann), cid, until)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.snoozed))
    snoozed = await _conversation(world, cid)
    assert snoozed.snoozed_at is not None and snoozed.assignee_id == ann
    # its 3 s pass while snoozed: still Ann's, nothing escalated
    deadline = snoozed.assigned_at.timestamp() + 4
    await wait_until(lambda: time.time() > deadline)
    assert (await _conversation(world, cid)).assignee_id == ann
    # the workflow's timer wakes it
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: not s.snoozed), timeout=20)
    woken = await _conversation(world, cid)
    assert woken.snoozed_at is None and woken.snoozed_until is None and woken.assignee_id == ann
    assert time.time() >= until.timestamp()
    actions = await _audit(world, cid)
    assert ("conversation.woken", {"reason": "time"}) in actions
    assert "conversation.escalated" not in [
        a for a, _ in actions[: actions.index(("conversation.woken", {"reason": "time"}))]
    ]


async def test_a_snooze_until_the_customer_writes_ends_with_their_message(world, engine_stack):
    ann = await world.operator()
    cid = (await ingest(world.factory, world.event("snooze-msg", "hello"))).conversation_id
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.assignee_id == ann))
    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, ann)
        await conversations.open_conversation(db, operator, cid)
        await conversations.snooze(db, operator, cid, None)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.snoozed and s.snoozed_until is None))
    await ingest(world.factory, world.event("snooze-msg", "any news?"))
    woken = await _conversation(world, cid)  # at once, in the inbound transaction
    assert woken.snoozed_at is None and woken.status == ConversationStatus.OPEN and woken.assignee_id == ann
    assert ("conversation.woken", {"reason": "customer"}) in await _audit(world, cid)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: not s.snoozed))


async def test_a_snooze_until_a_time_also_ends_when_the_customer_writes(world, engine_stack):
    """A customer who writes before the time is not left unseen until then (as in Chatwoot and
    Intercom): the message wakes the conversation and the workflow drops its timer."""
    ann = await world.operator()
    cid = (await ingest(world.factory, world.event("snooze-wakes", "hello"))).conversation_id
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.assignee_id == ann))
    until = datetime.now(UTC) + timedelta(hours=3)
    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, ann)
        await conversations.open_conversation(db, operator, cid)
        await conversations.snooze(db, operator, cid, until)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.snoozed and s.snoozed_until == until))
    await ingest(world.factory, world.event("snooze-wakes", "any news?"))
    woken = await _conversation(world, cid)  # at once, in the inbound transaction
    assert woken.snoozed_at is None and woken.snoozed_until is None and woken.assignee_id == ann
    assert ("conversation.woken", {"reason": "customer"}) in await _audit(world, cid)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: not s.snoozed and s.snoozed_until is None))


async def test_an_operators_reopen_out_of_hours_sends_the_customer_nothing(world, engine_stack):
    async with world.factory() as db, db.begin():
        inbox = await db.get(Inbox, world.inbox_id)
        inbox.settings = {**inbox.settings, "offline_text": "We are closed", "rating_mode": "none"}
        branch = await db.get(Branch, world.branch_id)
        branch.working_hours = {"timezone": "UTC", "weekly": {}}  # never open
    ann = await world.operator()
    cid = (await ingest(world.factory, world.event("reopen-night", "hello?"))).conversation_id

    async def system_messages() -> int:
        async with world.factory() as db:
            return len(
                (
                    await db.scalars(
                        select(Message.id).where(
                            Message.conversation_id == cid, Message.sender_kind == SenderKind.SYSTEM
                        )
                    )
                ).all()
            )

    await wait_until(lambda: _is(system_messages(), 1))  # the offline text to the customer's message
    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, ann)
        await conversations.take(db, operator, cid)
        await conversations.request_resolve(db, operator, cid)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.status == ConversationStatus.RESOLVED))
    # new hours (open one minute a day, two hours ago): a new off-hours period, so a customer's
    # message now would get the offline text again
    minute = (datetime.now(UTC) - timedelta(hours=2)).strftime("%H:%M")
    hours = {"timezone": "UTC", "weekly": {str(d): [[minute, _next(minute)]] for d in range(7)}}
    async with world.factory() as db, db.begin():
        (await db.get(Branch, world.branch_id)).working_hours = hours
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: bool(s.schedule and s.schedule.get("weekly"))))
    async with world.factory() as db, db.begin():
        await conversations.reopen(db, await db.get(Operator, ann), cid)
    reopened = await _conversation(world, cid)
    assert reopened.status == ConversationStatus.OPEN and reopened.assignee_id == ann
    assert reopened.opened_at is not None
    await wait_until(
        lambda: _knows(engine_stack, cid, lambda s: s.status == ConversationStatus.OPEN and s.assignee_id == ann)
    )
    # the workflow has applied the reopen (a customer's would have sent the offline text with it)
    assert (await workflow_state(engine_stack.client, cid)).opened
    assert await system_messages() == 1
    assert ("conversation.reopened", {}) in await _audit(world, cid)
    # the customer's own message into a resolved conversation is answered
    async with world.factory() as db, db.begin():
        await conversations.request_resolve(db, await db.get(Operator, ann), cid)
    await wait_until(lambda: _knows(engine_stack, cid, lambda s: s.status == ConversationStatus.RESOLVED))
    await ingest(world.factory, world.event("reopen-night", "still there?"))
    await wait_until(lambda: _is(system_messages(), 2))


def _next(hhmm: str) -> str:
    at = datetime.strptime(hhmm, "%H:%M") + timedelta(minutes=1)
    return "24:00" if at.day > 1 else at.strftime("%H:%M")


async def _is(awaitable, value) -> bool:
    return (await awaitable) == value
