"""The outbox relay: rows kept while Temporal cannot be reached (the dev-server outage test shows
the end-to-end catch-up), notices of one conversation applied whatever order their writers
commit in, and a row Temporal refuses set aside so its conversation moves on."""

import asyncio

from sqlalchemy import func, select, text, update
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from domain.conversation import STATE_QUERY, ConversationState
from domain.enums import ConversationStatus
from domain.ids import conversation_workflow_id
from infra.models import Conversation, Operator, OutboxEvent
from services import conversations
from services.ingest import ingest
from services.outbox import OutboxRelay
from setup.devstack import TemporalDevServer, free_port
from tests.conftest import TMP
from tests.integration.conftest import wait_until


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


async def _workflow_state(engine_stack, conversation_id: int) -> ConversationState:
    handle = engine_stack.client.get_workflow_handle(conversation_workflow_id(conversation_id))
    return await handle.query(STATE_QUERY, result_type=ConversationState)


async def _drained(world) -> bool:
    async with world.factory() as db:
        return await db.scalar(select(func.count()).select_from(OutboxEvent)) == 0


async def _waits_for_a_lock(world, pid: int) -> bool:
    async with world.factory() as db:
        return await db.scalar(text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}) == (
            "Lock"
        )


async def test_a_notice_whose_lower_id_commits_after_a_higher_one_is_still_applied(world, engine_stack):
    """Two writers race on one conversation: the resolve takes the lower outbox id but commits
    only once the second writer's notice (the assignee opening it) has been applied, or once
    that writer waits for the first."""
    ann = await world.operator()
    cid = (await ingest(world.factory, world.event("race-1"))).conversation_id

    async def assigned_and_idle() -> bool:
        return await _drained(world) and (await _workflow_state(engine_stack, cid)).assignee_id == ann

    await wait_until(assigned_and_idle)

    second_pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def open_it() -> None:
        async with world.factory() as db, db.begin():
            second_pid.set_result(await db.scalar(select(func.pg_backend_pid())))
            await conversations.open_conversation(db, await db.get(Operator, ann), cid)

    async with world.factory() as db, db.begin():
        await conversations.request_resolve(db, await db.get(Operator, ann), cid)
        async with world.factory() as peek:
            resolve_id = await peek.scalar(select(func.max(OutboxEvent.id)))
        second = asyncio.create_task(open_it())
        pid = await second_pid

        async def second_applied_or_waiting() -> bool:
            if second.done():  # then hold the lower id back until the higher one is applied
                return (await _workflow_state(engine_stack, cid)).opened
            return await _waits_for_a_lock(world, pid)

        await wait_until(second_applied_or_waiting, timeout=10, interval=0.02)
    await second

    async def both_applied() -> bool:
        state = await _workflow_state(engine_stack, cid)
        return state.opened and state.status == ConversationStatus.RESOLVED

    await wait_until(both_applied)
    async with world.factory() as db:
        assert await db.scalar(select(Conversation.status).where(Conversation.id == cid)) == (
            ConversationStatus.RESOLVED
        )
    assert (await _workflow_state(engine_stack, cid)).last_outbox_id > (resolve_id or 0)
