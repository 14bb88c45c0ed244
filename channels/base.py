"""What a channel adapter is: a base and the capabilities a provider may have (one adapter per ChannelKind)."""

from __future__ import annotations

import hmac
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, TypedDict

import httpx

from channels.plan import Step, plan_steps
from channels.transport import mask_tokens_in_httpx_logs
from domain.contracts import (
    DeliveryError,
    InboundEvent,
    OutboundAttachment,
    OutboundMessage,
    PermanentError,
    ProviderFileRef,
    SendResult,
)
from domain.enums import ChannelKind

# An inbox's decrypted credentials: {"token": ..., "webhook_secret": ...}.
Credentials = Mapping[str, str]
Cursor = int | str | None


class MalformedUpdate(ValueError):
    """The payload is not an update of this provider (not an object, required ids missing)."""


class WebhookStatus(TypedDict):
    url: str | None  # where the provider delivers now (MAX: the URL asked about, if subscribed)
    active: bool  # the URL asked about (or, without one, any URL) is registered
    pending_update_count: int | None
    last_error_message: str | None
    last_error_at: datetime | None
    raw: dict[str, Any]


class ChannelAdapter:
    """What every adapter has: its channel and the HTTP client. The capabilities below add what a
    provider supports; an adapter class composes those it has, and code that needs one checks
    for it (`isinstance(adapter, Polling)`) rather than calling a stub."""

    kind: ClassVar[ChannelKind]
    # the Settings field holding this provider's API base; None for a channel without one
    base_setting: ClassVar[str | None] = None

    def __init__(self, http: httpx.AsyncClient, api_base: str = "") -> None:
        self.http = http
        self.api_base = api_base.rstrip("/")
        mask_tokens_in_httpx_logs()

    @staticmethod
    def token(credentials: Credentials) -> str:
        token = credentials.get("token")
        if not token:
            raise PermanentError("inbox has no bot token configured")
        return token


class BotProfile(TypedDict):
    """A bot as its provider describes it."""

    id: str
    name: str
    username: str | None


class Identity(ChannelAdapter, ABC):
    """Who the bot behind a token is (Telegram getMe, MAX GET /me): a token is checked with the
    provider, and the bot named, before an inbox keeps it. A bad token raises PermanentError
    (HTTP 401 from the provider)."""

    @abstractmethod
    async def bot_profile(self, credentials: Credentials) -> BotProfile: ...


class Sending(ChannelAdapter, ABC):
    """Text, attachments, the typing indicator and button answers to the customer."""

    text_limit: ClassVar[int]
    caption_limit: ClassVar[int]
    # The largest file the provider takes from a bot; None: no provider in between (our own store).
    file_max_bytes: ClassVar[int | None] = None
    # The provider's limits in messages/s, held across every worker (0: none). Class defaults;
    # build_adapters applies the operator's RATE_OVERRIDES to the instance.
    rate_per_bot: float = 0.0
    rate_per_chat: float = 0.0

    async def send(
        self,
        credentials: Credentials,
        msg: OutboundMessage,
        files: Mapping[int, bytes] | None = None,
        *,
        skip_parts: int = 0,
        before_step: Callable[[], Awaitable[None]] | None = None,
    ) -> SendResult:
        """Send text parts and attachments in order. On failure the raised DeliveryError
        carries `sent_message_ids` of this call's delivered parts; resume with `skip_parts`.
        The result lists the ids of the parts sent by this call only.

        `before_step` is awaited before each provider message: the caller's rate slot, since the
        provider counts every part. A DeliveryError it raises stops the send as a provider's would."""
        token = self.token(credentials)
        steps = plan_steps(msg, text_limit=self.text_limit, caption_limit=self.caption_limit)
        ids: list[str] = []
        for step in steps[skip_parts:]:
            try:
                if before_step is not None:
                    await before_step()
                content = _content(step.attachment, files) if step.attachment else None
                ids.append(await self._send_step(token, msg, step, content))
            except DeliveryError as err:
                err.sent_message_ids = tuple(ids)
                raise
        return SendResult(provider_message_ids=ids)

    @abstractmethod
    async def _send_step(self, token: str, msg: OutboundMessage, step: Step, content: bytes | None) -> str:
        """Deliver one planned provider message; return its provider message id."""

    @abstractmethod
    async def send_typing(self, credentials: Credentials, chat_id: str) -> None: ...

    @abstractmethod
    async def answer_callback(self, credentials: Credentials, callback_id: str, text: str | None = None) -> None:
        """Acknowledge a button press so the client stops its spinner."""


class Inbound(ChannelAdapter, ABC):
    """Provider updates become InboundEvents, however they arrive (webhook or long polling)."""

    @abstractmethod
    def parse_update(self, inbox_id: int, payload: Any, *, received_at: datetime | None = None) -> list[InboundEvent]:
        """Provider update -> events; [] for kinds we ignore. `received_at` stamps events whose
        payload carries no time (Telegram callback queries); it defaults to now."""


class Webhook(Inbound, ABC):
    """The provider posts updates to our URL, signed with the inbox's secret."""

    secret_header: ClassVar[str]

    def verify_webhook(self, headers: Mapping[str, str], credentials: Credentials) -> bool:
        """Constant-time check of the provider's secret header; False when none is configured.

        While a secret is being rotated the previous one is accepted too, until
        `previous_webhook_secret_until` (ISO time): updates the provider signed before the
        switch, and its retries of them, still get in."""
        wanted = self.secret_header.lower()
        got = next((v for k, v in headers.items() if k.lower() == wanted), None)
        if got is None:
            return False
        accepted = [credentials.get("webhook_secret")]
        until = credentials.get("previous_webhook_secret_until")
        if until and datetime.fromisoformat(until) > datetime.now(UTC):
            accepted.append(credentials.get("previous_webhook_secret"))
        # every candidate is compared, so the time taken does not tell which one matched
        matches = [hmac.compare_digest(got.encode(), secret.encode()) for secret in accepted if secret]
        return any(matches)

    @abstractmethod
    async def register_webhook(self, credentials: Credentials, url: str, secret: str) -> None: ...

    @abstractmethod
    async def unregister_webhook(self, credentials: Credentials, url: str | None = None) -> None: ...

    @abstractmethod
    async def webhook_status(self, credentials: Credentials, url: str | None = None) -> WebhookStatus: ...


class Polling(Inbound, ABC):
    """We fetch updates with a long poll; a cursor acknowledges what was fetched."""

    @abstractmethod
    def update_cursor(self, payload: Any) -> int | None:
        """The polling position a single update stands at, when the provider numbers updates."""

    @abstractmethod
    async def poll(self, credentials: Credentials, cursor: Cursor, timeout: int) -> tuple[list[dict[str, Any]], Cursor]:
        """Long-poll raw updates; the returned cursor acknowledges them on the next call."""


class Files(ChannelAdapter, ABC):
    """Downloading what a customer sent from the provider's file host."""

    @abstractmethod
    async def fetch_file(
        self, credentials: Credentials, ref: ProviderFileRef, max_bytes: int
    ) -> tuple[bytes, str | None, str | None]:
        """(content, mime type, file name); PermanentError when over `max_bytes`."""


def _content(att: OutboundAttachment, files: Mapping[int, bytes] | None) -> bytes:
    content = (files or {}).get(att.attachment_id)
    if content is None:
        raise PermanentError(f"no content given for attachment {att.attachment_id}")
    return content
