"""One registry line per channel."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
from pydantic import ValidationError

from channels.base import Files, Polling, Sending, Webhook
from channels.max import MaxAdapter
from channels.registry import ADAPTERS, build_adapters, supporting
from channels.telegram import TelegramAdapter
from domain.enums import ChannelKind
from infra.settings import Settings
from tests.unit.channels.support import SSL_CONTEXT


async def test_build_adapters_reads_each_base_from_settings() -> None:
    settings = SimpleNamespace(telegram_api_base="http://tg.local", max_api_base="https://platform-api2.max.ru/")
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as http:
        adapters = build_adapters(http, settings)
    assert (
        set(adapters) == set(ADAPTERS) == {ChannelKind.TELEGRAM, ChannelKind.MAX, ChannelKind.API, ChannelKind.WIDGET}
    )
    assert isinstance(adapters[ChannelKind.TELEGRAM], TelegramAdapter)
    assert isinstance(adapters[ChannelKind.MAX], MaxAdapter)
    assert adapters[ChannelKind.TELEGRAM].api_base == "http://tg.local"
    assert adapters[ChannelKind.MAX].api_base == "https://platform-api2.max.ru"
    assert all(adapter.http is http for adapter in adapters.values())


def test_every_adapter_declares_its_channel_and_what_it_can_do() -> None:
    for kind, cls in ADAPTERS.items():
        assert cls.kind == kind
        if issubclass(cls, Sending):
            assert cls.text_limit > 0 and cls.caption_limit > 0 and cls.rate_per_bot >= 0 and cls.rate_per_chat >= 0
        if issubclass(cls, Webhook):
            assert cls.secret_header
    assert supporting(Webhook, Polling) == [ChannelKind.TELEGRAM, ChannelKind.MAX]
    assert supporting(Sending) == [ChannelKind.TELEGRAM, ChannelKind.MAX, ChannelKind.API, ChannelKind.WIDGET]


async def test_rate_defaults_are_the_adapters_and_the_operator_overrides_them() -> None:
    settings = Settings(_env_file=None, rate_overrides="telegram.per_bot=25, max.per_chat=0")
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as http:
        defaults = build_adapters(http, Settings(_env_file=None))
        overridden = build_adapters(http, settings)
    tg, mx = ChannelKind.TELEGRAM, ChannelKind.MAX
    assert [(a.rate_per_bot, a.rate_per_chat) for a in (defaults[tg], defaults[mx])] == [(30, 1), (30, 2)]
    assert [(a.rate_per_bot, a.rate_per_chat) for a in (overridden[tg], overridden[mx])] == [(25, 1), (30, 0)]
    assert TelegramAdapter.rate_per_bot == 30  # the class default is untouched


@pytest.mark.parametrize(
    "bad", ["telegram.per_bot", "tg.per_bot=5", "telegram.burst=5", "max.per_chat=-1", "max.per_chat=lots"]
)
def test_a_malformed_rate_override_is_refused_with_its_name(bad: str) -> None:
    with pytest.raises(ValidationError, match="RATE_OVERRIDES"):
        Settings(_env_file=None, rate_overrides=bad)


async def test_a_send_only_channel_needs_no_stubs() -> None:
    class Pigeon(Sending):
        kind = ChannelKind.VK
        text_limit = caption_limit = 100

        async def _send_step(self, token, msg, step, content) -> str:
            return "1"

        async def send_typing(self, credentials, chat_id) -> None: ...

        async def answer_callback(self, credentials, callback_id, text=None) -> None: ...

    async with httpx.AsyncClient() as http:
        adapter = Pigeon(http)  # no API base: nothing to configure
    assert not isinstance(adapter, Webhook | Polling | Files)
    assert not hasattr(adapter, "poll") and not hasattr(adapter, "register_webhook")
