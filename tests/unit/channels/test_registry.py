"""One registry line per channel."""

from __future__ import annotations

from types import SimpleNamespace

import httpx

from channels.max import MaxAdapter
from channels.registry import ADAPTERS, build_adapters
from channels.telegram import TelegramAdapter
from domain.enums import ChannelKind
from tests.unit.channels.support import SSL_CONTEXT


async def test_build_adapters_reads_each_base_from_settings() -> None:
    settings = SimpleNamespace(telegram_api_base="http://tg.local", max_api_base="https://platform-api2.max.ru/")
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as http:
        adapters = build_adapters(http, settings)
    assert set(adapters) == set(ADAPTERS) == {ChannelKind.TELEGRAM, ChannelKind.MAX}
    assert isinstance(adapters[ChannelKind.TELEGRAM], TelegramAdapter)
    assert isinstance(adapters[ChannelKind.MAX], MaxAdapter)
    assert adapters[ChannelKind.TELEGRAM].api_base == "http://tg.local"
    assert adapters[ChannelKind.MAX].api_base == "https://platform-api2.max.ru"
    assert all(adapter.http is http for adapter in adapters.values())


def test_every_adapter_declares_its_channel() -> None:
    for kind, cls in ADAPTERS.items():
        assert cls.kind == kind
        assert cls.text_limit > 0 and cls.caption_limit > 0 and cls.secret_header
