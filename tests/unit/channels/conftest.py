"""Fakes and adapters pointed at them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from tests.unit.channels.support import SSL_CONTEXT


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, verify=SSL_CONTEXT) as client:
        yield client


@pytest.fixture
def telegram(http: httpx.AsyncClient, fake_telegram: FakeTelegram) -> TelegramAdapter:
    return TelegramAdapter(http, fake_telegram.base_url)


@pytest.fixture
def max_adapter(http: httpx.AsyncClient, fake_max: FakeMax) -> MaxAdapter:
    adapter = MaxAdapter(http, fake_max.base_url)
    adapter.not_ready_delays = (0.01, 0.02, 0.04)  # the real schedule waits seconds
    return adapter


@pytest.fixture
def tg_creds(fake_telegram: FakeTelegram) -> dict[str, str]:
    return {"token": fake_telegram.token, "webhook_secret": "tg-secret_123"}


@pytest.fixture
def max_creds(fake_max: FakeMax) -> dict[str, str]:
    return {"token": fake_max.token, "webhook_secret": "max-secret_123"}
