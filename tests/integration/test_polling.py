"""Long polling end to end: fake Telegram / MAX -> PollerWorkflow on the dev server ->
poll_inbox -> ingest into PostgreSQL. A worker dying between ingest and cursor save loses
nothing and stores nothing twice."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import update

from activities.channels import ChannelActivities
from domain.enums import ChannelKind
from domain.ids import poller_workflow_id
from infra.models import Inbox
from tests.fakes.telegram import UPDATE_ID_BASE
from tests.integration.channel_support import (  # noqa: F401
    Channels,
    channels,
    fake_max,
    fake_max_server,
    fake_telegram,
    fake_telegram_server,
)
from tests.integration.conftest import wait_until
from workflows.polling import PollerInput, PollerWorkflow

CHAT = 1001


class DiesBeforeSecondCursorSave(ChannelActivities):
    """A worker that dies after a batch's ingests committed but before its cursor was saved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.saves = 0
        self.stuck = asyncio.Event()

    async def _save_cursor(self, inbox_id: int, old: str | None, new: Any) -> None:
        self.saves += 1
        if self.saves == 2:
            self.stuck.set()
            await asyncio.Event().wait()  # until the worker is shut down under it
        await super()._save_cursor(inbox_id, old, new)


async def _start_poller(env: Channels, inbox_id: int) -> None:
    env.track(await env.client.start_workflow(
        PollerWorkflow.run,
        PollerInput(inbox_id=inbox_id, poll_timeout=1, heartbeat_timeout_seconds=2),
        id=poller_workflow_id(inbox_id), task_queue=env.task_queue,
    ))


async def test_polled_updates_become_messages_once_across_a_worker_restart(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    texts = [f"message {i}" for i in range(6)]

    first = env.activities(DiesBeforeSecondCursorSave)
    async with env.worker(first):
        for text in texts[:2]:
            tg.inject_message(CHAT, text)
        await _start_poller(env, inbox_id)
        await wait_until(lambda: first.saves >= 1 and tg.pending_updates() == [] or None, timeout=10)
        # first batch: ingested and acknowledged (the cursor is saved)
        assert (await env.load(inbox_id)).poll_cursor == str(UPDATE_ID_BASE + 3)
        for text in texts[2:4]:
            tg.inject_message(CHAT, text)
        await asyncio.wait_for(first.stuck.wait(), 10)
        # second batch: in the database, but the worker dies before acknowledging it
        assert await env.texts(inbox_id) == texts[:4]
        polls_before_restart = len(tg.requests("getUpdates"))
    assert (await env.load(inbox_id)).poll_cursor == str(UPDATE_ID_BASE + 3)

    for text in texts[4:]:  # the customer keeps writing while no worker runs
        tg.inject_message(CHAT, text)
    async with env.worker():
        await wait_until(lambda: _cursor_is(env, inbox_id, str(UPDATE_ID_BASE + 7)), timeout=15)
        assert await env.texts(inbox_id) == texts  # every update exactly once, in order

    # the new worker asked again from the saved cursor: the unacknowledged batch came twice
    refetch = tg.requests("getUpdates")[polls_before_restart]
    assert refetch.params.get("offset") == UPDATE_ID_BASE + 3
    assert tg.pending_updates() == [] or await _cursor_is(env, inbox_id, str(UPDATE_ID_BASE + 7))


async def _cursor_is(env: Channels, inbox_id: int, cursor: str) -> bool:
    return (await env.load(inbox_id)).poll_cursor == cursor


async def test_max_polling_removes_a_leftover_webhook_and_stops_when_deactivated(channels: Channels):
    env, mx = channels, channels.max
    inbox_id = await env.inbox(ChannelKind.MAX)
    inbox = await env.load(inbox_id)
    # a subscription left from an earlier deployment: MAX refuses long polling while it exists
    await env.adapters[ChannelKind.MAX].register_webhook(
        env.credentials(inbox), "https://old.example.org/hook", "old-secret")
    for n in range(3):
        mx.inject_message(chat_id=5005, user_id=7007, text=f"max {n}")

    async with env.worker():
        await _start_poller(env, inbox_id)
        await wait_until(lambda: _count_is(env, inbox_id, 3), timeout=10)
        assert mx.subscriptions == []
        assert await env.texts(inbox_id) == ["max 0", "max 1", "max 2"]
        marker = (await env.load(inbox_id)).poll_cursor
        assert marker is not None and int(marker) > 0

        mx.inject_message(chat_id=5005, user_id=7007, text="max 3")
        await wait_until(lambda: _count_is(env, inbox_id, 4), timeout=10)

        async with env.factory() as db, db.begin():
            await db.execute(update(Inbox).where(Inbox.id == inbox_id).values(is_active=False))
        handle = env.client.get_workflow_handle(poller_workflow_id(inbox_id))
        assert await asyncio.wait_for(handle.result(), 10) == "inbox deactivated"
    assert await env.texts(inbox_id) == ["max 0", "max 1", "max 2", "max 3"]


async def _count_is(env: Channels, inbox_id: int, n: int) -> bool:
    return await env.message_count(inbox_id) == n
