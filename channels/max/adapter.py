"""MAX Bot API adapter (VK's messenger, shaped like the TamTam Bot API)."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from channels.base import BotProfile, Credentials, Cursor, Files, Identity, Polling, Sending, Webhook, WebhookStatus
from channels.max.errors import AttachmentNotReady, result_or_raise
from channels.max.parse import parse_update
from channels.plan import Step
from channels.transport import download, request, status_error
from domain.contracts import (
    InboundEvent,
    OutboundAttachment,
    OutboundMessage,
    PermanentError,
    ProviderFileRef,
    RetryableError,
)
from domain.enums import ChannelKind, MessageFormat

UPDATE_TYPES = ["message_created", "message_edited", "message_callback", "bot_started", "bot_stopped"]
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/heic"})
LONG_POLL_SLACK = 10  # seconds the HTTP timeout exceeds the long-poll timeout
_FILENAME = re.compile(r"""filename\*?=(?:UTF-8'')?"?([^";]+)"?""", re.IGNORECASE)


class MaxAdapter(Identity, Sending, Webhook, Polling, Files):
    kind = ChannelKind.MAX
    base_setting = "max_api_base"
    secret_header = "X-Max-Bot-Api-Secret"
    text_limit = 4000
    caption_limit = 4000  # a message with attachments takes the same text
    file_max_bytes = 4 * 1024**3  # a multipart upload to POST /uploads' URL
    # MAX Bot API: 30 requests/s per bot, at most 2 messages/s into one dialog (CHANNELS.md)
    rate_per_bot = 30.0
    rate_per_chat = 2.0
    # Waits before re-sending a message whose upload MAX is still processing.
    not_ready_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)

    def parse_update(self, inbox_id: int, payload: Any, *, received_at: datetime | None = None) -> list[InboundEvent]:
        return parse_update(inbox_id, payload)

    def update_cursor(self, payload: Any) -> int | None:
        return None  # MAX numbers batches with a marker, not single updates

    async def bot_profile(self, credentials: Credentials) -> BotProfile:
        me = await self._call(self.token(credentials), "GET", "/me")
        if not isinstance(me, dict) or "user_id" not in me:
            raise RetryableError("GET /me returned no bot")
        name = me.get("name") or " ".join(str(p) for p in (me.get("first_name"), me.get("last_name")) if p)
        return BotProfile(id=str(me["user_id"]), name=name or str(me["user_id"]), username=me.get("username"))

    async def _call(self, token: str, method: str, path: str, **kwargs: Any) -> Any:
        # The token goes bare in Authorization (no "Bearer"); MAX refuses it as a query parameter.
        resp = await request(self.http, method, f"{self.api_base}{path}", headers={"Authorization": token}, **kwargs)
        return result_or_raise(resp)

    async def _send_step(self, token: str, msg: OutboundMessage, step: Step, content: bytes | None) -> str:
        body: dict[str, Any] = {}
        if step.text:
            body["text"] = step.text
            if msg.format == MessageFormat.MARKDOWN:
                body["format"] = "html"
        if step.attachment is not None and content is not None:
            kind, upload_token = await self._upload(token, step.attachment, content)
            body["attachments"] = [{"type": kind, "payload": {"token": upload_token}}]
        result = await self._post_message(token, msg.provider_chat_id, body)
        mid = ((result.get("message") or {}).get("body") or {}).get("mid") if isinstance(result, dict) else None
        if not mid:
            # MAX said 200: the message exists, so retrying would duplicate it.
            raise PermanentError("MAX accepted the message but returned no mid")
        return str(mid)

    async def _post_message(self, token: str, chat_id: str, body: dict[str, Any]) -> Any:
        for delay in self.not_ready_delays:
            try:
                return await self._call(token, "POST", "/messages", params={"chat_id": chat_id}, json=body)
            except AttachmentNotReady:
                await asyncio.sleep(delay)
        return await self._call(token, "POST", "/messages", params={"chat_id": chat_id}, json=body)

    async def _upload(self, token: str, att: OutboundAttachment, content: bytes) -> tuple[str, str]:
        """POST /uploads -> upload URL -> token to attach; returns (attachment type, token)."""
        kind = _upload_type(att.mime_type)
        endpoint = await self._call(token, "POST", "/uploads", params={"type": kind})
        if not isinstance(endpoint, dict) or not endpoint.get("url"):
            raise RetryableError("POST /uploads returned no url")
        # The upload URL is on MAX's CDN: it gets the file, never our token.
        resp = await request(
            self.http, "POST", endpoint["url"], files={"data": (att.file_name, content, att.mime_type)}
        )
        if resp.status_code >= 300:
            raise status_error(resp, f"upload failed: HTTP {resp.status_code}")
        upload_token = endpoint.get("token") if kind in ("video", "audio") else _uploaded_token(kind, resp)
        if not upload_token:
            raise RetryableError(f"{kind} upload returned no token")
        return kind, upload_token

    async def send_typing(self, credentials: Credentials, chat_id: str) -> None:
        await self._call(self.token(credentials), "POST", f"/chats/{chat_id}/actions", json={"action": "typing_on"})

    async def answer_callback(self, credentials: Credentials, callback_id: str, text: str | None = None) -> None:
        body = {"notification": text} if text else {}
        await self._call(self.token(credentials), "POST", "/answers", params={"callback_id": callback_id}, json=body)

    async def poll(self, credentials: Credentials, cursor: Cursor, timeout: int) -> tuple[list[dict[str, Any]], Cursor]:
        params: dict[str, Any] = {"timeout": timeout, "limit": 100, "types": ",".join(UPDATE_TYPES)}
        if cursor is not None:
            params["marker"] = cursor  # acknowledges everything before it
        data = await self._call(
            self.token(credentials), "GET", "/updates", params=params, timeout=timeout + LONG_POLL_SLACK
        )
        updates = data.get("updates") if isinstance(data, dict) else None
        if not isinstance(updates, list):
            raise RetryableError("GET /updates returned no update list")
        marker = data.get("marker")
        return updates, (marker if marker is not None else cursor)

    async def register_webhook(self, credentials: Credentials, url: str, secret: str) -> None:
        body = {"url": url, "update_types": UPDATE_TYPES, "secret": secret}
        _require_success(await self._call(self.token(credentials), "POST", "/subscriptions", json=body))

    async def unregister_webhook(self, credentials: Credentials, url: str | None = None) -> None:
        token = self.token(credentials)
        urls = [url] if url else [s["url"] for s in await self._subscriptions(token)]
        for target in urls:
            _require_success(await self._call(token, "DELETE", "/subscriptions", params={"url": target}))

    async def webhook_status(self, credentials: Credentials, url: str | None = None) -> WebhookStatus:
        """MAX drops a subscription after 8 h of failed deliveries: `active` False means subscribe again."""
        token = self.token(credentials)
        subs = await self._subscriptions(token)
        urls = [s["url"] for s in subs]
        active = url in urls if url else bool(urls)
        return WebhookStatus(
            url=url if url and active else (urls[0] if urls else None),
            active=active,
            pending_update_count=None,
            last_error_message=None,
            last_error_at=None,
            raw={"subscriptions": subs},
        )

    async def _subscriptions(self, token: str) -> list[dict[str, Any]]:
        data = await self._call(token, "GET", "/subscriptions")
        subs = data.get("subscriptions") if isinstance(data, dict) else None
        return [s for s in subs or [] if isinstance(s, dict) and s.get("url")]

    async def fetch_file(
        self, credentials: Credentials, ref: ProviderFileRef, max_bytes: int
    ) -> tuple[bytes, str | None, str | None]:
        if ref.size is not None and ref.size > max_bytes:
            raise PermanentError(f"file is {ref.size} bytes, over the {max_bytes} limit", provider_code=413)
        if not ref.url:
            raise PermanentError(f"a {ref.kind} attachment has no URL to download")
        # Attachment URLs point at MAX's CDN and are signed: no Authorization header.
        content, headers = await download(self.http, ref.url, max_bytes)
        mime = ref.mime_type or headers.get("content-type", "").split(";")[0].strip() or None
        return content, mime, ref.file_name or _file_name(ref.url, headers)


def _upload_type(mime_type: str) -> str:
    if mime_type in IMAGE_TYPES:
        return "image"
    major = mime_type.split("/", 1)[0]
    return major if major in ("video", "audio") else "file"


def _uploaded_token(kind: str, resp: httpx.Response) -> str | None:
    """Images answer `{"photos": {"<id>": {"token": ...}}}`, files `{"token": ...}`."""
    try:
        body = resp.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    if kind == "image":
        photos = body.get("photos")
        first = next(iter(photos.values()), None) if isinstance(photos, dict) else None
        return first.get("token") if isinstance(first, dict) else None
    return body.get("token")


def _require_success(result: Any) -> None:
    if not isinstance(result, dict) or result.get("success") is not True:
        message = result.get("message") if isinstance(result, dict) else None
        raise PermanentError(f"MAX refused: {message or result!r}")


def _file_name(url: str, headers: httpx.Headers) -> str | None:
    if m := _FILENAME.search(headers.get("content-disposition", "")):
        return unquote(m.group(1))
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1]) or None
