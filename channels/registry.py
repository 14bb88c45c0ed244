"""Which adapter serves which channel. A new channel is one package plus one line in ADAPTERS."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from channels.api import ApiChannelAdapter
from channels.base import ChannelAdapter, Sending
from channels.max import MaxAdapter
from channels.telegram import TelegramAdapter
from channels.widget import WidgetAdapter
from domain.enums import ChannelKind

ADAPTERS: Mapping[ChannelKind, type[ChannelAdapter]] = {
    ChannelKind.TELEGRAM: TelegramAdapter,
    ChannelKind.MAX: MaxAdapter,
    ChannelKind.API: ApiChannelAdapter,
    ChannelKind.WIDGET: WidgetAdapter,
}


def supporting(*capabilities: type[ChannelAdapter]) -> list[ChannelKind]:
    """The registered channels whose adapter has any of `capabilities` (channels.base)."""
    return [kind for kind, cls in ADAPTERS.items() if issubclass(cls, capabilities)]


def file_max_bytes(kind: ChannelKind) -> int | None:
    """The largest file the channel's provider takes from us (None: no provider limit)."""
    cls = ADAPTERS[kind]
    return cls.file_max_bytes if issubclass(cls, Sending) else None


def build_adapters(http: httpx.AsyncClient, settings: object) -> dict[ChannelKind, ChannelAdapter]:
    """One adapter per registered channel. `settings` (infra.settings.Settings or any object with
    its attributes) gives each its API base, named by the adapter's `base_setting`, and the
    operator's `rate_overrides` ({"telegram.per_bot": 25.0, ...}) over the adapters' defaults."""
    overrides: Mapping[str, float] = getattr(settings, "rate_overrides", {})
    adapters: dict[ChannelKind, ChannelAdapter] = {}
    for kind, cls in ADAPTERS.items():
        adapter = cls(http, getattr(settings, cls.base_setting) if cls.base_setting else "")
        if isinstance(adapter, Sending):
            adapter.rate_per_bot = overrides.get(f"{kind.value}.per_bot", adapter.rate_per_bot)
            adapter.rate_per_chat = overrides.get(f"{kind.value}.per_chat", adapter.rate_per_chat)
        adapters[kind] = adapter
    return adapters
