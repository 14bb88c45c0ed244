"""Which adapter serves which channel. A new channel is one package plus one line in ADAPTERS."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from channels.base import ChannelAdapter
from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from domain.enums import ChannelKind

ADAPTERS: Mapping[ChannelKind, type[ChannelAdapter]] = {
    ChannelKind.TELEGRAM: TelegramAdapter,
    ChannelKind.MAX: MaxAdapter,
}


def build_adapters(http: httpx.AsyncClient, settings: object) -> dict[ChannelKind, ChannelAdapter]:
    """One adapter per registered channel, each reading its API base from `settings`
    (an object with the `*_api_base` attributes named by each adapter's `base_setting`)."""
    return {kind: cls(http, getattr(settings, cls.base_setting)) for kind, cls in ADAPTERS.items()}
