"""The operator is typing: show it in the customer's messenger (or website widget), cheaply.

Keystrokes arrive far more often than a provider wants to hear about them. Telegram shows
`typing` for about 5 s after one sendChatAction, so at most one call per conversation every
~4 s keeps the indicator on while the operator types. Best effort: a failure is logged and
swallowed, a slow provider is cut off, and there is never a Temporal operation per keystroke.
The throttle is per process; with N api replicas a provider hears at most N calls per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import Sending
from domain.contracts import DeliveryError
from domain.enums import ChannelKind, ConversationStatus
from domain.events import OperatorTyping
from infra.event_log import load_conversation_ids, publish
from infra.models import ContactChat, Conversation, Inbox
from infra.security import CredentialBox

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 4.0  # Telegram's indicator lasts ~5 s
DEFAULT_TIMEOUT = 3.0


@dataclass(frozen=True)
class TypingTarget:
    channel: str
    credentials: Mapping[str, str]
    chat_id: str

    def __repr__(self) -> str:  # never show credentials, even in a traceback
        return f"TypingTarget(channel={self.channel!r}, chat_id={self.chat_id!r})"


class TypingThrottle:
    """One per process (the api's app.state); `adapters` maps channel -> ChannelAdapter."""

    def __init__(
        self,
        adapters: Mapping[Any, Any],
        *,
        interval: float = DEFAULT_INTERVAL,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 10_000,
    ) -> None:
        self._adapters = adapters
        self._interval = interval
        self._timeout = timeout
        self._clock = clock
        self._max_entries = max_entries
        self._last: dict[Any, float] = {}

    def _claim(self, key: Any) -> bool:
        """True for the first call per key per interval. Synchronous: no await between the
        check and the stamp, so a burst of concurrent keystrokes claims exactly once."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval:
            return False
        if len(self._last) >= self._max_entries:
            self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
        self._last[key] = now
        return True

    async def send(self, key: Any, target: TypingTarget) -> bool:
        """Send the indicator for `key` (a conversation id) unless one went out recently.
        True when a request was made and succeeded."""
        if not self._claim(key):
            return False
        return await self._send(key, target)

    async def conversation_typing(
        self,
        factory: async_sessionmaker[AsyncSession],
        box: CredentialBox,
        conversation_id: int,
        operator_id: int | None = None,
    ) -> bool:
        """The api's entry point: throttle first, so the database is asked at most once per
        interval per conversation. The caller has already checked the operator's rights.
        A website visitor hears of it through the realtime hub (the widget's stream or poll)."""
        if not self._claim(conversation_id):
            return False
        try:
            target = await typing_target(factory, box, conversation_id)
            if target is not None and target.channel == ChannelKind.WIDGET and operator_id is not None:
                await _tell_visitor(factory, conversation_id, operator_id)
                return True
        except Exception as exc:  # noqa: BLE001 - best effort, never an error for the operator
            log.warning("typing indicator for conversation %s failed (%s)", conversation_id, type(exc).__name__)
            return False
        if target is None:
            return False
        return await self._send(conversation_id, target)

    async def _send(self, key: Any, target: TypingTarget) -> bool:
        adapter = self._adapters.get(target.channel)
        if not isinstance(adapter, Sending):
            return False  # no adapter sends it (the widget's visitor hears of it from the hub)
        try:
            await asyncio.wait_for(adapter.send_typing(target.credentials, target.chat_id), self._timeout)
            return True
        except DeliveryError as exc:
            # the reason is the provider's description: no token in it
            log.info("typing indicator for %s not shown: %s", key, exc.reason)
        except TimeoutError:
            log.info("typing indicator for %s: the provider did not answer within %s s", key, self._timeout)
        except Exception as exc:  # noqa: BLE001 - best effort
            log.warning("typing indicator for %s failed (%s)", key, type(exc).__name__)
        return False


async def _tell_visitor(factory: async_sessionmaker[AsyncSession], conversation_id: int, operator_id: int) -> None:
    async with factory() as db, db.begin():
        ids = await load_conversation_ids(db, conversation_id)
        await publish(db, OperatorTyping.of(ids, operator_id=operator_id, for_visitor=True))


async def typing_target(
    factory: async_sessionmaker[AsyncSession], box: CredentialBox, conversation_id: int
) -> TypingTarget | None:
    """Where the indicator goes, or None when there is no point (closed, contact unreachable)."""
    async with factory() as db:
        row = (
            await db.execute(
                select(
                    Inbox.channel,
                    Inbox.credentials_encrypted,
                    ContactChat.provider_chat_id,
                    ContactChat.reachable,
                    Conversation.status,
                )
                .join(Inbox, Inbox.id == Conversation.inbox_id)
                .join(
                    ContactChat,
                    (ContactChat.identity_id == Conversation.identity_id)
                    & (ContactChat.inbox_id == Conversation.inbox_id),
                )
                .where(Conversation.id == conversation_id, Inbox.is_active)
            )
        ).first()
    if row is None or not row.reachable or row.status == ConversationStatus.CLOSED:
        return None
    return TypingTarget(row.channel.value, box.open(row.credentials_encrypted), row.provider_chat_id)
