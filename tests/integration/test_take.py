"""Taking a conversation: an operator from their branch's pool ("assign to me"), a supervisor from
anyone ("take over"). Until then a supervisor only watches: a reply is refused as read-only."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, update

from domain.conversation import NoticeKind
from domain.enums import OperatorRole
from infra.models import Conversation, Operator, OutboxEvent, RealtimeEvent
from services import conversations
from services.conversation_list import ConversationFilter, list_conversations
from services.errors import Forbidden, Invalid
from services.ingest import ingest
from services.visibility import staff


async def _routed(world, user: str, assignee: int | None = None) -> int:
    result = await ingest(world.factory, world.event(user, "hello"))
    async with world.factory() as db, db.begin():
        conversation = await db.get(Conversation, result.conversation_id)
        conversation.branch_id, conversation.assignee_id = world.branch_id, assignee
    return result.conversation_id


async def _as(world, operator_id: int, action, *args, **kw):
    async with world.factory() as db, db.begin():
        return await action(db, await db.get(Operator, operator_id), *args, **kw)


@pytest.mark.parametrize("role", [OperatorRole.SUPERVISOR, OperatorRole.ADMIN])
async def test_staff_watching_someone_elses_conversation_can_do_nothing_in_it(world, role):
    colleague = await world.operator()
    watcher = await world.operator(role=role)
    cid = await _routed(world, f"watch-{role}", assignee=colleague)
    actions = {
        "reply": (conversations.send_reply, (cid, "hi"), {"idempotency_key": "w1"}),
        "resolve": (conversations.request_resolve, (cid,), {}),
        "transfer to a colleague": (conversations.request_transfer, (cid,), {"to_operator_id": colleague}),
        "transfer to themselves": (conversations.request_transfer, (cid,), {"to_operator_id": watcher}),
        "transfer to a branch": (conversations.request_transfer, (cid,), {"to_branch_id": world.branch_id}),
    }
    for name, (action, args, kw) in actions.items():
        with pytest.raises(Invalid, match="Read-only"):
            await _as(world, watcher, action, *args, **kw)
            pytest.fail(f"{role} could {name}")
    async with world.factory() as db:
        assert (await db.scalars(select(OutboxEvent.kind).where(OutboxEvent.conversation_id == cid))).all() == [
            "notice"  # only the conversation's own STARTED
        ]


async def test_an_operator_without_a_branch_sees_no_unrouted_conversation(world):
    nomad = await world.operator()
    async with world.factory() as db, db.begin():
        await db.execute(update(Operator).where(Operator.id == nomad).values(branch_id=None))
    unrouted = (await ingest(world.factory, world.event("unrouted-1"))).conversation_id  # no branch yet
    for action, args, kw in (
        (conversations.open_conversation, (unrouted,), {}),
        (conversations.take, (unrouted,), {}),
        (conversations.send_reply, (unrouted, "hi"), {"idempotency_key": "n1"}),
        (conversations.request_resolve, (unrouted,), {}),
    ):
        with pytest.raises(Forbidden):
            await _as(world, nomad, action, *args, **kw)
    async with world.factory() as db:
        listed, _ = await list_conversations(db, staff(await db.get(Operator, nomad)), ConversationFilter())
    assert unrouted not in [row.id for row in listed]


async def test_a_supervisor_watches_until_they_take_over_then_answers(world):
    colleague = await world.operator()
    supervisor = await world.operator(role=OperatorRole.SUPERVISOR)
    cid = await _routed(world, "take-1", assignee=colleague)

    with pytest.raises(Invalid, match="Read-only"):
        await _as(world, supervisor, conversations.send_reply, cid, "hi", idempotency_key="t1")
    with pytest.raises(Invalid, match="Read-only"):
        await _as(world, supervisor, conversations.request_resolve, cid)

    await _as(world, supervisor, conversations.take, cid)
    message_id, created = await _as(world, supervisor, conversations.send_reply, cid, "hi", idempotency_key="t1")
    assert created and message_id
    async with world.factory() as db:
        conversation = await db.get(Conversation, cid)
        rows = await db.execute(
            select(OutboxEvent.kind, OutboxEvent.payload)
            .where(OutboxEvent.conversation_id == cid)
            .order_by(OutboxEvent.id)
        )
        notices = [payload["kind"] if kind == "notice" else kind for kind, payload in rows]
        assigned = await db.scalar(
            select(RealtimeEvent.payload)
            .where(RealtimeEvent.type == "conversation.assigned")
            .order_by(RealtimeEvent.id.desc())
            .limit(1)
        )
    assert conversation.assignee_id == supervisor and conversation.opened_at is not None
    # the workflow hears the new assignee and that it is open: no escalation takes it away
    assert notices[-3:] == [NoticeKind.ASSIGNED, NoticeKind.OPENED, "deliver"]
    assert {k: assigned[k] for k in ("assignee_id", "previous_assignee_id", "reason", "actor_operator_id")} == {
        "assignee_id": supervisor,
        "previous_assignee_id": colleague,
        "reason": "taken",
        "actor_operator_id": supervisor,
    }, json.dumps(assigned)


async def test_an_operator_takes_from_their_pool_but_not_from_a_colleague(world):
    me, colleague = await world.operator(), await world.operator()
    pool = await _routed(world, "take-2")
    theirs = await _routed(world, "take-3", assignee=colleague)
    taken = await _as(world, me, conversations.take, pool)
    assert taken.assignee_id == me
    with pytest.raises(Forbidden):
        await _as(world, me, conversations.take, theirs)
    with pytest.raises(Forbidden):
        await _as(world, me, conversations.take, 10**12)
