"""TypingThrottle: one sendChatAction per conversation per interval, best effort."""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
import pytest

from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from domain.enums import ChannelKind
from services.typing_indicator import TypingTarget, TypingThrottle
from tests.fakes import Fault
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


@pytest.fixture
def adapters(http, fake_telegram: FakeTelegram, fake_max: FakeMax):
    return {
        ChannelKind.TELEGRAM: TelegramAdapter(http, fake_telegram.base_url),
        ChannelKind.MAX: MaxAdapter(http, fake_max.base_url),
    }


def tg_target(fake: FakeTelegram, chat: int = 1001) -> TypingTarget:
    return TypingTarget("telegram", {"token": fake.token}, str(chat))


async def test_a_burst_of_keystrokes_sends_one_chat_action(adapters, fake_telegram: FakeTelegram):
    clock = Clock()
    throttle = TypingThrottle(adapters, clock=clock)
    results = await asyncio.gather(*(throttle.send(7, tg_target(fake_telegram)) for _ in range(25)))
    assert results.count(True) == 1
    clock.now += 3.9  # Telegram still shows the indicator
    assert not await throttle.send(7, tg_target(fake_telegram))
    [action] = fake_telegram.requests("sendChatAction")
    assert action.params == {"chat_id": "1001", "action": "typing"}

    clock.now += 0.2  # 4.1 s after the first: keep it on
    assert await throttle.send(7, tg_target(fake_telegram))
    assert await throttle.send(8, tg_target(fake_telegram, 2002))  # another conversation is its own
    assert [r.chat_id for r in fake_telegram.requests("sendChatAction")] == ["1001", "1001", "2002"]


async def test_errors_and_slow_providers_are_swallowed(adapters, fake_telegram: FakeTelegram, caplog):
    clock = Clock()
    throttle = TypingThrottle(adapters, clock=clock, timeout=0.3)
    fake_telegram.fail_next(Fault.BLOCKED, method="sendChatAction")
    with caplog.at_level(logging.INFO, logger="services.typing_indicator"):
        assert await throttle.send(1, tg_target(fake_telegram)) is False
    assert fake_telegram.token not in caplog.text and "blocked" in caplog.text
    assert not await throttle.send(1, tg_target(fake_telegram))  # a failing provider is not hammered

    fake_telegram.fail_next(Fault.SLOW, method="sendChatAction", delay=2)
    began = time.monotonic()
    assert await throttle.send(2, tg_target(fake_telegram)) is False
    assert time.monotonic() - began < 1.5  # the operator's request is not held up

    unknown = TypingTarget("widget", {}, "x")  # no adapter: the widget shows typing over SSE
    assert await throttle.send(3, unknown) is False
    assert repr(tg_target(fake_telegram)).count(fake_telegram.token) == 0


async def test_max_typing_on(adapters, fake_max: FakeMax):
    throttle = TypingThrottle(adapters, clock=Clock())
    target = TypingTarget("max", {"token": fake_max.token}, "5005")
    assert [await throttle.send(9, target) for _ in range(5)] == [True, False, False, False, False]
    [action] = fake_max.requests("chats")
    assert action.chat_id == "5005" and action.params == {"action": "typing_on"}


def test_memory_stays_bounded():
    clock = Clock()
    throttle = TypingThrottle({}, clock=clock, max_entries=100)
    for key in range(100):
        assert throttle._claim(key)
    clock.now += 5
    assert throttle._claim("new") and len(throttle._last) == 1  # stale entries were dropped
