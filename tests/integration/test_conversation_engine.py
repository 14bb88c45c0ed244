"""The inbound path and ConversationWorkflow on real PostgreSQL and the Temporal dev server."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import func, select

from domain.contracts import InboundKind
from domain.conversation import STATE_QUERY, ConversationState
from domain.enums import ConversationStatus, DeliveryStatus, OperatorStatus, SenderKind
from domain.ids import conversation_workflow_id
from infra.models import (
    AuditEvent,
    Contact,
    ContactChat,
    ContactIdentity,
    Conversation,
    Message,
    Operator,
    OutboxEvent,
)
from services import conversations, operators
from services.ingest import ingest
from tests.integration.conftest import wait_until, workflow_state


async def count_rows(factory, model, *where) -> int:
    async with factory() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where))


async def workflow_runs(client, conversation_id: int) -> int:
    wid = conversation_workflow_id(conversation_id)
    return len([w async for w in client.list_workflows(f"WorkflowId = '{wid}'")])


async def test_the_same_event_delivered_concurrently_is_stored_once(world, engine_stack):
    event = world.event("u-dup", message_id="555")
    results = await asyncio.gather(*(ingest(world.factory, event) for _ in range(20)))
    assert sum(not r.duplicate for r in results) == 1
    assert {r.message_id for r in results} == {results[0].message_id}
    assert await count_rows(world.factory, Contact) == 1
    assert await count_rows(world.factory, ContactIdentity) == 1
    assert await count_rows(world.factory, Conversation) == 1
    assert await count_rows(world.factory, Message) == 1
    conversation_id = next(r.conversation_id for r in results if not r.duplicate)
    await wait_until(lambda: _drained(world))
    await wait_until(lambda: _runs_at_least(engine_stack.client, conversation_id, 1))
    await asyncio.sleep(0.5)
    assert await workflow_runs(engine_stack.client, conversation_id) == 1


async def _drained(world) -> bool:
    return await count_rows(world.factory, OutboxEvent) == 0


async def _runs_at_least(client, conversation_id: int, n: int) -> bool:
    return await workflow_runs(client, conversation_id) >= n


async def test_two_first_messages_at_once_make_one_conversation(world, engine_stack):
    first, second = world.event("u-two", "hi"), world.event("u-two", "anyone?")
    results = await asyncio.gather(ingest(world.factory, first), ingest(world.factory, second))
    assert results[0].conversation_id == results[1].conversation_id
    assert sorted(r.created_conversation for r in results) == [False, True]
    assert await count_rows(world.factory, Contact) == 1
    assert await count_rows(world.factory, Message) == 2
    await wait_until(lambda: _drained(world))
    await wait_until(lambda: _runs_at_least(engine_stack.client, results[0].conversation_id, 1))
    assert await workflow_runs(engine_stack.client, results[0].conversation_id) == 1


async def test_even_distribution_over_300_conversations_and_5_operators(world, engine_stack):
    ops = [await world.operator() for _ in range(5)]
    sem = asyncio.Semaphore(30)

    async def one(i: int):
        async with sem:
            return await ingest(world.factory, world.event(f"even-{i}"))

    await asyncio.gather(*(one(i) for i in range(300)))

    async def all_assigned() -> bool:
        return await count_rows(world.factory, Conversation, Conversation.assignee_id.is_not(None)) == 300

    await wait_until(all_assigned, timeout=180, interval=0.5)
    async with world.factory() as db:
        loads = Counter((await db.scalars(select(Conversation.assignee_id))).all())
    assert set(loads) == set(ops)
    assert max(loads.values()) - min(loads.values()) <= 1, loads


async def test_backlog_is_assigned_oldest_first_when_an_operator_comes_online(world, engine_stack):
    late = await world.operator(status=OperatorStatus.OFFLINE)
    ids = []
    for i in range(3):
        ids.append((await ingest(world.factory, world.event(f"backlog-{i}"))).conversation_id)

    async def routed() -> bool:  # the workflows ran, found nobody, and wait in the branch pool
        return await count_rows(world.factory, Conversation, Conversation.branch_id == world.branch_id) == 3

    await wait_until(routed)
    await asyncio.sleep(0.5)
    assert await count_rows(world.factory, Conversation, Conversation.assignee_id.is_not(None)) == 0

    async with world.factory() as db, db.begin():
        operator = await db.get(Operator, late)
        assigned = await operators.set_status(db, operator, OperatorStatus.ONLINE)
    assert assigned == ids  # oldest first
    async with world.factory() as db:
        rows = (
            await db.execute(
                select(Conversation.id, Conversation.assignee_id, Conversation.assigned_at).order_by(Conversation.id)
            )
        ).all()
    assert [r.assignee_id for r in rows] == [late] * 3
    assert [r.assigned_at for r in rows] == sorted(r.assigned_at for r in rows)
    # each workflow heard of its assignment (its escalation timer now runs for that operator)
    for conversation_id in ids:
        handle = engine_stack.client.get_workflow_handle(conversation_workflow_id(conversation_id))

        async def knows(handle=handle) -> bool:
            return (await handle.query(STATE_QUERY, result_type=ConversationState)).assignee_id == late

        await wait_until(knows)


async def test_escalation_transfer_resolve_rating_and_reopen_end_to_end(world, engine_stack):
    async with world.factory() as db, db.begin():
        from infra.models import Inbox

        inbox = await db.get(Inbox, world.inbox_id)
        inbox.settings = {**inbox.settings, "escalation_minutes": 0.02, "auto_reply": "Thanks, we are on it"}
    a, b = await world.operator(), await world.operator()
    result = await ingest(world.factory, world.event("e2e-1", "my order is late"))
    cid = result.conversation_id

    async def assignee():
        async with world.factory() as db:
            return await db.scalar(select(Conversation.assignee_id).where(Conversation.id == cid))

    await wait_until(lambda: _is(assignee(), a))
    await wait_until(lambda: _is(assignee(), b), timeout=20)  # 1.2 s unopened: escalated
    async with world.factory() as db, db.begin():
        operator_b = await db.get(Operator, b)
        await conversations.open_conversation(db, operator_b, cid)
    await asyncio.sleep(2)
    assert await assignee() == b  # opened: no more escalation

    # the auto-reply went out through the delivery path
    await wait_until(lambda: _count_sent(world, SenderKind.SYSTEM, 1))

    async with world.factory() as db, db.begin():
        await conversations.request_transfer(db, operator_b, cid, to_operator_id=a)
    await wait_until(lambda: _is(assignee(), a))
    async with world.factory() as db, db.begin():
        operator_a = await db.get(Operator, a)
        await conversations.open_conversation(db, operator_a, cid)
        await conversations.send_reply(db, operator_a, cid, "It ships today", idempotency_key="k1")
        await conversations.send_reply(db, operator_a, cid, "It ships today", idempotency_key="k1")  # retried click
        await conversations.request_resolve(db, operator_a, cid)

    async def status():
        async with world.factory() as db:
            return await db.scalar(select(Conversation.status).where(Conversation.id == cid))

    await wait_until(lambda: _is(status(), ConversationStatus.RESOLVED))
    await wait_until(lambda: _count_sent(world, SenderKind.SYSTEM, 2))  # the rating request
    assert await count_rows(world.factory, Message, Message.sender_kind == SenderKind.OPERATOR) == 1

    await ingest(world.factory, world.event("e2e-1", "5"))  # the rating, not a reopen
    async with world.factory() as db:
        conversation = await db.get(Conversation, cid)
    assert conversation.rating == 5 and conversation.status == ConversationStatus.RESOLVED

    await ingest(world.factory, world.event("e2e-1", "one more question"))
    assert await status() == ConversationStatus.OPEN  # reopened at once, in the inbound transaction

    async def actions():
        async with world.factory() as db:
            return (
                await db.scalars(
                    select(AuditEvent.action).where(AuditEvent.conversation_id == cid).order_by(AuditEvent.id)
                )
            ).all()

    await wait_until(lambda: _is_last(actions(), "conversation.reopened"))  # and the workflow took it up
    actions = await actions()
    assert actions[:4] == [
        "conversation.assigned",
        "conversation.escalated",
        "conversation.transferred",
        "message.sent",
    ]
    assert "conversation.resolved" in actions and actions[-1] == "conversation.reopened"


async def test_the_assignee_replying_counts_as_opening_so_escalation_stops(world, engine_stack):
    async with world.factory() as db, db.begin():
        from infra.models import Inbox

        inbox = await db.get(Inbox, world.inbox_id)
        inbox.settings = {**inbox.settings, "escalation_minutes": 0.1}  # 6 s
    ann, _bob = await world.operator(), await world.operator()
    cid = (await ingest(world.factory, world.event("reply-opens", "where is my order?"))).conversation_id

    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: s.assignee_id == ann))
    async with world.factory() as db, db.begin():
        await conversations.send_reply(db, await db.get(Operator, ann), cid, "On its way", idempotency_key="r1")
        await conversations.send_reply(db, await db.get(Operator, ann), cid, "Tomorrow", idempotency_key="r2")
    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: s.opened), timeout=10)
    async with world.factory() as db:
        conversation = await db.get(Conversation, cid)
    assert conversation.opened_at is not None and conversation.assignee_id == ann
    # past the 6 s she had: still hers, nothing escalated
    deadline = conversation.assigned_at.timestamp() + 7
    await wait_until(lambda: time.time() > deadline)
    assert await _workflow_knows(engine_stack, cid, lambda s: s.assignee_id == ann)
    async with world.factory() as db:
        assert await db.scalar(select(Conversation.assignee_id).where(Conversation.id == cid)) == ann
        actions = (await db.scalars(select(AuditEvent.action).where(AuditEvent.conversation_id == cid))).all()
    assert "conversation.escalated" not in actions and actions.count("message.sent") == 2


async def test_settings_changed_while_it_runs_reach_the_workflow_without_a_restart(world, engine_stack):
    """An admin changes the inbox's escalation (60 minutes -> 3 s) and the branch's working hours
    while the conversation waits: its workflow acts on both."""
    ann, bob = await world.operator(), await world.operator()
    cid = (await ingest(world.factory, world.event("settings-1"))).conversation_id
    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: s.assignee_id == ann))
    async with world.factory() as db, db.begin():
        from infra.models import Inbox

        inbox = await db.get(Inbox, world.inbox_id)
        inbox.settings = {**inbox.settings, "escalation_minutes": 0.05}

    async def assignee() -> int | None:
        async with world.factory() as db:
            return await db.scalar(select(Conversation.assignee_id).where(Conversation.id == cid))

    await wait_until(lambda: _is(assignee(), bob), timeout=20)

    hours = {"timezone": "UTC", "always_open": True, "holidays": ["2031-01-01"]}
    async with world.factory() as db, db.begin():
        from infra.models import Branch

        branch = await db.get(Branch, world.branch_id)
        branch.working_hours = hours
    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: s.schedule == hours))


async def _workflow_knows(engine_stack, conversation_id: int, check) -> bool:
    state = await workflow_state(engine_stack.client, conversation_id)
    return state is not None and check(state)


async def test_contact_blocked_marks_identity_unreachable_and_the_workflow_stops_writing_to_them(world, engine_stack):
    ann = await world.operator()
    cid = (await ingest(world.factory, world.event("blk", "hi"))).conversation_id
    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: s.assignee_id == ann))
    await ingest(world.factory, world.event("blk", kind=InboundKind.BLOCKED, message_id=None))
    async with world.factory() as db:
        reachable = await db.scalar(select(ContactChat.reachable))
    assert reachable is False
    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: not s.reachable))

    # the inbox asks for a rating after resolving: not of someone who blocked the bot
    async with world.factory() as db, db.begin():
        await conversations.request_resolve(db, await db.get(Operator, ann), cid)
    await wait_until(lambda: _workflow_knows(engine_stack, cid, lambda s: s.status == ConversationStatus.RESOLVED))
    await wait_until(lambda: _drained(world))
    assert await count_rows(world.factory, Message, Message.sender_kind == SenderKind.SYSTEM) == 0


async def _is_last(awaitable, expected) -> bool:
    items = await awaitable
    return bool(items) and items[-1] == expected


async def _is(awaitable, expected) -> bool:
    return (await awaitable) == expected


async def _count_sent(world, sender: SenderKind, n: int) -> bool:
    return (
        await count_rows(
            world.factory, Message, Message.sender_kind == sender, Message.delivery_status == DeliveryStatus.SENT
        )
        == n
    )


async def test_supervisors_can_filter_workflows_by_search_attributes(world, engine_stack):
    op = await world.operator()
    result = await ingest(world.factory, world.event("sa-1", "hello"))
    wid = conversation_workflow_id(result.conversation_id)
    query = (
        f"WorkflowId = '{wid}' AND ConversationStatus = 'open' AND Channel = 'telegram' "
        f"AND BranchId = {world.branch_id} AND AssigneeId = {op}"
    )

    async def visible() -> bool:
        return len([w async for w in engine_stack.client.list_workflows(query)]) == 1

    await wait_until(visible, timeout=30, interval=0.3)
    description = await engine_stack.client.get_workflow_handle(wid).describe()
    assert await description.memo_value("contact") == "Customer sa-1"
