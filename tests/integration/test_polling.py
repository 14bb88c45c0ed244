"""Long polling end to end: fake Telegram / MAX -> PollerWorkflow on the dev server ->
poll_inbox -> ingest into PostgreSQL. A worker dying between ingest and cursor save loses
nothing and stores nothing twice."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import select, text as sql, update

from activities.channels import ChannelActivities
from domain.enums import ChannelKind
from domain.ids import poller_workflow_id
from domain.polling import POLLER_WORKFLOW, PollerInput, PollOutcome
from infra.models import ContactIdentity, Inbox
from infra.settings import ROOT
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.integration.channel_support import (  # noqa: F401
    Channels,
    channels,
)
from tests.integration.conftest import refusing_text, wait_until

CHAT = 1001


class DiesBeforeCursorSave(ChannelActivities):
    """A worker that dies after a batch's ingests committed but before its cursor was saved:
    the first time the cursor would move past `DIE_FROM`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stuck = asyncio.Event()
        self.die_from = 0  # set by the test from the fake's update ids

    async def _save_cursor(self, inbox_id: int, old: str | None, new: Any) -> None:
        if new is not None and int(new) >= self.die_from:
            self.stuck.set()
            await asyncio.Event().wait()  # until the worker is shut down under it
        await super()._save_cursor(inbox_id, old, new)


async def _start_poller(env: Channels, inbox_id: int) -> None:
    env.track(
        await env.client.start_workflow(
            POLLER_WORKFLOW,
            PollerInput(inbox_id=inbox_id, poll_timeout=1, heartbeat_timeout_seconds=2),
            id=poller_workflow_id(inbox_id),
            task_queue=env.task_queue,
        )
    )


async def test_polled_updates_become_messages_once_across_a_worker_restart(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    texts = [f"message {i}" for i in range(6)]

    first = env.activities(DiesBeforeCursorSave)
    first.die_from = tg.update_id_base + 5  # past the 4th update
    async with env.worker(first):
        for text in texts[:2]:
            tg.inject_message(CHAT, text)
        await _start_poller(env, inbox_id)
        # the first updates: ingested and acknowledged (the cursor is saved)
        await wait_until(lambda: _cursor_is(env, inbox_id, str(tg.update_id_base + 3)), timeout=10)
        for text in texts[2:4]:
            tg.inject_message(CHAT, text)
        await asyncio.wait_for(first.stuck.wait(), 10)
        # the next ones: in the database, but the worker dies before acknowledging them
        assert await env.texts(inbox_id) == texts[:4]
        polls_before_restart = len(tg.requests("getUpdates"))
    assert (await env.load(inbox_id)).poll_cursor == str(tg.update_id_base + 3)

    for text in texts[4:]:  # the customer keeps writing while no worker runs
        tg.inject_message(CHAT, text)
    async with env.worker():
        await wait_until(lambda: _cursor_is(env, inbox_id, str(tg.update_id_base + 7)), timeout=15)
        assert await env.texts(inbox_id) == texts  # every update exactly once, in order

    # the new worker asked again from the saved cursor: the unacknowledged batch came twice
    refetch = tg.requests("getUpdates")[polls_before_restart]
    assert refetch.params.get("offset") == tg.update_id_base + 3


async def _cursor_is(env: Channels, inbox_id: int, cursor: str) -> bool:
    return (await env.load(inbox_id)).poll_cursor == cursor


@pytest.mark.parametrize("channel", [ChannelKind.TELEGRAM, ChannelKind.MAX])
async def test_polling_removes_a_leftover_webhook_and_stops_when_deactivated(channels: Channels, channel):
    env = channels
    inbox_id = await env.inbox(channel)
    inbox = await env.load(inbox_id)
    # a webhook left from an earlier deployment: the provider refuses long polling meanwhile
    await env.adapters[channel].register_webhook(env.credentials(inbox), "https://old.example.org/hook", "old-secret")

    def say(text: str) -> None:
        if channel == ChannelKind.TELEGRAM:
            env.telegram.inject_message(CHAT, text)
        else:
            env.max.inject_message(chat_id=5005, user_id=7007, text=text)

    for n in range(3):
        say(f"hi {n}")
    async with env.worker():
        await _start_poller(env, inbox_id)
        await wait_until(lambda: _count_is(env, inbox_id, 3), timeout=30)
        assert env.telegram.webhook is None and env.max.subscriptions == []
        assert await env.texts(inbox_id) == ["hi 0", "hi 1", "hi 2"]
        cursor = (await env.load(inbox_id)).poll_cursor
        assert cursor is not None and int(cursor) > 0

        say("hi 3")
        await wait_until(lambda: _count_is(env, inbox_id, 4), timeout=30)

        async with env.factory() as db, db.begin():
            await db.execute(update(Inbox).where(Inbox.id == inbox_id).values(is_active=False))
        handle = env.client.get_workflow_handle(poller_workflow_id(inbox_id))
        assert await asyncio.wait_for(handle.result(), 30) == "inbox deactivated"
    assert await env.texts(inbox_id) == ["hi 0", "hi 1", "hi 2", "hi 3"]


async def _count_is(env: Channels, inbox_id: int, n: int) -> bool:
    return await env.message_count(inbox_id) == n


async def test_a_killed_worker_process_is_replaced_without_loss_or_repeat(
    channels: Channels, temporal_dev, database_url
):
    """kill -9 between ingest and cursor save: the heartbeat timeout hands the poll to a new worker."""
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    for n in range(3):
        tg.inject_message(CHAT, f"before {n}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.integration.polling_worker",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ
        | {
            "CREDENTIALS_KEY": TEST_CREDENTIALS_KEY,
            "DATABASE_URL": database_url,
            "TEMPORAL_ADDRESS": temporal_dev.address,
            "TASK_QUEUE": env.task_queue,
            "TELEGRAM_API_BASE": tg.base_url,
            "DIE_FROM": str(tg.update_id_base + 1),
        },
    )
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 20) == b"READY\n"
        await _start_poller(env, inbox_id)
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"STUCK\n"
        assert await env.texts(inbox_id) == ["before 0", "before 1", "before 2"]
    finally:
        proc.kill()  # no shutdown, no goodbye to the server: only the heartbeat timeout tells
        await proc.wait()
    tg.inject_message(CHAT, "after")
    async with env.worker():
        await wait_until(lambda: _cursor_is(env, inbox_id, str(tg.update_id_base + 5)), timeout=20)
    assert await env.texts(inbox_id) == ["before 0", "before 1", "before 2", "after"]


class SkipsPoisonSooner(ChannelActivities):
    poison_after_attempts = 2


async def test_an_update_the_database_refuses_is_skipped_after_retries(channels: Channels, caplog):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    tg.inject_message(2002, "poison")
    tg.inject_message(CHAT, "fine")
    async with refusing_text(env.factory, "poison"), env.worker(env.activities(SkipsPoisonSooner)):
        await _start_poller(env, inbox_id)
        await wait_until(lambda: _cursor_is(env, inbox_id, str(tg.update_id_base + 3)), timeout=10)
    assert await env.texts(inbox_id) == ["fine"]
    assert "cannot be stored" in caplog.text
    # the first attempt did not skip it: the batch was polled again before giving up on it
    assert [r.params.get("offset") for r in tg.requests("getUpdates")][:2] == [None, None]


async def test_a_profile_field_longer_than_its_column_is_cut_and_the_message_kept(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    tg.inject_message(2003, "my username is long", username="u" * 250)
    async with env.worker():
        await _start_poller(env, inbox_id)
        await wait_until(lambda: _cursor_is(env, inbox_id, str(tg.update_id_base + 2)), timeout=10)
    assert await env.texts(inbox_id) == ["my username is long"]
    async with env.factory() as db:
        assert await db.scalar(select(ContactIdentity.username)) == "u" * 200


async def test_a_refused_token_is_shown_on_the_inbox_and_polling_keeps_trying(channels: Channels, caplog):
    env = channels
    inbox_id = await env.inbox(ChannelKind.TELEGRAM, token="999:revoked-token")
    async with env.worker():
        await _start_poller(env, inbox_id)
        await wait_until(lambda: _error_is(env, inbox_id, "polling failed: Unauthorized"), timeout=10)
        desc = await env.client.get_workflow_handle(poller_workflow_id(inbox_id)).describe()
        assert desc.status.name == "RUNNING"  # retried (every minute), not given up
    assert "revoked-token" not in caplog.text  # the token never reaches a log


async def _error_is(env: Channels, inbox_id: int, error: str | None) -> bool:
    return (await env.load(inbox_id)).webhook_error == error


@asynccontextmanager
async def raising_on_text(factory, text: str) -> AsyncIterator[None]:
    """Storing a message with this text raises an error no one planned for (a trigger's own
    SQLSTATE P0001: neither bad data nor the database being away)."""
    async with factory() as db, db.begin():
        await db.execute(
            sql(
                "CREATE FUNCTION test_unexpected() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'something nobody expected'; END $$"
            )
        )
        await db.execute(
            sql(
                "CREATE TRIGGER test_unexpected BEFORE INSERT ON messages FOR EACH ROW "
                f"WHEN (NEW.text = '{text}') EXECUTE FUNCTION test_unexpected()"
            )
        )
    try:
        yield
    finally:
        async with factory() as db, db.begin():
            await db.execute(sql("DROP TRIGGER test_unexpected ON messages"))
            await db.execute(sql("DROP FUNCTION test_unexpected()"))


async def _poll_outcomes(env: Channels, inbox_id: int) -> list[PollOutcome]:
    history = await env.client.get_workflow_handle(poller_workflow_id(inbox_id)).fetch_history()
    outcomes = []
    for event in history.events:
        if event.HasField("activity_task_completed_event_attributes"):
            payloads = event.activity_task_completed_event_attributes.result.payloads
            outcomes += await env.client.data_converter.decode(payloads, [PollOutcome])
    return outcomes


async def test_an_update_whose_ingest_keeps_failing_unexpectedly_is_skipped_and_counted(channels: Channels, caplog):
    env, tg = channels, channels.telegram
    since = time.monotonic()
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    tg.inject_message(2004, "poison")
    tg.inject_message(CHAT, "fine")
    async with raising_on_text(env.factory, "poison"), env.worker(env.activities(SkipsPoisonSooner)):
        await _start_poller(env, inbox_id)
        await wait_until(lambda: _cursor_is(env, inbox_id, str(tg.update_id_base + 3)), timeout=15)
        outcomes = await _poll_outcomes(env, inbox_id)
    assert await env.texts(inbox_id) == ["fine"]
    assert "skipping update" in caplog.text and "something nobody expected" in caplog.text
    assert [(o.updates, o.skipped) for o in outcomes][:1] == [(2, 1)]
    # tried again before giving up on it: the batch was polled twice from the same cursor
    assert [r.params.get("offset") for r in _polls(tg, since)][:2] == [None, None]


def _polls(tg, since: float) -> list:
    """getUpdates that arrived since `since` (a time.monotonic() taken after the fake was reset):
    not a poll an earlier test's worker still had on the wire."""
    return [r for r in tg.requests("getUpdates") if r.at >= since]


async def test_empty_answers_that_come_at_once_are_paced_and_polls_with_updates_are_not(channels: Channels):
    """A server (or a proxy before it) that answers an empty long poll at once made the loop
    spin at ~20 polls/s; empty answers are now at least a second apart."""
    env, tg = channels, channels.telegram
    since = time.monotonic()
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    tg.max_long_poll = 0  # answers [] at once whatever the timeout asked
    tg.updates_per_poll = 1  # three updates: three polls in a row that return one each
    for n in range(3):
        tg.inject_message(CHAT, f"queued {n}")
    async with env.worker():
        env.track(
            await env.client.start_workflow(
                POLLER_WORKFLOW,
                PollerInput(inbox_id=inbox_id, poll_timeout=25, heartbeat_timeout_seconds=5),
                id=poller_workflow_id(inbox_id),
                task_queue=env.task_queue,
            )
        )
        await wait_until(lambda: len(_polls(tg, since)) >= 6, timeout=20)
    times = [r.at for r in _polls(tg, since)][:6]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert await env.texts(inbox_id) == ["queued 0", "queued 1", "queued 2"]
    # polls 1-3 returned an update each: the next poll follows at once
    assert all(gap < 1.0 for gap in gaps[:3]), gaps
    # polls 4 and 5 returned nothing at once: the next waits for the floor
    assert all(gap >= 0.95 for gap in gaps[3:]), gaps


async def test_a_polled_button_press_is_answered(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    tg.inject_update(tg.make_callback(CHAT, "size:xl", label="XL"))
    async with env.worker():
        await _start_poller(env, inbox_id)
        await wait_until(lambda: [r.status for r in tg.requests("answerCallbackQuery")] == [200], timeout=15)
