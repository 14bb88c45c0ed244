"""Telegram Bot API adapter."""

from __future__ import annotations

import mimetypes
from datetime import UTC, datetime
from typing import Any

from channels.base import BotProfile, Credentials, Cursor, Files, Identity, Polling, Sending, Webhook, WebhookStatus
from channels.plan import Step
from channels.telegram.errors import result_or_raise
from channels.telegram.parse import parse_update
from channels.transport import download, request
from domain.contracts import InboundEvent, OutboundMessage, PermanentError, ProviderFileRef, RetryableError
from domain.enums import ChannelKind, MessageFormat

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]
# sendPhoto recompresses; other images (gif, svg, tiff) and big photos go as documents.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
PHOTO_MAX_BYTES = 10 * 1024 * 1024
DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024  # getFile refuses bigger files
LONG_POLL_SLACK = 10  # seconds the HTTP timeout exceeds the long-poll timeout


class TelegramAdapter(Identity, Sending, Webhook, Polling, Files):
    kind = ChannelKind.TELEGRAM
    base_setting = "telegram_api_base"
    secret_header = "X-Telegram-Bot-Api-Secret-Token"
    text_limit = 4096
    caption_limit = 1024
    file_max_bytes = 50 * 1024 * 1024  # sendDocument's multipart upload; bigger photos go as documents
    # Bot API: about 30 messages/s per bot, 1 per chat (CHANNELS.md)
    rate_per_bot = 30.0
    rate_per_chat = 1.0

    def parse_update(self, inbox_id: int, payload: Any, *, received_at: datetime | None = None) -> list[InboundEvent]:
        return parse_update(inbox_id, payload, received_at or datetime.now(UTC))

    def update_cursor(self, payload: Any) -> int | None:
        update_id = payload.get("update_id") if isinstance(payload, dict) else None
        return update_id if isinstance(update_id, int) else None

    async def bot_profile(self, credentials: Credentials) -> BotProfile:
        me = await self._call(self.token(credentials), "getMe")
        if not isinstance(me, dict) or "id" not in me:
            raise RetryableError("getMe returned no bot")
        name = " ".join(str(part) for part in (me.get("first_name"), me.get("last_name")) if part)
        return BotProfile(id=str(me["id"]), name=name or str(me["id"]), username=me.get("username"))

    async def _call(self, token: str, method: str, **kwargs: Any) -> Any:
        resp = await request(self.http, "POST", f"{self.api_base}/bot{token}/{method}", **kwargs)
        return result_or_raise(resp)

    async def _send_step(self, token: str, msg: OutboundMessage, step: Step, content: bytes | None) -> str:
        html = {"parse_mode": "HTML"} if msg.format == MessageFormat.MARKDOWN else {}
        if step.attachment is None or content is None:
            result = await self._call(
                token, "sendMessage", json={"chat_id": msg.provider_chat_id, "text": step.text, **html}
            )
        else:
            att = step.attachment
            as_photo = att.mime_type in PHOTO_TYPES and len(content) <= PHOTO_MAX_BYTES
            method, field = ("sendPhoto", "photo") if as_photo else ("sendDocument", "document")
            data = {"chat_id": msg.provider_chat_id}
            if step.text:
                data |= {"caption": step.text, **html}
            result = await self._call(token, method, data=data, files={field: (att.file_name, content, att.mime_type)})
        if not isinstance(result, dict) or "message_id" not in result:
            # Telegram said ok: the message exists, so retrying would duplicate it.
            raise PermanentError("Telegram accepted the message but returned no message_id")
        chat_id = (result.get("chat") or {}).get("id", msg.provider_chat_id)
        return f"{chat_id}:{result['message_id']}"

    async def send_typing(self, credentials: Credentials, chat_id: str) -> None:
        await self._call(self.token(credentials), "sendChatAction", json={"chat_id": chat_id, "action": "typing"})

    async def answer_callback(self, credentials: Credentials, callback_id: str, text: str | None = None) -> None:
        body = {"callback_query_id": callback_id} | ({"text": text} if text else {})
        await self._call(self.token(credentials), "answerCallbackQuery", json=body)

    async def poll(self, credentials: Credentials, cursor: Cursor, timeout: int) -> tuple[list[dict[str, Any]], Cursor]:
        body: dict[str, Any] = {"timeout": timeout, "allowed_updates": ALLOWED_UPDATES}
        if cursor is not None:
            body["offset"] = int(cursor)
        updates = await self._call(self.token(credentials), "getUpdates", json=body, timeout=timeout + LONG_POLL_SLACK)
        if not isinstance(updates, list):
            raise RetryableError("getUpdates returned no list")
        ids = [u["update_id"] for u in updates if isinstance(u, dict) and isinstance(u.get("update_id"), int)]
        return updates, (max(ids) + 1 if ids else cursor)

    async def register_webhook(self, credentials: Credentials, url: str, secret: str) -> None:
        body = {"url": url, "secret_token": secret, "allowed_updates": ALLOWED_UPDATES}
        await self._call(self.token(credentials), "setWebhook", json=body)

    async def unregister_webhook(self, credentials: Credentials, url: str | None = None) -> None:
        await self._call(self.token(credentials), "deleteWebhook", json={"drop_pending_updates": False})

    async def webhook_status(self, credentials: Credentials, url: str | None = None) -> WebhookStatus:
        info = await self._call(self.token(credentials), "getWebhookInfo")
        if not isinstance(info, dict):
            raise RetryableError("getWebhookInfo returned no object")
        current = info.get("url") or None
        error_date = info.get("last_error_date")
        return WebhookStatus(
            url=current,
            active=current is not None and (url is None or current == url),
            pending_update_count=info.get("pending_update_count"),
            last_error_message=info.get("last_error_message"),
            last_error_at=datetime.fromtimestamp(error_date, UTC) if error_date else None,
            raw=info,
        )

    async def fetch_file(
        self, credentials: Credentials, ref: ProviderFileRef, max_bytes: int
    ) -> tuple[bytes, str | None, str | None]:
        limit = min(max_bytes, DOWNLOAD_MAX_BYTES)
        if ref.size is not None and ref.size > limit:
            raise PermanentError(f"file is {ref.size} bytes, over the {limit} limit", provider_code=413)
        if not ref.file_id:
            raise PermanentError(f"a {ref.kind} attachment has no file to download")
        token = self.token(credentials)
        info = await self._call(token, "getFile", json={"file_id": ref.file_id})
        path = info.get("file_path") if isinstance(info, dict) else None
        if not path:
            raise PermanentError("getFile returned no file_path")
        if (info.get("file_size") or 0) > limit:
            raise PermanentError(f"file is {info['file_size']} bytes, over the {limit} limit", provider_code=413)
        content, _ = await download(self.http, f"{self.api_base}/file/bot{token}/{path}", limit)
        mime = ref.mime_type or mimetypes.guess_type(path)[0]
        return content, mime, ref.file_name or path.rsplit("/", 1)[-1]
