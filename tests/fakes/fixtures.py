"""Pytest fixtures for the fakes. Use them from a conftest.py:

    from tests.fakes.fixtures import fake_max, fake_telegram, fake_max_server, fake_telegram_server  # noqa: F401

One server per session, knowing two bots of each provider (TOKEN and SECOND_TOKEN; `token` is
the first); each test gets it reset (no faults, records, chats or webhooks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes import max as fake_max_module, telegram as fake_telegram_module
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram


@pytest.fixture(scope="session")
def fake_telegram_server() -> Iterator[FakeTelegram]:
    tokens = (fake_telegram_module.TOKEN, fake_telegram_module.SECOND_TOKEN)
    with FakeTelegram(tokens, allow_http_webhooks=True) as server:
        yield server


@pytest.fixture(scope="session")
def fake_max_server() -> Iterator[FakeMax]:
    with FakeMax((fake_max_module.TOKEN, fake_max_module.SECOND_TOKEN), allow_http_webhooks=True) as server:
        yield server


@pytest.fixture
def fake_telegram(fake_telegram_server: FakeTelegram) -> FakeTelegram:
    fake_telegram_server.reset()
    return fake_telegram_server


@pytest.fixture
def fake_max(fake_max_server: FakeMax) -> FakeMax:
    fake_max_server.reset()
    return fake_max_server
