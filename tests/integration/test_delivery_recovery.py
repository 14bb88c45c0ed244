"""A conversation's outgoing queue recovers from deliveries that ended badly, against the real
database and the session's Temporal dev server: the plan stops waiting for a predecessor whose
delivery no longer runs, the housekeeping sweep fails what was left pending past its give-up
time, and a supervisor's retry that comes while the previous run is still open is not lost."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import delete, func, select, update
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment

from activities.delivery import DeliveryActivities
from domain.delivery import DELIVERY_WORKFLOW, DeliveryInput, PrepareRequest
from domain.enums import DeliveryStatus, ErrorClass
from domain.housekeeping import HOUSEKEEPING_WORKFLOW
from domain.ids import delivery_workflow_id
from infra.models import Message, Operator, OutboxEvent
from infra.security import CredentialBox
from services import deadletters
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.faults import Fault
from tests.integration.chaos_support import Queued, open_chats, queue_replies, replier, statuses
from tests.integration.conftest import wait_until
from worker import build_activities, build_worker


@asynccontextmanager
async def held_delivery(client: Client, message_id: int) -> AsyncIterator[WorkflowHandle]:
    """delivery-{message_id} running on a queue no worker serves: a run that never moves on."""
    handle = await client.start_workflow(
        DELIVERY_WORKFLOW,
        DeliveryInput(message_id=message_id),
        id=delivery_workflow_id(message_id),
        task_queue=f"held-{uuid.uuid4()}",
    )
    try:
        yield handle
    finally:
        with contextlib.suppress(RPCError):  # the test may have ended it already
            await handle.terminate("test over")


async def _queued(world, count: int, first_chat: int) -> tuple[int, list[int]]:
    """A supervisor queues `count` replies in one new conversation: (supervisor, message ids
    oldest first). Their outbox rows wait: no relay runs."""
    chats = await open_chats(world, 1, first_chat)
    supervisor = await replier(world)
    queued = Queued()
    await queue_replies(world.factory, supervisor, chats, count, f"q{first_chat}", queued)
    return supervisor, queued.ids


async def _forget_outbox(world, *message_ids: int) -> None:
    async with world.factory() as db, db.begin():
        await db.execute(delete(OutboxEvent).where(OutboxEvent.payload["message_id"].as_integer().in_(message_ids)))


async def _age(world, hours: float, *message_ids: int) -> None:
    async with world.factory() as db, db.begin():
        await db.execute(
            update(Message).where(Message.id.in_(message_ids)).values(created_at=func.now() - timedelta(hours=hours))
        )


async def test_the_plan_waits_only_for_a_predecessor_whose_delivery_runs_or_is_about_to_start(
    world, app_settings, temporal_client
):
    _, (first, second, third) = await _queued(world, 3, 9_100_000)
    activities = DeliveryActivities(world.factory, {}, CredentialBox(TEST_CREDENTIALS_KEY), app_settings)
    env = ActivityEnvironment(client=temporal_client)

    async def plan(message_id: int, verify: bool) -> int | None:
        result = await env.run(
            activities.prepare_delivery, PrepareRequest(message_id=message_id, verify_predecessor=verify)
        )
        assert result.created_at is not None and not result.final
        return result.predecessor_id

    # every outbox row is still waiting for the relay: each delivery is about to start
    assert await plan(third, verify=True) == second
    await _forget_outbox(world, first, second, third)
    # nothing runs for the first two any more: the hot path does not ask, the re-check does
    assert await plan(third, verify=False) == second
    assert await plan(third, verify=True) is None
    async with held_delivery(temporal_client, first):
        # the second is dead but the first still runs: order holds behind the first
        assert await plan(third, verify=True) == first
    async with held_delivery(temporal_client, second):
        assert await plan(third, verify=True) == second


async def test_the_housekeeping_sweep_fails_what_was_left_pending_past_its_give_up_time(
    world, app_settings, temporal_client, task_queue
):
    supervisor, (abandoned, running, relayed_soon, recent) = await _queued(world, 4, 9_200_000)
    await _forget_outbox(world, abandoned, running, recent)  # relayed_soon's row still waits
    await _age(world, app_settings.delivery_give_up_hours + 1, abandoned, running, relayed_soon)
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    async with (
        held_delivery(temporal_client, running),
        httpx.AsyncClient() as http,
        build_worker(temporal_client, settings, build_activities(world.factory, settings, http)),
    ):
        housekeeping = await temporal_client.start_workflow(
            HOUSEKEEPING_WORKFLOW, id=f"housekeeping-{task_queue}", task_queue=task_queue
        )
        try:
            await wait_until(lambda: _has_status(world, abandoned, DeliveryStatus.FAILED), timeout=30)
        finally:
            await housekeeping.terminate("test over")

    assert await statuses(world.factory, [running, relayed_soon, recent]) == {
        running: DeliveryStatus.QUEUED,  # its delivery still runs
        relayed_soon: DeliveryStatus.QUEUED,  # the relay is about to start its delivery
        recent: DeliveryStatus.QUEUED,  # not past its give-up time
    }
    async with world.factory() as db:
        message = await db.get(Message, abandoned)
        listed = await deadletters.list_dead_letters(db, await db.get(Operator, supervisor))
    assert message.error_class == ErrorClass.RETRYABLE and "no delivery was running" in message.error
    assert [m.id for m in listed] == [abandoned]


async def _has_status(world, message_id: int, status: DeliveryStatus) -> bool:
    return (await statuses(world.factory, [message_id]))[message_id] == status


async def test_a_dead_letter_retried_while_its_previous_run_is_still_open_is_sent_once(
    world, engine_stack, fake_telegram
):
    chats = await open_chats(world, 1, 9_300_000)
    chat = chats[0].chat_id
    supervisor = await replier(world)
    fake_telegram.fail_next(Fault.CHAT_NOT_FOUND, 1, method="sendMessage")
    queued = Queued()
    await queue_replies(world.factory, supervisor, chats, 1, "retry", queued)
    [message_id] = queued.ids
    await wait_until(lambda: _has_status(world, message_id, DeliveryStatus.FAILED), timeout=20)
    # the failing run records FAILED before it completes: let it end before a held run replaces it
    with contextlib.suppress(WorkflowFailureError):
        await engine_stack.client.get_workflow_handle(delivery_workflow_id(message_id)).result()

    # the previous run is still open (its worker has yet to finish it) when the supervisor retries
    async with held_delivery(engine_stack.client, message_id) as previous:
        async with world.factory() as db, db.begin():
            await deadletters.retry_dead_letter(db, await db.get(Operator, supervisor), message_id)

        async def refused_while_open() -> bool:
            async with world.factory() as db:
                return bool(await db.scalar(select(func.max(OutboxEvent.attempts))))

        await wait_until(refused_while_open, timeout=20)
        assert await _has_status(world, message_id, DeliveryStatus.QUEUED)
        await previous.terminate("it finished")
        await wait_until(lambda: _has_status(world, message_id, DeliveryStatus.SENT), timeout=30)

    accepted = [m.text for m in fake_telegram.sent_messages(chat)]
    assert accepted == [queued.by_chat[chat][0][1]]
    async with world.factory() as db:
        assert await db.scalar(select(func.count()).select_from(OutboxEvent)) == 0
        assert (await db.get(Message, message_id)).sent_at > datetime.now(UTC) - timedelta(minutes=1)
