"""A fake MAX Bot API on loopback.

    with FakeMax() as mx:                            # or: async with FakeMax() as mx
        adapter = MaxAdapter(http, mx.base_url)
        mx.attachment_processing_attempts = 2        # uploads answer attachment.not.ready twice
        mx.inject_message(chat_id=182182182, user_id=123456789, text="hello")
        mx.sent_messages(182182182)

Routes as MAX has them: `GET /me`, `POST /messages?chat_id=|user_id=`, `POST /uploads?type=`,
`GET|POST|DELETE /subscriptions`, `GET /updates?marker=`, `POST /chats/{id}/actions`,
`POST /answers?callback_id=`. Every one wants `Authorization: <token>` (no "Bearer"; a query
`access_token` is refused). A dialog is one user's chat with one bot: a chat an update made here
(`make_message`, `make_callback`, `make_lifecycle`) is that bot's, and another bot's send to it
is refused. A callback is answered once, by its bot. The upload URLs (`/upload/{id}`) and
attachment URLs (`/files/{id}`) stand for MAX's CDN: no token needed, and `requests("upload")`
shows whether one leaked there. Bodies are validated with maxapi's models; text over 4000 characters,
more than 12 attachments, unknown or unprocessed upload tokens are refused. Errors have MAX's
shape `{code, message}`. Fault `method` filters are the first path segment: "messages",
"uploads", "upload", "files", "subscriptions", "updates", "chats", "answers", "me".
"""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from dataclasses import dataclass
from typing import Any

from maxapi.enums.parse_mode import TextFormat
from maxapi.enums.sender_action import SenderAction
from maxapi.enums.update import UpdateType
from maxapi.enums.upload_type import UploadType
from maxapi.methods.types import SendedMessage
from maxapi.types.attachments import Attachment, AttachmentUpload
from maxapi.types.message import NewMessageLink
from maxapi.types.updates import UpdateUnionAdapter
from maxapi.types.updates.message_callback import MessageForCallback
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from tests.fakes.faults import Fault, FaultHit
from tests.fakes.ratelimit import RateRule, Scope, Violation, whole_seconds
from tests.fakes.server import Call, FakeProvider, UploadedFile, read_body

TOKEN = "f9LHodD0cOJf4_FakeMaxTokenForTests_DkJGeq8BkDgc5vgSwZocVrn44oirfMzUQ4mv5k"
SECOND_TOKEN = "k2Vt9SecondMaxBot_FakeTokenForTests_q8DkJGeq8BkDgc5vgSwZocVrn44oirfMzUQ"  # another bot
BOT_USER = {
    "user_id": 229229229,
    "first_name": "Switchboard",
    "username": "switchboard_bot",
    "is_bot": True,
    "last_activity_time": 1775026702261,
    "name": "Switchboard",
}
TEXT_LIMIT = 4000
MAX_ATTACHMENTS = 12
MAX_LONG_POLL = 90.0
_SECRET = re.compile(r"[a-zA-Z0-9_-]{5,256}")
_CDN = frozenset({"upload", "files"})
_CHAT_FAULTS = frozenset({Fault.BLOCKED, Fault.CHAT_NOT_FOUND})
_BAD_GATEWAY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"


class _NewMessageBody(BaseModel):
    """NewMessageBody of MAX's schema; maxapi has no request model, so it is built from its parts."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = None
    attachments: list[AttachmentUpload | Attachment] | None = None
    link: NewMessageLink | None = None
    notify: bool = True
    format: TextFormat | None = None


class _Subscribe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    update_types: list[UpdateType] | None = None
    secret: str | None = None
    version: str | None = None


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: SenderAction


class _CallbackAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: MessageForCallback | None = None
    notification: str | None = None


@dataclass(slots=True)
class _Upload:
    kind: str
    token: str | None  # video/audio tokens come with the upload URL
    file: UploadedFile | None = None


@dataclass(slots=True)
class _Token:
    kind: str
    file_id: int | None  # id under /files once the bytes arrived
    not_ready_left: int


@dataclass(slots=True)
class _Subscription:
    url: str
    time: int
    update_types: list[str] | None
    secret: str | None
    version: str | None


class FakeMax(FakeProvider):
    # MAX: at most 2 messages/s into one dialog, 30 requests/s per bot.
    rate_rules = (
        RateRule("per_chat", 2, 1.0, Scope.CHAT),
        RateRule("per_bot", 30, 1.0, Scope.BOT, sends_only=False),
    )
    supported_faults = frozenset(Fault) - {Fault.DEACTIVATED, Fault.MIGRATED}
    webhook_needs_200 = True

    def __init__(
        self,
        tokens: tuple[str, ...] = (TOKEN,),
        *,
        enforce_rate_limits: bool = False,
        allow_http_webhooks: bool = False,
    ) -> None:
        super().__init__(enforce_rate_limits=enforce_rate_limits)
        self.tokens = frozenset(tokens)
        self.allow_http_webhooks = allow_http_webhooks  # real MAX wants HTTPS on 443
        self._reset_state()

    @property
    def token(self) -> str:
        return min(self.tokens)

    def _reset_state(self) -> None:
        self._seq = itertools.count(1)
        self._uploads: dict[int, _Upload] = {}
        self._tokens: dict[str, _Token] = {}
        self._files: dict[int, UploadedFile] = {}
        self._subscriptions: dict[str, _Subscription] = {}
        self._chat_faults: dict[str, FaultHit] = {}
        self._dialogs: dict[str, str] = {}  # chat id -> the token of the bot it is a dialog with
        self._callbacks: dict[str, str] = {}  # callback id -> the token of the bot it went to
        self.webhook_errors: list[str] = []
        # How many sends naming a fresh upload answer attachment.not.ready before it is usable.
        self.attachment_processing_attempts = 0

    # --- scripting -------------------------------------------------------------------------
    def fail_next(self, fault: Fault, count: int | None = 1, **kwargs: Any) -> None:
        if fault not in self.supported_faults:
            raise ValueError(f"MAX has no {fault} answer")
        super().fail_next(fault, count, **kwargs)

    def set_chat_fault(self, chat_id: str | int, fault: Fault | None) -> None:
        """Every send to this chat gets `fault` (BLOCKED: the user stopped the bot,
        CHAT_NOT_FOUND) until it is set to None."""
        with self._lock:
            if fault is None:
                self._chat_faults.pop(str(chat_id), None)
            elif fault in _CHAT_FAULTS:
                self._chat_faults[str(chat_id)] = FaultHit(fault)
            else:
                raise ValueError(f"{fault} is not a state a chat can be in")

    def add_file(
        self, content: bytes, *, file_name: str = "file.bin", mime_type: str = "application/octet-stream"
    ) -> str:
        """Host a file as MAX's CDN would; returns its URL for an attachment payload."""
        with self._lock:
            file_id = next(self._seq)
            self._files[file_id] = UploadedFile("data", file_name, mime_type, content)
        return f"{self.base_url}/files/{file_id}"

    def expire_subscription(self, url: str) -> None:
        """What MAX does after 8 h of failed deliveries: the subscription disappears."""
        with self._lock:
            self._subscriptions.pop(url, None)

    @property
    def subscriptions(self) -> list[dict[str, Any]]:
        with self._lock:
            return [_subscription_json(s) | {"secret": s.secret} for s in self._subscriptions.values()]

    # --- updates ---------------------------------------------------------------------------
    def make_message(
        self,
        chat_id: int,
        user_id: int,
        text: str | None = None,
        *,
        first_name: str = "Ivan",
        last_name: str | None = None,
        username: str | None = None,
        attachments: list[dict[str, Any]] | None = None,
        user_locale: str | None = "ru",
        update_type: str = "message_created",
        bot: str | None = None,
    ) -> dict[str, Any]:
        """A message_created update from a user in their dialog with `bot` (a token; the first
        one by default)."""
        now = int(time.time() * 1000)
        seq = next(self._seq)
        self._open_dialog(chat_id, bot)
        sender = _user(user_id, first_name, last_name, username, now)
        body: dict[str, Any] = {"mid": f"mid.{seq:032x}", "seq": seq, "text": text}
        if attachments:
            body["attachments"] = attachments
        message = {
            "recipient": {"chat_id": chat_id, "chat_type": "dialog", "user_id": BOT_USER["user_id"]},
            "timestamp": now,
            "body": body,
            "sender": sender,
        }
        update: dict[str, Any] = {"update_type": update_type, "timestamp": now, "message": message}
        if user_locale:
            update["user_locale"] = user_locale
        return update

    def inject_message(self, chat_id: int, user_id: int, text: str | None = None, **kwargs: Any) -> dict[str, Any]:
        return self.inject_update(self.make_message(chat_id, user_id, text, **kwargs))

    def make_lifecycle(
        self,
        update_type: str,
        chat_id: int,
        user_id: int,
        *,
        timestamp: int | None = None,
        payload: str | None = None,
        bot: str | None = None,
        first_name: str = "Ivan",
    ) -> dict[str, Any]:
        """A `bot_started` or `bot_stopped` update of the user's dialog with `bot`, at
        `timestamp` (Unix ms; now by default)."""
        if update_type not in ("bot_started", "bot_stopped"):
            raise ValueError(f"{update_type} is not a lifecycle update")
        now = timestamp or int(time.time() * 1000)
        self._open_dialog(chat_id, bot)
        update: dict[str, Any] = {
            "update_type": update_type,
            "timestamp": now,
            "chat_id": chat_id,
            "user": _user(user_id, first_name, None, None, now),
            "user_locale": "ru",
        }
        if payload is not None and update_type == "bot_started":
            update["payload"] = payload
        self._validate_update(update)
        return update

    def make_callback(
        self,
        chat_id: int,
        user_id: int,
        payload: str,
        *,
        label: str | None = None,
        bot: str | None = None,
        first_name: str = "Ivan",
    ) -> dict[str, Any]:
        """A `message_callback` update: the user pressed the button (`label`, `payload`) under a
        message of `bot` in their dialog. Its id is accepted by `POST /answers` once, from that bot."""
        now = int(time.time() * 1000)
        seq = next(self._seq)
        token = self._open_dialog(chat_id, bot)
        callback_id = f"cb{seq:08d}_{now:x}"
        with self._lock:
            self._callbacks[callback_id] = token
        keyboard = {
            "type": "inline_keyboard",
            "payload": {"buttons": [[{"type": "callback", "text": label or payload, "payload": payload}]]},
        }
        update = {
            "update_type": "message_callback",
            "timestamp": now,
            "callback": {
                "timestamp": now,
                "callback_id": callback_id,
                "user": _user(user_id, first_name, None, None, now),
                "payload": payload,
            },
            "message": {
                "recipient": {"chat_id": chat_id, "chat_type": "dialog", "user_id": user_id},
                "timestamp": now - 1000,
                "body": {"mid": f"mid.{seq:032x}", "seq": seq, "text": "Choose", "attachments": [keyboard]},
                "sender": BOT_USER,
            },
            "user_locale": "ru",
        }
        self._validate_update(update)
        return update

    def _open_dialog(self, chat_id: int, bot: str | None) -> str:
        token = bot or self.token
        with self._lock:
            if self._dialogs.setdefault(str(chat_id), token) != token:
                raise ValueError(f"chat {chat_id} is a dialog with another bot")
        return token

    def _stamp_update(self, update: dict[str, Any], seq: int) -> dict[str, Any]:
        return dict(update)  # MAX updates carry no id; the marker is the server's business

    def _validate_update(self, update: dict[str, Any]) -> None:
        UpdateUnionAdapter.validate_python(update)

    def _webhook_target(self) -> tuple[str, dict[str, str]] | None:
        with self._lock:
            sub = next(iter(self._subscriptions.values()), None)
        if sub is None:
            return None
        return sub.url, ({"X-Max-Bot-Api-Secret": sub.secret} if sub.secret else {})

    def _webhook_failed(self, message: str) -> None:
        with self._lock:
            self.webhook_errors.append(message)

    # --- HTTP ------------------------------------------------------------------------------
    async def _parse(self, request: Request) -> Call:
        path = request.url.path
        query = dict(request.query_params)
        segments = path.strip("/").split("/")
        call = Call(
            request.method,
            segments[0],
            path,
            dict(query),
            query=query,
            authorization=request.headers.get("authorization"),
        )
        call.metered = call.method not in _CDN
        if call.metered and ("access_token" in query or call.authorization not in self.tokens):
            call.refusal = _error(401, "verify.token", "Invalid access_token")
            return call
        if call.metered:
            call.bot = call.authorization
        try:
            body, call.files = await read_body(request)
        except ValueError:
            call.refusal = _error(400, "proto.payload", "Could not parse request body")
            return call
        call.params |= body
        if call.method == "chats" and len(segments) == 3:
            call.chat_id = segments[1]
        elif call.method == "messages":
            call.chat_id = query.get("chat_id") or (f"user:{query['user_id']}" if "user_id" in query else None)
            call.is_send = request.method == "POST"
        return call

    async def _handle(self, call: Call) -> Response:
        route = (call.http_method, call.method)
        handlers = {
            ("GET", "me"): self._me,
            ("POST", "messages"): self._send_message,
            ("POST", "uploads"): self._upload_url,
            ("POST", "upload"): self._receive_upload,
            ("GET", "files"): self._serve_file,
            ("GET", "subscriptions"): self._list_subscriptions,
            ("POST", "subscriptions"): self._subscribe,
            ("DELETE", "subscriptions"): self._unsubscribe,
            ("GET", "updates"): self._get_updates,
            ("POST", "chats"): self._action,
            ("POST", "answers"): self._answer,
        }
        handler = handlers.get(route)
        if handler is None:
            return _error(404, "not.found", f"Path {call.path} not found")
        try:
            return await handler(call)
        except ValidationError as exc:
            err = exc.errors()[0]
            return _error(400, "proto.payload", f"{'.'.join(map(str, err['loc']))}: {err['msg']}")

    async def _me(self, call: Call) -> Response:
        return JSONResponse(BOT_USER)

    async def _send_message(self, call: Call) -> Response:
        target = {k: call.query[k] for k in ("chat_id", "user_id") if k in call.query}
        if len(target) != 1 or not all(re.fullmatch(r"-?\d+", v) for v in target.values()):
            return _error(400, "proto.payload", "Exactly one of chat_id or user_id is required")
        if refusal := self._chat_refusal(call) or self._dialog_refusal(call):
            return refusal
        req = _NewMessageBody.model_validate({k: v for k, v in call.params.items() if k not in call.query})
        if req.text is not None and len(req.text) > TEXT_LIMIT:
            return _error(400, "proto.payload", f"text: message is too long (max {TEXT_LIMIT} characters)")
        attachments = req.attachments or []
        if len(attachments) > MAX_ATTACHMENTS:
            return _error(400, "proto.payload", f"attachments: at most {MAX_ATTACHMENTS} are allowed")
        if not (req.text or "").strip() and not attachments:
            return _error(400, "proto.payload", "text: message is empty")
        shown: list[dict[str, Any]] = []
        files: list[UploadedFile] = []
        for att in attachments:
            payload = att.payload if isinstance(att, AttachmentUpload) else None
            if payload is None:
                return _error(400, "proto.payload", "attachments: only uploaded files are supported by this fake")
            problem = self._use_token(payload.token, str(att.type))
            if problem is not None:
                return problem
            entry = self._tokens[payload.token]
            files.append(self._files[entry.file_id or 0])
            shown.append(self._attachment_json(str(att.type), payload.token, entry))
        now = int(time.time() * 1000)
        seq = next(self._seq)
        chat_id = int(target.get("chat_id", 0)) or None
        recipient = {
            "chat_id": chat_id,
            "chat_type": "dialog" if (chat_id or 1) > 0 else "chat",
            "user_id": int(target["user_id"]) if "user_id" in target else None,
        }
        message = {
            "recipient": recipient,
            "timestamp": now,
            "sender": BOT_USER,
            "body": {"mid": f"mid.{seq:032x}", "seq": seq, "text": req.text, "attachments": shown or None},
        }
        answer = {"message": message}
        SendedMessage.model_validate(answer)  # the fake's own answer must have MAX's shape
        self._add_sent(
            call,
            message["body"]["mid"],
            text=req.text,
            format=str(req.format) if req.format else None,
            attachments=shown,
            files=files,
        )
        return JSONResponse(answer)

    def _use_token(self, token: str, kind: str) -> Response | None:
        with self._lock:
            entry = self._tokens.get(token)
            if entry is None or entry.kind != kind:
                return _error(400, "proto.payload", "attachments: unknown attachment token")
            if entry.file_id is None or entry.not_ready_left > 0:
                entry.not_ready_left = max(0, entry.not_ready_left - 1)
                return _error(400, "attachment.not.ready", "Key: errors.process.attachment.file.not.processed")
            return None

    def _attachment_json(self, kind: str, token: str, entry: _Token) -> dict[str, Any]:
        url = f"{self.base_url}/files/{entry.file_id}"
        if kind == "image":
            return {"type": kind, "payload": {"photo_id": entry.file_id, "token": token, "url": url}}
        stored = self._files[entry.file_id or 0]
        extra = {"filename": stored.filename, "size": stored.size} if kind == "file" else {}
        return {"type": kind, "payload": {"url": url, "token": token}} | extra

    async def _upload_url(self, call: Call) -> Response:
        kind = call.query.get("type")
        if kind not in {t.value for t in UploadType}:
            return _error(400, "proto.payload", "type: must be one of image, video, audio, file")
        with self._lock:
            upload_id = next(self._seq)
            token = f"{kind}-token-{upload_id}" if kind in ("video", "audio") else None
            self._uploads[upload_id] = _Upload(kind, token)
            if token:  # usable only once the bytes arrived (and were "processed")
                self._tokens[token] = _Token(kind, None, self.attachment_processing_attempts)
        answer = {"url": f"{self.base_url}/upload/{upload_id}?sig=fake"}
        return JSONResponse(answer | ({"token": token} if token else {}))

    async def _receive_upload(self, call: Call) -> Response:
        segments = call.path.strip("/").split("/")
        with self._lock:
            upload = self._uploads.get(int(segments[1])) if len(segments) == 2 and segments[1].isdigit() else None
        if upload is None:
            return JSONResponse({"error": "upload not found"}, status_code=404)
        data = call.files.get("data")
        if data is None or data.size == 0:
            return JSONResponse({"error": "no file in form field 'data'"}, status_code=400)
        with self._lock:
            file_id = next(self._seq)
            self._files[file_id] = data
            upload.file = data
            if upload.token:
                self._tokens[upload.token].file_id = file_id
                return Response("<retval>1</retval>", media_type="text/xml")
            token = f"{upload.kind}-token-{file_id}"
            self._tokens[token] = _Token(upload.kind, file_id, self.attachment_processing_attempts)
        if upload.kind == "image":
            return JSONResponse({"photos": {str(file_id): {"token": token}}})
        return JSONResponse({"token": token})

    async def _serve_file(self, call: Call) -> Response:
        segments = call.path.strip("/").split("/")
        with self._lock:
            stored = self._files.get(int(segments[1])) if len(segments) == 2 and segments[1].isdigit() else None
        if stored is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        headers = {"content-disposition": f'attachment; filename="{stored.filename}"'}
        return Response(stored.content, media_type=stored.content_type, headers=headers)

    async def _list_subscriptions(self, call: Call) -> Response:
        with self._lock:
            subs = [_subscription_json(s) for s in self._subscriptions.values()]
        return JSONResponse({"subscriptions": subs})

    async def _subscribe(self, call: Call) -> Response:
        req = _Subscribe.model_validate({k: v for k, v in call.params.items() if k not in call.query})
        if not (req.url.startswith("https://") or (self.allow_http_webhooks and req.url.startswith("http://"))):
            return _error(400, "proto.payload", "url: must be an HTTPS URL")
        if req.secret is not None and not _SECRET.fullmatch(req.secret):
            return _error(400, "proto.payload", "secret: must be 5-256 characters of [a-zA-Z0-9_-]")
        types = [str(t) for t in req.update_types] if req.update_types else None
        with self._lock:
            self._subscriptions[req.url] = _Subscription(
                req.url, int(time.time() * 1000), types, req.secret, req.version
            )
        return JSONResponse({"success": True})

    async def _unsubscribe(self, call: Call) -> Response:
        url = call.query.get("url")
        if not url:
            return _error(400, "proto.payload", "url: is required")
        with self._lock:
            self._subscriptions.pop(url, None)
        return JSONResponse({"success": True})

    async def _get_updates(self, call: Call) -> Response:
        with self._lock:
            if self._subscriptions:
                return _error(405, "method.not.allowed", "Long polling is unavailable while a webhook is subscribed")
        q = call.query
        limit = min(max(int(q.get("limit", 100)), 1), 1000)
        timeout = min(max(float(q.get("timeout", 30)), 0.0), MAX_LONG_POLL)
        marker = int(q["marker"]) if q.get("marker") else None
        types = set(q["types"].split(",")) if q.get("types") else None
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if marker is not None:  # passing a marker commits everything before it
                    self._updates = [(s, u) for s, u in self._updates if s >= marker]
                batch = [(s, u) for s, u in self._updates if types is None or u["update_type"] in types][:limit]
                next_marker = batch[-1][0] + 1 if batch else (marker or self._next_seq)
            if batch or time.monotonic() >= deadline:
                return JSONResponse({"updates": [u for _, u in batch], "marker": next_marker})
            await asyncio.sleep(0.01)

    async def _action(self, call: Call) -> Response:
        if call.chat_id is None or not re.fullmatch(r"-?\d+", call.chat_id) or not call.path.endswith("/actions"):
            return _error(404, "not.found", f"Path {call.path} not found")
        if refusal := self._chat_refusal(call) or self._dialog_refusal(call):
            return refusal
        _Action.model_validate({k: v for k, v in call.params.items() if k not in call.query})
        return JSONResponse({"success": True})

    async def _answer(self, call: Call) -> Response:
        callback_id = (call.query.get("callback_id") or "").strip()
        if not callback_id:
            return _error(400, "proto.payload", "callback_id: must not be blank")
        _CallbackAnswer.model_validate({k: v for k, v in call.params.items() if k not in call.query})
        with self._lock:
            if self._callbacks.get(callback_id) != call.bot:
                # MAX does not document this answer's code; a callback it does not know is not found
                return _error(404, "not.found", f"Callback {callback_id} not found")
            del self._callbacks[callback_id]  # answered once at most
        return JSONResponse({"success": True})

    # --- helpers ---------------------------------------------------------------------------
    def _chat_refusal(self, call: Call) -> Response | None:
        with self._lock:
            hit = self._chat_faults.get(call.chat_id or "")
        return self._fault_response(hit, call) if hit else None

    def _dialog_refusal(self, call: Call) -> Response | None:
        """A bot sees only its own dialogs: another bot's dialog with the same user is not found."""
        with self._lock:
            owner = self._dialogs.get(call.chat_id or "")
        if owner is not None and owner != call.bot:
            return _error(404, "chat.not.found", f"Chat {call.chat_id} not found")
        return None

    def _fault_response(self, hit: FaultHit, call: Call) -> Response:
        match hit.fault:
            case Fault.RATE_LIMIT:
                return _error(429, "too.many.requests", "Too many requests", retry_after=hit.retry_after)
            case Fault.SERVER_ERROR:
                return _error(500, "internal.error", "Internal server error")
            case Fault.BAD_GATEWAY:
                return HTMLResponse(_BAD_GATEWAY_PAGE, status_code=502)
            case Fault.UNAVAILABLE:
                return _error(503, "service.unavailable", "Service temporarily unavailable")
            case Fault.BLOCKED:
                return _error(403, "chat.denied", f"Key: error.dialog.suspended, args: [{call.chat_id},].")
            case Fault.CHAT_NOT_FOUND:
                return _error(404, "chat.not.found", f"Chat {call.chat_id} not found")
            case Fault.NOT_READY:
                return _error(400, "attachment.not.ready", "Key: errors.process.attachment.file.not.processed")
        raise ValueError(f"no MAX answer for {hit.fault}")

    def _rate_limited_response(self, violation: Violation, call: Call) -> Response:
        return _error(429, "too.many.requests", "Too many requests", retry_after=whole_seconds(violation.retry_after))


def _user(user_id: int, first_name: str, last_name: str | None, username: str | None, now: int) -> dict[str, Any]:
    user: dict[str, Any] = {
        "user_id": user_id,
        "first_name": first_name,
        "is_bot": False,
        "last_activity_time": now,
        "name": " ".join(p for p in (first_name, last_name) if p),
    }
    if last_name:
        user["last_name"] = last_name
    if username:
        user["username"] = username
    return user


def _subscription_json(s: _Subscription) -> dict[str, Any]:
    return {"url": s.url, "time": s.time, "update_types": s.update_types, "version": s.version}


def _error(status: int, code: str, message: str, *, retry_after: int | None = None) -> JSONResponse:
    # MAX documents no retry-after; the fake sends the standard header so clients can honour it.
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)
