""" "Send to B24" against a fake portal that behaves as Bitrix24's docs say (leaky bucket, string
ids, no idempotency key): one task per conversation whatever the clicks and the workers do."""

from __future__ import annotations

import asyncio
import itertools

import httpx
from sqlalchemy import select

from domain.bitrix24 import TaskStatus
from infra.models import Bitrix24Task, Conversation
from infra.security import CredentialBox
from infra.temporal import WorkflowStarter
from integrations.bitrix24 import RETRY_AFTER_LIMIT
from services import bitrix24
from services.errors import Invalid
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.bitrix24 import FakeBitrix24
from tests.integration.conftest import wait_until
from worker import build_activities, build_worker

BOX = CredentialBox(TEST_CREDENTIALS_KEY)


async def _conversation(world, user: str) -> int:
    result = await ingest(world.factory, world.event(user, f"{user}: the parcel never came"))
    async with world.factory() as db, db.begin():
        conversation = await db.get(Conversation, result.conversation_id)
        conversation.branch_id = world.branch_id
    return result.conversation_id


async def _connect(world, portal: FakeBitrix24) -> None:
    async with world.factory() as db, db.begin():
        await bitrix24.connect(
            db,
            BOX,
            bitrix24.ConnectionInput(
                owner=f"branch:{world.branch_id}", webhook_url=portal.webhook_url, responsible_id=7
            ),
            operator_id=None,
        )


async def _click(world, starter: WorkflowStarter, conversation_id: int) -> None:
    """What the thread page's button and the API call do."""
    async with world.factory() as db, db.begin():
        conversation = await db.get(Conversation, conversation_id)
        _, start = await bitrix24.request_task(db, conversation, operator_id=None)
    if start:
        await starter.start_bitrix24_task(conversation_id, "follow_up")


async def _ready(world, conversation_id: int) -> Bitrix24Task | None:
    async with world.factory() as db:
        task = await db.get(Bitrix24Task, (conversation_id, "follow_up"))
    return task if task is not None and task.status == TaskStatus.READY else None


async def test_double_clicks_on_three_conversations_make_three_tasks_within_the_portals_rate(
    world, temporal_client, app_settings, task_queue
):
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    starter = WorkflowStarter(temporal_client, task_queue)
    async with FakeBitrix24(burst=2) as portal, httpx.AsyncClient() as http:
        await _connect(world, portal)
        conversations = [await _conversation(world, user) for user in ("ann", "bob", "cid")]
        async with build_worker(temporal_client, settings, build_activities(world.factory, settings, http)):
            await asyncio.gather(*(_click(world, starter, c) for c in conversations for _ in range(2)))
            for conversation_id in conversations:
                await wait_until(lambda c=conversation_id: _ready(world, c), timeout=60)
            await _click(world, starter, conversations[0])  # a click after "Ready (B24)" changes nothing

    tasks = portal.tasks()
    assert sorted(t["xmlId"] for t in tasks) == sorted(f"switchboard-{c}-follow_up" for c in conversations)
    assert all(t["responsibleId"] == "7" and "the parcel never came" in t["description"] for t in tasks)
    assert [c.status for c in portal.calls()].count(503) == 0  # our shared slots kept under the bucket
    times = sorted(c.at for c in portal.calls())
    assert all(later - earlier >= 0.4 for earlier, later in itertools.pairwise(times))
    for conversation_id in conversations:
        task = await _ready(world, conversation_id)
        created = next(t for t in tasks if t["xmlId"] == f"switchboard-{conversation_id}-follow_up")
        assert task.task_id == created["id"]
        assert task.task_url.endswith(f"/company/personal/user/7/tasks/task/view/{created['id']}/")


async def test_a_worker_killed_while_bitrix24_adds_the_task_leaves_one_task(
    world, temporal_client, app_settings, task_queue
):
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    starter = WorkflowStarter(temporal_client, task_queue)
    async with FakeBitrix24() as portal, httpx.AsyncClient() as http:
        await _connect(world, portal)
        conversation_id = await _conversation(world, "dan")
        # the add is answered late; the portal creates the task all the same
        portal.fail_next(1, "time_limit")  # first a 429 OPERATION_TIME_LIMIT: retried after its pause
        first = build_worker(temporal_client, settings, build_activities(world.factory, settings, http))
        async with first:
            await _click(world, starter, conversation_id)
            await wait_until(lambda: len(portal.calls("tasks.task.list")) >= 1, timeout=30)
            portal.fail_next(1, "slow", delay=3)  # the next call (the list after the 429)...
            portal.fail_next(1, "slow", delay=3)  # ...and the add are slow
            await wait_until(lambda: portal.tasks(), timeout=30)  # added; its answer still on the way
        # the worker is gone before it could record the task: another one takes over
        second = build_worker(temporal_client, settings, build_activities(world.factory, settings, http))
        async with second:
            await wait_until(lambda: _ready(world, conversation_id), timeout=60)

    assert len(portal.tasks()) == 1
    assert len(portal.calls("tasks.task.add")) == 1  # the retry found it by XML_ID
    assert portal.calls()[0].status == 429
    assert (await _ready(world, conversation_id)).task_id == portal.tasks()[0]["id"]


async def test_a_conversation_without_a_connection_is_refused_with_a_reason(world):
    conversation_id = await _conversation(world, "eve")
    async with world.factory() as db, db.begin():
        conversation = await db.get(Conversation, conversation_id)
        try:
            await bitrix24.request_task(db, conversation, operator_id=None)
        except Invalid as refused:
            assert "not connected" in str(refused)
        else:
            raise AssertionError("a task was asked for without a Bitrix24 connection")
        assert (await db.scalars(select(Bitrix24Task))).all() == []


async def test_a_portal_over_its_query_limit_is_asked_again_after_the_pause_and_one_task_is_made(
    world, temporal_client, app_settings, task_queue
):
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    starter = WorkflowStarter(temporal_client, task_queue)
    async with FakeBitrix24() as portal, httpx.AsyncClient() as http:
        await _connect(world, portal)
        conversation_id = await _conversation(world, "eve")
        portal.fail_next(2, "unavailable")  # 503 QUERY_LIMIT_EXCEEDED, twice
        async with build_worker(temporal_client, settings, build_activities(world.factory, settings, http)):
            await _click(world, starter, conversation_id)
            await wait_until(lambda: _ready(world, conversation_id), timeout=60)

    statuses = [c.status for c in portal.calls()]
    assert statuses[:2] == [503, 503] and 503 not in statuses[2:], statuses
    gaps = [b.at - a.at for a, b in itertools.pairwise(portal.calls()[:3])]
    assert all(gap >= RETRY_AFTER_LIMIT * 0.9 for gap in gaps), gaps  # asked again only after the pause
    assert len(portal.tasks()) == 1 and len(portal.calls("tasks.task.add")) == 1
