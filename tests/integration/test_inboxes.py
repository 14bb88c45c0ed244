"""Creating and connecting inboxes (webhook with an HTTPS public URL, long polling otherwise)
and the periodic webhook check, against the fake providers and the dev server."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from domain.contracts import PermanentError
from domain.enums import ChannelKind
from domain.ids import poller_workflow_id
from domain.webhook_check import WEBHOOK_CHECK_WORKFLOW, WebhookCheckInput
from services.inboxes import connect_inbox, create_inbox
from tests.fakes import Fault
from tests.integration.channel_support import (  # noqa: F401
    Channels,
    channels,
)
from tests.integration.conftest import wait_until

PUBLIC = "https://switchboard.example.org"


async def _connect(env: Channels, inbox_id: int, public_url: str | None):
    connection = await connect_inbox(
        env.factory, env.adapters, env.box, env.starter, inbox_id, public_url, poll_timeout=1
    )
    if connection.poller_workflow_id:
        env.track(env.client.get_workflow_handle(connection.poller_workflow_id))
    return connection


async def test_create_inbox_seals_the_token_and_a_fresh_secret(channels: Channels):
    env = channels
    async with env.factory() as db, db.begin():
        a = await create_inbox(db, env.box, name="Shop bot", channel="telegram", token="123:abc-SECRET")
        b = await create_inbox(db, env.box, name="Shop MAX", channel=ChannelKind.MAX, token="max-SECRET")
        with pytest.raises(ValueError):
            await create_inbox(db, env.box, name="No token", channel="telegram", token="  ")
    creds_a, creds_b = env.box.open(a.credentials_encrypted), env.box.open(b.credentials_encrypted)
    assert creds_a["token"] == "123:abc-SECRET" and b"SECRET" not in a.credentials_encrypted
    for secret in (creds_a["webhook_secret"], creds_b["webhook_secret"]):
        # within Telegram's 1-256 and MAX's 5-256 characters of [A-Za-z0-9_-]
        assert re.fullmatch(r"[A-Za-z0-9_-]{5,256}", secret)
    assert creds_a["webhook_secret"] != creds_b["webhook_secret"]
    assert (a.webhook_url, a.poll_cursor, a.is_active) == (None, None, True)


async def test_telegram_switches_between_webhook_and_polling(channels: Channels):
    env, tg = channels, channels.telegram
    inbox_id = await env.inbox(ChannelKind.TELEGRAM)
    secret = env.credentials(await env.load(inbox_id))["webhook_secret"]

    hooked = await _connect(env, inbox_id, PUBLIC + "/")
    url = f"{PUBLIC}/webhooks/telegram/{inbox_id}"
    assert (hooked.mode, hooked.webhook_url) == ("webhook", url)
    assert tg.webhook["url"] == url and tg.webhook["secret_token"] == secret
    assert (await env.load(inbox_id)).webhook_url == url
    with pytest.raises(RPCError):  # no poller in webhook mode
        await env.client.get_workflow_handle(poller_workflow_id(inbox_id)).describe()

    async with env.worker():
        polled = await _connect(env, inbox_id, "http://localhost:8000")  # not reachable: poll
        assert polled.mode == "polling" and tg.webhook is None
        methods = [r.method for r in tg.requests()]
        assert "deleteWebhook" in methods[methods.index("setWebhook") :]
        assert "getUpdates" not in methods[: methods.index("deleteWebhook")]  # never polled with a webhook set
        assert (await env.load(inbox_id)).webhook_url is None
        tg.inject_message(1001, "hello by polling")
        await wait_until(lambda: _has_texts(env, inbox_id, ["hello by polling"]), timeout=10)
        assert (await _connect(env, inbox_id, None)).mode == "polling"  # again: the same poller

        back = await _connect(env, inbox_id, PUBLIC)
        assert back.mode == "webhook" and tg.webhook["secret_token"] == secret
        handle = env.client.get_workflow_handle(poller_workflow_id(inbox_id))
        assert await asyncio.wait_for(handle.result(), 10) == "inbox switched to webhook mode"


async def _has_texts(env: Channels, inbox_id: int, texts: list[str]) -> bool:
    return await env.texts(inbox_id) == texts


async def test_max_webhook_is_subscribed_with_the_secret_and_a_failure_is_kept(channels: Channels):
    env, mx = channels, channels.max
    inbox_id = await env.inbox(ChannelKind.MAX)
    secret = env.credentials(await env.load(inbox_id))["webhook_secret"]
    await _connect(env, inbox_id, PUBLIC)
    [sub] = mx.subscriptions
    assert (sub["url"], sub["secret"]) == (f"{PUBLIC}/webhooks/max/{inbox_id}", secret)

    mx.fail_next(Fault.UNAVAILABLE, method="subscriptions")
    with pytest.raises(Exception):  # noqa: B017 - the provider's error reaches the admin
        await _connect(env, inbox_id, "https://other.example.org")
    assert "registering the webhook failed" in (await env.load(inbox_id)).webhook_error


async def test_webhook_check_resubscribes_max_and_keeps_telegrams_error(channels: Channels):
    env, tg, mx = channels, channels.telegram, channels.max
    max_inbox = await env.inbox(ChannelKind.MAX)
    tg_inbox = await env.inbox(ChannelKind.TELEGRAM)
    await _connect(env, max_inbox, PUBLIC)
    await _connect(env, tg_inbox, PUBLIC)
    max_url = f"{PUBLIC}/webhooks/max/{max_inbox}"
    mx.expire_subscription(max_url)  # 8 hours of failed deliveries
    tg.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway")
    before = datetime.now(UTC)

    async with env.worker():
        env.track(
            await env.client.start_workflow(
                WEBHOOK_CHECK_WORKFLOW,
                WebhookCheckInput(interval_seconds=0.3),
                id=f"webhook-check-{env.task_queue}",
                task_queue=env.task_queue,
            )
        )
        await wait_until(lambda: _checked_since(env, [max_inbox, tg_inbox], before), timeout=10)
        assert [s["url"] for s in mx.subscriptions] == [max_url]
        assert mx.subscriptions[0]["secret"] == env.credentials(await env.load(max_inbox))["webhook_secret"]
        assert (await env.load(tg_inbox)).webhook_error == "Wrong response from the webhook: 502 Bad Gateway"
        assert (await env.load(max_inbox)).webhook_error is None

        # Telegram delivers again (a fresh setWebhook clears its error): the next pass clears ours
        await env.adapters[ChannelKind.TELEGRAM].register_webhook(
            env.credentials(await env.load(tg_inbox)), f"{PUBLIC}/webhooks/telegram/{tg_inbox}", "x-secret"
        )
        await wait_until(lambda: _error_is(env, tg_inbox, None), timeout=10)
        desc = await env.client.get_workflow_handle(f"webhook-check-{env.task_queue}").describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING
    assert len(mx.subscriptions) == 1  # re-subscribed once, not on every pass


async def _checked_since(env: Channels, inbox_ids: list[int], since: datetime) -> bool:
    for inbox_id in inbox_ids:
        checked = (await env.load(inbox_id)).webhook_checked_at
        if checked is None or checked < since:
            return False
    return True


async def _error_is(env: Channels, inbox_id: int, error: str | None) -> bool:
    return (await env.load(inbox_id)).webhook_error == error


async def test_connect_refuses_what_cannot_be_connected(channels: Channels):
    env = channels
    with pytest.raises(LookupError):
        await _connect(env, 999_999_999, PUBLIC)
    inbox_id = await env.inbox(ChannelKind.TELEGRAM, token="999:revoked")
    with pytest.raises(PermanentError):  # Telegram answers 401 to an unknown token
        await _connect(env, inbox_id, PUBLIC)
    assert "Unauthorized" in (await env.load(inbox_id)).webhook_error
