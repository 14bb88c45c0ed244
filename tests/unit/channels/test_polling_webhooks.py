"""Long polling cursors, webhook registration and status, webhook delivery end to end."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from channels.telegram.adapter import ALLOWED_UPDATES
from domain.contracts import InboundKind, PermanentError
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram

HOOK = "https://switchboard.example/webhooks/telegram/3"
MAX_HOOK = "https://switchboard.example/webhooks/max/4"


async def test_telegram_poll_offsets(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    for text in ("one", "two", "three"):
        fake_telegram.inject_message(1001, text)
    updates, cursor = await telegram.poll(tg_creds, None, timeout=0)
    assert [u["message"]["text"] for u in updates] == ["one", "two", "three"]
    base = fake_telegram.update_id_base
    assert cursor == base + 4  # last update_id + 1
    assert [telegram.update_cursor(u) for u in updates] == [base + i for i in (1, 2, 3)]
    again, same = await telegram.poll(tg_creds, cursor, timeout=0)
    assert (again, same) == ([], cursor)
    assert fake_telegram.pending_updates() == []  # the offset confirmed them
    fake_telegram.inject_message(1001, "four")
    [update], cursor = await telegram.poll(tg_creds, cursor, timeout=0)
    assert update["message"]["text"] == "four"
    [event] = telegram.parse_update(1, update)
    assert (event.kind, event.text, event.provider_chat_id) == (InboundKind.MESSAGE, "four", "1001")
    [request] = fake_telegram.requests("getUpdates")[-1:]
    assert request.params["allowed_updates"] == ALLOWED_UPDATES


async def test_telegram_long_poll_returns_when_an_update_arrives(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    async def later() -> None:
        await asyncio.sleep(0.15)
        fake_telegram.inject_message(1001, "late")

    started = time.monotonic()
    task = asyncio.create_task(later())
    updates, _ = await telegram.poll(tg_creds, None, timeout=5)
    await task
    assert [u["message"]["text"] for u in updates] == ["late"]
    assert 0.1 < time.monotonic() - started < 2


async def test_telegram_webhook_lifecycle(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    assert (await telegram.webhook_status(tg_creds, HOOK))["active"] is False
    await telegram.register_webhook(tg_creds, HOOK, "tg-secret_123")
    [request] = fake_telegram.requests("setWebhook")
    assert request.params == {"url": HOOK, "secret_token": "tg-secret_123", "allowed_updates": ALLOWED_UPDATES}
    status = await telegram.webhook_status(tg_creds, HOOK)
    assert (status["url"], status["active"], status["last_error_message"]) == (HOOK, True, None)
    assert (await telegram.webhook_status(tg_creds, "https://other.example/hook"))["active"] is False
    # getUpdates and a webhook exclude each other
    with pytest.raises(PermanentError) as info:
        await telegram.poll(tg_creds, None, timeout=0)
    assert info.value.provider_code == 409
    fake_telegram.set_webhook_error("Wrong response from the webhook: 502 Bad Gateway")
    status = await telegram.webhook_status(tg_creds, HOOK)
    assert status["last_error_message"] == "Wrong response from the webhook: 502 Bad Gateway"
    assert status["last_error_at"] is not None and status["last_error_at"].tzinfo is not None
    await telegram.unregister_webhook(tg_creds)
    status = await telegram.webhook_status(tg_creds)
    assert (status["url"], status["active"]) == (None, False)


async def test_telegram_refuses_bad_webhooks(telegram: TelegramAdapter, tg_creds: dict[str, str]) -> None:
    with pytest.raises(PermanentError, match="unallowed characters"):
        await telegram.register_webhook(tg_creds, HOOK, "bad secret!")


async def test_telegram_webhook_delivery_verify_and_parse(
    telegram: TelegramAdapter, fake_telegram: FakeTelegram, tg_creds: dict[str, str]
) -> None:
    received: list[int] = []
    failing = {"on": True}

    def inbox(request: httpx.Request) -> httpx.Response:
        if not telegram.verify_webhook(request.headers, tg_creds):
            return httpx.Response(401)
        if failing["on"]:
            return httpx.Response(500)
        for event in telegram.parse_update(3, json.loads(request.content)):
            received.append(int(event.provider_message_id.split(":")[1]))
        return httpx.Response(200)

    await telegram.register_webhook(tg_creds, HOOK, tg_creds["webhook_secret"])
    fake_telegram.inject_message(555, "a")
    fake_telegram.inject_message(555, "b")
    async with httpx.AsyncClient(transport=httpx.MockTransport(inbox)) as client:
        assert await fake_telegram.deliver_webhooks(client) == 0
        status = await telegram.webhook_status(tg_creds, HOOK)
        assert status["pending_update_count"] == 2
        assert status["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
        failing["on"] = False
        assert await fake_telegram.deliver_webhooks(client) == 2
    assert received == [1, 2]
    assert (await telegram.webhook_status(tg_creds, HOOK))["pending_update_count"] == 0


async def test_max_poll_markers(max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]) -> None:
    fake_max.inject_message(182, 1, "one")
    fake_max.inject_message(182, 1, "two")
    updates, marker = await max_adapter.poll(max_creds, None, timeout=0)
    assert [u["message"]["body"]["text"] for u in updates] == ["one", "two"]
    assert isinstance(marker, int)
    assert await max_adapter.poll(max_creds, marker, timeout=0) == ([], marker)
    fake_max.inject_message(182, 1, "three")
    [update], marker2 = await max_adapter.poll(max_creds, marker, timeout=0)
    assert update["message"]["body"]["text"] == "three"
    assert marker2 == marker + 1
    [request] = fake_max.requests("updates")[:1]
    assert "marker" not in request.params
    assert request.params["types"] == "message_created,message_edited,message_callback,bot_started,bot_stopped"
    [event] = max_adapter.parse_update(4, update)
    assert (event.text, event.provider_chat_id, event.provider_user_id) == ("three", "182", "1")


async def test_max_subscription_lifecycle(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    await max_adapter.register_webhook(max_creds, MAX_HOOK, "max-secret_123")
    [sub] = fake_max.subscriptions
    assert (sub["url"], sub["secret"]) == (MAX_HOOK, "max-secret_123")
    assert "bot_stopped" in sub["update_types"]
    status = await max_adapter.webhook_status(max_creds, MAX_HOOK)
    assert (status["url"], status["active"]) == (MAX_HOOK, True)
    with pytest.raises(PermanentError):  # long polling is off while subscribed
        await max_adapter.poll(max_creds, None, timeout=0)
    fake_max.expire_subscription(MAX_HOOK)  # 8 h of failed deliveries
    status = await max_adapter.webhook_status(max_creds, MAX_HOOK)
    assert (status["url"], status["active"]) == (None, False)
    await max_adapter.register_webhook(max_creds, MAX_HOOK, "max-secret_123")
    await max_adapter.unregister_webhook(max_creds)
    assert fake_max.subscriptions == []
    [delete] = fake_max.requests("subscriptions")[-1:]
    assert (delete.http_method, delete.params) == ("DELETE", {"url": MAX_HOOK})


async def test_max_refuses_a_short_secret(max_adapter: MaxAdapter, max_creds: dict[str, str]) -> None:
    with pytest.raises(PermanentError, match="secret"):
        await max_adapter.register_webhook(max_creds, MAX_HOOK, "abc")


async def test_max_webhook_delivery_carries_the_secret(
    max_adapter: MaxAdapter, fake_max: FakeMax, max_creds: dict[str, str]
) -> None:
    seen: list[bool] = []

    def inbox(request: httpx.Request) -> httpx.Response:
        seen.append(max_adapter.verify_webhook(request.headers, max_creds))
        return httpx.Response(200)

    await max_adapter.register_webhook(max_creds, MAX_HOOK, max_creds["webhook_secret"])
    fake_max.inject_message(182, 1, "hi")
    async with httpx.AsyncClient(transport=httpx.MockTransport(inbox)) as client:
        assert await fake_max.deliver_webhooks(client) == 1
    assert seen == [True]
    assert fake_max.pending_updates() == []
