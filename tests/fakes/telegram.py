"""A fake Telegram Bot API on loopback.

    with FakeTelegram() as tg:                      # or: async with FakeTelegram() as tg
        adapter = TelegramAdapter(http, tg.base_url)
        tg.fail_next(Fault.RATE_LIMIT, method="sendMessage", retry_after=3)
        tg.inject_message(chat_id=42, text="hello")  # for getUpdates / deliver_webhooks
        tg.sent_messages(42)                         # what the user would see

Routes: `/bot<token>/<method>` (JSON, urlencoded or multipart, method names case-insensitive)
and `/file/bot<token>/<file_path>`. A token outside `tokens` gets 401. Bodies are validated with
aiogram's method models, then with the checks aiogram leaves to the server: text 1-4096 and
captions up to 1024 characters after entity parsing, parse_mode HTML checked strictly (only
Telegram's tags, balanced, every `< > &` escaped), photo 10 MB / file 50 MB, secret_token
charset, an HTTPS webhook URL. Errors have Telegram's shape `{ok, error_code, description,
parameters?}`. Fault `method` filters are Bot API method names ("sendMessage"); downloads are
method "file".
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any

from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetFile,
    GetMe,
    GetUpdates,
    GetWebhookInfo,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetWebhook,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import BufferedInputFile, Update
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from channels.transport import mask_url
from tests.fakes.faults import Fault, FaultHit
from tests.fakes.ratelimit import RateRule, Scope, Violation, whole_seconds
from tests.fakes.server import Call, FakeProvider, read_body

TOKEN = "123456789:AAFakeTokenForTests_0123456789abcdefg"
SECOND_TOKEN = "987654321:AAFakeTokenOfASecondBot_9876543210zyx"  # another bot, same users
BOT_USER = {"id": 123456789, "is_bot": True, "first_name": "Switchboard", "username": "switchboard_test_bot"}
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
PHOTO_MAX_BYTES = 10 * 1024 * 1024
FILE_MAX_BYTES = 50 * 1024 * 1024
DOWNLOAD_MAX_BYTES = 20 * 1024 * 1024
UPDATE_ID_BASE = 815_000_000  # real update ids are large; they rise by one
MAX_LONG_POLL = 50.0
# Telegram does not document how long a callback query can be answered; clients stop the
# spinner on their own after about this long, and a late answer is refused.
CALLBACK_ANSWER_SECONDS = 15.0
_STALE_CALLBACK = "Bad Request: query is too old and response timeout expired or query ID is invalid"

_MODELS: dict[str, type[TelegramMethod[Any]]] = {
    cls.__name__.lower(): cls
    for cls in (
        SendMessage,
        SendPhoto,
        SendDocument,
        SendChatAction,
        GetUpdates,
        SetWebhook,
        DeleteWebhook,
        GetWebhookInfo,
        GetFile,
        AnswerCallbackQuery,
        GetMe,
    )
}
_SENDS = frozenset({"sendmessage", "sendphoto", "senddocument"})
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_PARSE_MODES = frozenset({"HTML", "MarkdownV2", "Markdown"})
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_CHAT_FAULTS = frozenset({Fault.BLOCKED, Fault.DEACTIVATED, Fault.CHAT_NOT_FOUND, Fault.MIGRATED})
_HTML_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-emoji",
    }
)
_TAG = re.compile(r"""<(/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[a-zA-Z-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*>""")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
_BAD_GATEWAY_PAGE = (
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center>"
    "<hr><center>nginx</center></body></html>"
)


@dataclass(slots=True)
class _Webhook:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(frozen=True, slots=True)
class _Callback:
    bot: str
    issued_at: float


@dataclass(frozen=True, slots=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    content: bytes


class FakeTelegram(FakeProvider):
    # Telegram: about 1 msg/s per chat, 20 msg/min per group, 30 msg/s per bot.
    rate_rules = (
        RateRule("per_chat", 1, 1.0, Scope.CHAT),
        RateRule("per_group_minute", 20, 60.0, Scope.GROUP),
        RateRule("per_bot", 30, 1.0, Scope.BOT),
    )
    supported_faults = frozenset(Fault) - {Fault.NOT_READY}

    def __init__(
        self,
        tokens: tuple[str, ...] = (TOKEN,),
        *,
        enforce_rate_limits: bool = False,
        allow_http_webhooks: bool = False,
    ) -> None:
        super().__init__(enforce_rate_limits=enforce_rate_limits)
        self.tokens = frozenset(tokens)
        self.allow_http_webhooks = allow_http_webhooks  # real Telegram insists on HTTPS
        self._reset_state()

    @property
    def token(self) -> str:
        return min(self.tokens)

    def _reset_state(self) -> None:
        self._message_ids: dict[str, itertools.count[int]] = defaultdict(lambda: itertools.count(1))
        self._chat_faults: dict[str, FaultHit] = {}
        self._webhook: _Webhook | None = None
        self._files: dict[str, _StoredFile] = {}
        self._file_seq = itertools.count(1)
        self._callbacks: dict[str, _Callback] = {}
        self._callback_seq = itertools.count(1)
        # how long getUpdates holds a request open at most (a proxy that cuts idle requests: 0)
        self.max_long_poll = MAX_LONG_POLL
        # at most this many updates per getUpdates answer, whatever its limit (None: 100)
        self.updates_per_poll: int | None = None
        self._other_bots: dict[str, dict[str, Any]] = {}  # token -> the bot getMe names

    # --- scripting -------------------------------------------------------------------------
    @property
    def update_id_base(self) -> int:
        """update_id of the first update injected after the last reset() is this + 1."""
        return UPDATE_ID_BASE + self.seq_base

    def fail_next(self, fault: Fault, count: int | None = 1, **kwargs: Any) -> None:
        if fault not in self.supported_faults:
            raise ValueError(f"Telegram has no {fault} answer")
        super().fail_next(fault, count, **kwargs)

    def set_chat_fault(self, chat_id: str | int, fault: Fault | None, *, migrate_to: str | int | None = None) -> None:
        """Every send to this chat gets `fault` (BLOCKED, DEACTIVATED, CHAT_NOT_FOUND, MIGRATED)
        until it is set to None: a user who blocked the bot stays blocked."""
        with self._lock:
            if fault is None:
                self._chat_faults.pop(str(chat_id), None)
            elif fault in _CHAT_FAULTS:
                self._chat_faults[str(chat_id)] = FaultHit(
                    fault, migrate_to=None if migrate_to is None else str(migrate_to)
                )
            else:
                raise ValueError(f"{fault} is not a state a chat can be in")

    def add_file(
        self, content: bytes, *, file_path: str | None = None, folder: str = "documents", suffix: str = ".bin"
    ) -> str:
        """Store a file as if a user had sent it; returns its file_id for updates and getFile."""
        with self._lock:
            n = next(self._file_seq)
            path = file_path or f"{folder}/file_{n}{suffix}"
            stored = _StoredFile(f"BQACAgIAAxkBAAI{n:08d}", f"AgAD{n:06d}", path, content)
            self._files[stored.file_id] = stored
            return stored.file_id

    def add_bot(self, token: str, *, bot_id: int, first_name: str, username: str) -> None:
        """Another bot, known until reset(): its token is accepted and getMe answers with it."""
        with self._lock:
            self._other_bots[token] = {"id": bot_id, "is_bot": True, "first_name": first_name, "username": username}

    def set_webhook_error(self, message: str) -> None:
        self._webhook_failed(message)

    @property
    def webhook(self) -> dict[str, Any] | None:
        """The webhook as set (url, secret_token, allowed_updates, last_error_*), or None."""
        with self._lock:
            return None if self._webhook is None else asdict(self._webhook)

    # --- updates ---------------------------------------------------------------------------
    def make_message(
        self,
        chat_id: int,
        text: str | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Ivan",
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = "ru",
        **fields: Any,
    ) -> dict[str, Any]:
        """A `message` update from a user; private chat (chat id = user id) unless chat_id < 0."""
        user = _drop_none(
            id=user_id or chat_id,
            is_bot=False,
            first_name=first_name,
            last_name=last_name,
            username=username,
            language_code=language_code,
        )
        message = {
            "message_id": self._next_message_id(str(chat_id)),
            "from": user,
            "chat": _chat(chat_id, first_name),
            "date": int(time.time()),
        }
        if text is not None:
            message["text"] = text
        return {"message": message | fields}

    def inject_message(self, chat_id: int, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.inject_update(self.make_message(chat_id, text, **kwargs))

    def make_callback(
        self,
        user_id: int,
        data: str,
        *,
        label: str | None = None,
        chat_id: int | None = None,
        bot: str | None = None,
        first_name: str = "Ivan",
    ) -> dict[str, Any]:
        """A `callback_query` update: the user pressed the inline button (`label`, `data`) under a
        message of `bot` in `chat_id` (their private chat unless given). Its id is accepted by
        answerCallbackQuery once, from that bot, within CALLBACK_ANSWER_SECONDS."""
        chat = chat_id or user_id
        with self._lock:
            callback_id = f"{int(time.time() * 1000):x}{next(self._callback_seq):04d}"
            self._callbacks[callback_id] = _Callback(bot or self.token, time.monotonic())
        keyboard = {"inline_keyboard": [[{"text": label or data, "callback_data": data}]]}
        message = {
            "message_id": self._next_message_id(str(chat)),
            "from": BOT_USER,
            "chat": _chat(chat, first_name),
            "date": int(time.time()),
            "text": "Choose",
            "reply_markup": keyboard,
        }
        user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "ru"}
        return {
            "callback_query": {
                "id": callback_id,
                "from": user,
                "message": message,
                "chat_instance": str(-abs(chat) * 7),
                "data": data,
            }
        }

    def _stamp_update(self, update: dict[str, Any], seq: int) -> dict[str, Any]:
        return update | {"update_id": UPDATE_ID_BASE + seq}  # ids are the server's to give

    def _validate_update(self, update: dict[str, Any]) -> None:
        Update.model_validate(update)

    def _webhook_target(self) -> tuple[str, dict[str, str]] | None:
        with self._lock:
            hook = self._webhook
        if hook is None:
            return None
        return hook.url, ({"X-Telegram-Bot-Api-Secret-Token": hook.secret_token} if hook.secret_token else {})

    def _webhook_failed(self, message: str) -> None:
        with self._lock:
            if self._webhook is not None:
                self._webhook.last_error_date = int(time.time())
                self._webhook.last_error_message = message

    # --- HTTP ------------------------------------------------------------------------------
    async def _parse(self, request: Request) -> Call:
        path = request.url.path
        query = dict(request.query_params)
        call = Call(request.method, "unknown", mask_url(path), dict(query), query=query)
        if m := re.fullmatch(r"/file/bot([^/]+)/(.+)", path):
            token, call.method, call.params = m.group(1), "file", {"file_path": m.group(2)}
        elif m := re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)", path):
            token, call.method = m.group(1), m.group(2)
        else:
            call.refusal = _error(404, "Not Found")
            return call
        with self._lock:
            known = token in self.tokens or token in self._other_bots
        if not known:
            call.refusal = _error(401, "Unauthorized")
            return call
        call.bot = token
        call.authorization = token  # the bot's token travels in the path: which bot is asking
        try:
            params, call.files = await read_body(request)
        except ValueError:
            call.refusal = _error(400, "Bad Request: can't parse JSON object")
            return call
        call.params |= {k: _maybe_json(v) for k, v in params.items()}
        if "chat_id" in call.params:
            call.chat_id = str(call.params["chat_id"])
        call.is_send = call.method.lower() in _SENDS
        return call

    async def _handle(self, call: Call) -> Response:
        name = call.method.lower()
        if name == "file":
            return self._download(call.params["file_path"])
        model = _MODELS.get(name)
        if model is None:
            return _error(404, "Not Found")
        fields = call.params | {k: BufferedInputFile(f.content, f.filename or k) for k, f in call.files.items()}
        try:
            req = model.model_validate(fields)
        except ValidationError as exc:
            return _error(400, _validation_message(exc))
        handler = getattr(self, f"_m_{name}")
        return await handler(call, req)

    async def _m_sendmessage(self, call: Call, req: SendMessage) -> Response:
        if refusal := self._chat_refusal(call):
            return refusal
        try:
            text = _visible_text(req.text, req.parse_mode)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        if not text.strip():
            return _error(400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            return _error(400, "Bad Request: message is too long")
        message = self._message(call, text=text)
        self._add_sent(call, str(message["message_id"]), text=req.text, format=_mode(req.parse_mode))
        return _ok(message)

    async def _m_sendphoto(self, call: Call, req: SendPhoto) -> Response:
        return self._send_media(call, "photo", req.caption, req.parse_mode, PHOTO_MAX_BYTES)

    async def _m_senddocument(self, call: Call, req: SendDocument) -> Response:
        return self._send_media(call, "document", req.caption, req.parse_mode, FILE_MAX_BYTES)

    def _send_media(self, call: Call, field: str, caption: str | None, parse_mode: Any, max_bytes: int) -> Response:
        if refusal := self._chat_refusal(call):
            return refusal
        upload = call.files.get(field)
        if upload is None:
            return _error(400, f"Bad Request: there is no {field} in the request")
        if upload.size == 0:
            return _error(400, "Bad Request: file must be non-empty")
        if upload.size > max_bytes:
            return _error(413, "Request Entity Too Large")
        try:
            visible = _visible_text(caption or "", parse_mode)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        if len(visible) > CAPTION_LIMIT:
            return _error(400, "Bad Request: message caption is too long")
        file_id = self.add_file(upload.content, folder=f"{field}s", suffix=PurePath(upload.filename or "").suffix)
        stored = self._files[file_id]
        media: Any
        if field == "photo":
            media = [
                {
                    "file_id": file_id,
                    "file_unique_id": stored.file_unique_id,
                    "width": 1280,
                    "height": 960,
                    "file_size": upload.size,
                }
            ]
        else:
            media = _drop_none(
                file_id=file_id,
                file_unique_id=stored.file_unique_id,
                file_name=upload.filename,
                mime_type=upload.content_type,
                file_size=upload.size,
            )
        message = self._message(call, **{field: media}, **({"caption": visible} if visible else {}))
        self._add_sent(call, str(message["message_id"]), text=caption, format=_mode(parse_mode))
        return _ok(message)

    async def _m_sendchataction(self, call: Call, req: SendChatAction) -> Response:
        if refusal := self._chat_refusal(call):
            return refusal
        if req.action not in _CHAT_ACTIONS:
            return _error(400, "Bad Request: wrong parameter action in request")
        return _ok(True)

    async def _m_getupdates(self, call: Call, req: GetUpdates) -> Response:
        with self._lock:
            if self._webhook is not None:
                return _error(
                    409,
                    "Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first",
                )
        limit = min(max(req.limit or 100, 1), 100, self.updates_per_poll or 100)
        deadline = time.monotonic() + min(req.timeout or 0, self.max_long_poll)
        while True:
            with self._lock:
                batch = self._confirm_and_peek(req.offset, limit, req.allowed_updates)
            if batch or time.monotonic() >= deadline:
                return _ok(batch)
            await asyncio.sleep(0.01)

    def _confirm_and_peek(self, offset: int | None, limit: int, allowed: list[str] | None) -> list[dict[str, Any]]:
        """getUpdates semantics: an offset confirms every update below it; a negative one keeps
        only the last -offset updates."""
        if offset is not None and offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [(s, u) for s, u in self._updates if u["update_id"] >= offset]
        batch = [u for _, u in self._updates[:limit]]
        return [u for u in batch if allowed is None or not allowed or any(k in u for k in allowed)]

    async def _m_setwebhook(self, call: Call, req: SetWebhook) -> Response:
        if not req.url:
            return await self._m_deletewebhook(call, DeleteWebhook())
        if not (req.url.startswith("https://") or (self.allow_http_webhooks and req.url.startswith("http://"))):
            return _error(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if req.secret_token is not None and not _SECRET_TOKEN.fullmatch(req.secret_token):
            return _error(400, "Bad Request: secret token contains unallowed characters")
        max_connections = req.max_connections or 40
        if not 1 <= max_connections <= 100:
            return _error(400, "Bad Request: bad webhook: max_connections must be between 1 and 100")
        with self._lock:
            self._webhook = _Webhook(req.url, req.secret_token, req.allowed_updates, max_connections)
            if req.drop_pending_updates:
                self._updates.clear()
        return _ok(True, description="Webhook was set")

    async def _m_deletewebhook(self, call: Call, req: DeleteWebhook) -> Response:
        with self._lock:
            existed, self._webhook = self._webhook is not None, None
            if req.drop_pending_updates:
                self._updates.clear()
        return _ok(True, description="Webhook was deleted" if existed else "Webhook is already deleted")

    async def _m_getwebhookinfo(self, call: Call, req: GetWebhookInfo) -> Response:
        with self._lock:
            hook, pending = self._webhook, len(self._updates)
        info: dict[str, Any] = {"url": "", "has_custom_certificate": False, "pending_update_count": pending}
        if hook is not None:
            info |= _drop_none(
                url=hook.url,
                max_connections=hook.max_connections,
                allowed_updates=hook.allowed_updates,
                last_error_date=hook.last_error_date,
                last_error_message=hook.last_error_message,
            )
        return _ok(info)

    async def _m_getfile(self, call: Call, req: GetFile) -> Response:
        with self._lock:
            stored = self._files.get(req.file_id)
        if stored is None:
            return _error(400, "Bad Request: invalid file_id")
        if len(stored.content) > DOWNLOAD_MAX_BYTES:
            return _error(400, "Bad Request: file is too big")
        return _ok(
            {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.content),
                "file_path": stored.file_path,
            }
        )

    async def _m_answercallbackquery(self, call: Call, req: AnswerCallbackQuery) -> Response:
        with self._lock:
            issued = self._callbacks.get(req.callback_query_id)
            if (
                issued is None
                or issued.bot != call.bot
                or time.monotonic() - issued.issued_at > CALLBACK_ANSWER_SECONDS
            ):
                return _error(400, _STALE_CALLBACK)
            del self._callbacks[req.callback_query_id]  # answered once at most
        return _ok(True)

    async def _m_getme(self, call: Call, req: GetMe) -> Response:
        with self._lock:
            bot = self._other_bots.get(call.authorization or "", BOT_USER)
        return _ok(
            bot | {"can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}
        )

    def _download(self, file_path: str) -> Response:
        with self._lock:
            stored = next((f for f in self._files.values() if f.file_path == file_path), None)
        if stored is None:
            return _error(404, "Not Found")
        return Response(stored.content, media_type="application/octet-stream")

    # --- helpers ---------------------------------------------------------------------------
    def _chat_refusal(self, call: Call) -> Response | None:
        if not re.fullmatch(r"-?\d+", call.chat_id or ""):  # @usernames: no such chat here
            return _error(400, "Bad Request: chat not found")
        with self._lock:
            hit = self._chat_faults.get(call.chat_id or "")
        return self._fault_response(hit, call) if hit else None

    def _next_message_id(self, chat_id: str) -> int:
        with self._lock:
            return next(self._message_ids[chat_id])  # shared by both directions, unique per chat only

    def _message(self, call: Call, **content: Any) -> dict[str, Any]:
        chat_id = int(call.chat_id or 0)
        return {
            "message_id": self._next_message_id(str(chat_id)),
            "from": BOT_USER,
            "chat": _chat(chat_id, "Ivan"),
            "date": int(time.time()),
        } | content

    def _fault_response(self, hit: FaultHit, call: Call) -> Response:
        match hit.fault:
            case Fault.RATE_LIMIT:
                return _error(429, f"Too Many Requests: retry after {hit.retry_after}", retry_after=hit.retry_after)
            case Fault.SERVER_ERROR:
                return _error(500, "Internal Server Error")
            case Fault.BAD_GATEWAY:
                return HTMLResponse(_BAD_GATEWAY_PAGE, status_code=502)
            case Fault.UNAVAILABLE:
                return _error(503, "Service Unavailable")
            case Fault.BLOCKED:
                return _error(403, "Forbidden: bot was blocked by the user")
            case Fault.DEACTIVATED:
                return _error(403, "Forbidden: user is deactivated")
            case Fault.CHAT_NOT_FOUND:
                return _error(400, "Bad Request: chat not found")
            case Fault.MIGRATED:
                return _error(
                    400,
                    "Bad Request: group chat was upgraded to a supergroup chat",
                    migrate_to_chat_id=int(hit.migrate_to or -1001234567890),
                )
        raise ValueError(f"no Telegram answer for {hit.fault}")

    def _rate_limited_response(self, violation: Violation, call: Call) -> Response:
        seconds = whole_seconds(violation.retry_after)
        return _error(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)


def _visible_text(text: str, parse_mode: Any) -> str:
    """The text the user sees: what the 4096/1024 limits count."""
    mode = _mode(parse_mode)
    if mode is not None and mode not in _PARSE_MODES:
        raise ValueError(f"unsupported parse_mode {mode!r}")
    return _parse_html(text) if mode == "HTML" else text


def _parse_html(text: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "<":
            m = _TAG.match(text, i)
            name = m.group(2).lower() if m else ""
            if not m or name not in _HTML_TAGS:
                raise ValueError(
                    f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {_offset(text, i)}'
                )
            if m.group(1):
                if not stack or stack[-1] != name:
                    raise ValueError(f"can't parse entities: Unmatched end tag at byte offset {_offset(text, i)}")
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY.match(text, i)
            if not m:
                raise ValueError(f"can't parse entities: Unescaped & at byte offset {_offset(text, i)}")
            out.append(html.unescape(m.group(0)))
            i = m.end()
        elif ch == ">":
            raise ValueError(f"can't parse entities: Unescaped > at byte offset {_offset(text, i)}")
        else:
            out.append(ch)
            i += 1
    if stack:
        raise ValueError(f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\"")
    return "".join(out)


def _offset(text: str, i: int) -> int:
    return len(text[:i].encode())


def _mode(parse_mode: Any) -> str | None:
    return parse_mode if isinstance(parse_mode, str) else None  # aiogram's Default() means unset


def _maybe_json(value: Any) -> Any:
    """Form fields carry arrays and objects JSON-encoded, as the Bot API accepts them."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _validation_message(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    if err["type"] == "missing":
        if field in ("photo", "document"):
            return f"Bad Request: there is no {field} in the request"
        return "Bad Request: message text is empty" if field == "text" else f"Bad Request: {field} is empty"
    return f"Bad Request: invalid parameter {field}: {err['msg']}"


def _ok(result: Any, description: str | None = None) -> JSONResponse:
    return JSONResponse({"ok": True, "result": result} | ({"description": description} if description else {}))


def _error(code: int, description: str, **parameters: Any) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


def _chat(chat_id: int, first_name: str) -> dict[str, Any]:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": first_name}
    return {"id": chat_id, "type": "supergroup", "title": "Test group"}


def _drop_none(**fields: Any) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}
