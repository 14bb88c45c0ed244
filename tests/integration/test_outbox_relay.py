"""The outbox relay: rows kept while Temporal cannot be reached (the dev-server outage test shows
the end-to-end catch-up), notices of one conversation applied whatever order their writers
commit in, and a row Temporal refuses set aside so its conversation moves on."""

import asyncio

import pytest
from sqlalchemy import func, select, text, update
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from domain.conversation import ConversationNotice, NoticeKind
from domain.enums import ConversationStatus, OperatorRole
from domain.ids import conversation_workflow_id
from infra.models import AuditEvent, Conversation, Operator, OutboxEvent, RealtimeEvent
from services import conversations
from services.errors import Forbidden, Invalid
from services.ingest import ingest
from services.outbox import PARK_AFTER, OutboxRelay, add_notice, retry_parked
from setup.devstack import TemporalDevServer, free_port
from tests.conftest import TMP
from tests.integration.conftest import wait_until, workflow_state


async def test_rows_stay_due_while_temporal_is_unreachable_so_catching_up_starts_at_once(world):
    for user in ("relay-1", "relay-2", "relay-3"):
        await ingest(world.factory, world.event(user))  # three conversations: three STARTED rows
    db_file = TMP / f"relay-{free_port()}.db"
    server = TemporalDevServer(db_file, port=free_port(), ui_port=None)
    await asyncio.to_thread(server.start)
    try:
        # no client-side retries: a pass fails as soon as the gone server does not answer
        client = await Client.connect(
            server.address, data_converter=pydantic_data_converter, retry_config=RetryConfig(max_retries=0)
        )
    finally:
        await asyncio.to_thread(server.stop)
        for suffix in ("", "-wal", "-shm"):
            db_file.with_name(db_file.name + suffix).unlink(missing_ok=True)
    relay = OutboxRelay(world.factory, client, "nowhere")
    async with world.factory() as db, db.begin():
        # as after a long outage: per-row backoff would now put each row a minute out
        await db.execute(update(OutboxEvent).values(attempts=6))

    assert await relay.drain_once() == 3
    assert relay.temporal_unreachable
    # straight after the failed pass every row is due again, its attempt and error recorded
    async with world.factory() as db:
        rows = (
            await db.execute(
                select(OutboxEvent.attempts, OutboxEvent.last_error, OutboxEvent.available_at <= func.now())
            )
        ).all()
    assert len(rows) == 3
    assert all(attempts == 7 and error and due for attempts, error, due in rows), rows


async def _workflow_knows(engine_stack, conversation_id: int, check) -> bool:
    state = await workflow_state(engine_stack.client, conversation_id)
    return state is not None and check(state)


async def _drained(world) -> bool:
    async with world.factory() as db:
        return await db.scalar(select(func.count()).select_from(OutboxEvent)) == 0


async def _waits_for_a_lock(world, pid: int) -> bool:
    async with world.factory() as db:
        waiting = await db.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid})
    return waiting == "Lock"


async def test_a_notice_whose_lower_id_commits_after_a_higher_one_is_still_applied(world, engine_stack):
    """Two writers race on one conversation: the resolve takes the lower outbox id but commits
    only once the second writer's notice (the assignee opening it) has been applied, or once
    that writer waits for the first."""
    ann = await world.operator()
    cid = (await ingest(world.factory, world.event("race-1"))).conversation_id

    async def assigned_and_idle() -> bool:
        return await _drained(world) and await _workflow_knows(engine_stack, cid, lambda s: s.assignee_id == ann)

    await wait_until(assigned_and_idle)

    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def open_it() -> None:
        async with world.factory() as db, db.begin():
            second_pid.set_result(await db.scalar(select(func.pg_backend_pid())))
            await conversations.open_conversation(db, await db.get(Operator, ann), cid)

    async with world.factory() as db, db.begin():
        await conversations.request_resolve(db, await db.get(Operator, ann), cid)
        second = asyncio.create_task(open_it())
        pid = await second_pid

        async def second_applied_or_waiting() -> bool:
            if second.done():  # then hold the lower id back until the higher one is applied
                return await _workflow_knows(engine_stack, cid, lambda s: s.opened)
            return await _waits_for_a_lock(world, pid)

        await wait_until(second_applied_or_waiting, timeout=10, interval=0.02)
    await second

    await wait_until(
        lambda: _workflow_knows(engine_stack, cid, lambda s: s.opened and s.status == ConversationStatus.RESOLVED)
    )
    async with world.factory() as db:
        status = await db.scalar(select(Conversation.status).where(Conversation.id == cid))
    assert status == ConversationStatus.RESOLVED


async def _signals(client: Client, conversation_id: int) -> list[dict]:
    """The notices conversation-{id} received, in order."""
    history = await client.get_workflow_handle(conversation_workflow_id(conversation_id)).fetch_history()
    notices = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            (payload,) = event.workflow_execution_signaled_event_attributes.input.payloads
            notices.append(await _decode(client, payload))
    return notices


async def _decode(client: Client, payload) -> dict:
    (notice,) = await client.data_converter.decode([payload], [ConversationNotice])
    return {"id": notice.outbox_id, "kind": notice.kind}


async def _drain_until_parked(world, relay: OutboxRelay, row_id: int, passes: int = 30) -> OutboxEvent:
    for _ in range(passes):
        await relay.drain_once()
        async with world.factory() as db, db.begin():
            row = await db.get(OutboxEvent, row_id)
            if row is None or row.parked_at is not None:
                return row
            # as when its backoff has run out
            await db.execute(update(OutboxEvent).values(available_at=func.now()))
    raise AssertionError(f"outbox row {row_id} neither handed over nor parked after {passes} passes")


async def test_a_row_temporal_keeps_refusing_is_parked_and_its_conversation_moves_on(
    world, temporal_client, task_queue
):
    operator = await world.operator()
    supervisor = await world.operator(role=OperatorRole.SUPERVISOR)
    cid = (await ingest(world.factory, world.event("poison-1"))).conversation_id  # its STARTED notice
    async with world.factory() as db, db.begin():
        # a notice no version of the workflow reads: handing it over fails every time
        poison = OutboxEvent(conversation_id=cid, kind="notice", payload={"kind": "no-such-notice"})
        db.add(poison)
        await db.flush()
        poison_id = poison.id
        await add_notice(db, cid, ConversationNotice(kind=NoticeKind.BLOCKED))
    async with world.factory() as db, db.begin():
        # as after a long outage: tries while Temporal was unreachable count no refusal
        await db.execute(update(OutboxEvent).values(attempts=50))
    relay = OutboxRelay(world.factory, temporal_client, task_queue)  # no worker: the workflow just waits

    parked = await _drain_until_parked(world, relay, poison_id)
    assert parked is not None and parked.parked_at is not None, "handed over?"
    assert "no-such-notice" in parked.last_error and parked.refusals == PARK_AFTER
    # the notice behind it goes on; the parked row stays, visible, and is not tried again
    await relay.drain_once()
    async with world.factory() as db:
        left = (await db.execute(select(OutboxEvent.id, OutboxEvent.attempts))).all()
        audit = (await db.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.parked"))).all()
        alerts = (
            await db.scalars(select(RealtimeEvent.payload).where(RealtimeEvent.type == "alert.outbox_parked"))
        ).all()
    assert left == [(poison_id, parked.attempts)] and parked.attempts == 50 + PARK_AFTER
    assert [n["kind"] for n in await _signals(temporal_client, cid)] == [NoticeKind.STARTED, NoticeKind.BLOCKED]
    assert [(a.conversation_id, a.details["outbox_id"]) for a in audit] == [(cid, poison_id)]
    assert [(a["outbox_id"], a["conversation_id"], a["kind"]) for a in alerts] == [(poison_id, cid, "notice")]
    assert "no-such-notice" in alerts[0]["error"]

    # a supervisor hands it over again: to the back of the queue, under a new id, audited
    async with world.factory() as db, db.begin():
        with pytest.raises(Forbidden):
            await retry_parked(db, await db.get(Operator, operator), poison_id)
    async with world.factory() as db, db.begin():
        retried_id = await retry_parked(db, await db.get(Operator, supervisor), poison_id)
    async with world.factory() as db, db.begin():
        with pytest.raises(Invalid):
            await retry_parked(db, await db.get(Operator, supervisor), poison_id)  # done already
    async with world.factory() as db:
        row = await db.get(OutboxEvent, retried_id)
        retried = await db.scalar(select(AuditEvent).where(AuditEvent.action == "outbox.retried"))
    assert retried_id > poison_id and row.parked_at is None and row.attempts == row.refusals == 0
    assert row.payload == {"kind": "no-such-notice"} and row.conversation_id == cid
    assert retried.actor_operator_id == supervisor and retried.details["outbox_id"] == poison_id
