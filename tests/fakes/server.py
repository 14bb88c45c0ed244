"""What every fake provider shares: a loopback HTTP server in a background thread, a record of
everything received, scripted faults, rate-limit accounting and the update queue.

The server runs uvicorn on 127.0.0.1 on a free port in its own thread with its own event loop,
so the same fake serves sync tests, async tests and benchmarks alike. All state sits behind
one lock; the public methods may be called from any thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self

import httpx
import uvicorn
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from tests.fakes.faults import RETRYABLE_FAULTS, Fault, FaultHit, FaultScript
from tests.fakes.ratelimit import RateMeter, RateRule, Violation

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    field: str
    filename: str | None
    content_type: str | None
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True, slots=True)
class Recorded:
    """One request as received, with how it was answered."""

    seq: int
    at: float  # time.monotonic() when it arrived
    wall: datetime
    http_method: str
    method: str  # the provider operation (Telegram method name, MAX resource)
    path: str  # tokens masked
    chat_id: str | None
    params: dict[str, Any]  # query and body fields
    files: dict[str, UploadedFile]
    authorization: str | None  # the Authorization header, if any was sent
    bot: str | None  # the token the request was made with (None: no valid token, or a file host)
    status: int  # 0 when the connection was dropped
    fault: Fault | None
    message_ids: tuple[str, ...]  # messages this request created


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the fake accepted and would have shown to the user."""

    message_id: str
    chat_id: str
    method: str
    bot: str  # the token of the bot that sent it
    text: str | None  # as sent (HTML markup included)
    format: str | None  # Telegram parse_mode / MAX format
    files: tuple[UploadedFile, ...]
    attachments: tuple[dict[str, Any], ...]  # MAX attachment objects as sent
    at: float


@dataclass(slots=True)
class Call:
    """One parsed request. `refusal` is set when it is answered before any work (401, 404)."""

    http_method: str
    method: str
    path: str
    params: dict[str, Any]  # query and body fields together
    query: dict[str, Any] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)
    chat_id: str | None = None
    authorization: str | None = None
    bot: str | None = None  # the token it was made with, once checked
    is_send: bool = False
    metered: bool = True  # counts toward rate limits (file hosts do not)
    refusal: Response | None = None
    message_ids: list[str] = field(default_factory=list)
    at: float = field(default_factory=time.monotonic)


class FakeProvider(ABC):
    rate_rules: tuple[RateRule, ...] = ()
    webhook_needs_200 = False  # MAX counts anything but 200 as failed; Telegram any 2xx as done

    def __init__(self, *, enforce_rate_limits: bool = False) -> None:
        self._lock = threading.RLock()
        self.faults = FaultScript()
        self.rates = RateMeter(self.rate_rules, enforce_rate_limits)
        self._records: list[Recorded] = []
        self._in_flight: Counter[str] = Counter()  # provider operation -> requests being answered
        self._sent: list[SentMessage] = []
        self._updates: list[tuple[int, dict[str, Any]]] = []  # (sequence, update), oldest first
        self._next_seq = 1
        # sequence numbers only rise, as on the real servers, even across reset(): a late poll
        # from a previous test's dying worker must not acknowledge this test's updates
        self.seq_base = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("fake server is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self, http="h11", lifespan="off", log_level="critical", access_log=False, timeout_graceful_shutdown=1
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name=type(self).__name__
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{type(self).__name__} did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._server = self._thread = None
        self.port = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def reset(self) -> None:
        """Forget everything received and scripted; keep the server running."""
        with self._lock:
            self.faults.clear()
            self.rates.reset()
            self._records.clear()
            self._sent.clear()
            self._updates.clear()
            self.seq_base = self._next_seq - 1
            self._reset_state()

    # --- scripting -------------------------------------------------------------------------
    def fail_next(
        self,
        fault: Fault,
        count: int | None = 1,
        *,
        method: str | None = None,
        chat_id: str | int | None = None,
        after: int = 0,
        retry_after: int = 1,
        delay: float = 0.0,
        migrate_to: str | int | None = None,
    ) -> None:
        """The next `count` matching requests (None: all, until `clear_faults`) get `fault`,
        after letting `after` matching requests through. `method` is the provider operation
        (see the subclass), `chat_id` the target chat; SLOW waits `delay` seconds."""
        hit = FaultHit(fault, retry_after, delay, None if migrate_to is None else str(migrate_to))
        self.faults.add(hit, count, method, chat_id, skip=after)

    def fail_randomly(
        self,
        ratio: float,
        *,
        seed: int = 0,
        faults: tuple[Fault, ...] = tuple(sorted(RETRYABLE_FAULTS)),
        method: str | None = None,
    ) -> None:
        """Each matching request fails with probability `ratio` with a fault drawn from `faults`;
        the same seed and request sequence give the same failures."""
        self.faults.set_random(ratio, seed, faults, method)

    def clear_faults(self) -> None:
        self.faults.clear()

    # --- inspection ------------------------------------------------------------------------
    def requests(self, method: str | None = None, chat_id: str | int | None = None) -> list[Recorded]:
        with self._lock:
            return [
                r
                for r in self._records
                if (method is None or r.method.lower() == method.lower())
                and (chat_id is None or r.chat_id == str(chat_id))
            ]

    def sent_messages(self, chat_id: str | int | None = None, *, bot: str | None = None) -> list[SentMessage]:
        """Accepted messages in arrival order, for one chat or all, from one bot (token) or any."""
        with self._lock:
            return [
                m
                for m in self._sent
                if (chat_id is None or m.chat_id == str(chat_id)) and (bot is None or m.bot == bot)
            ]

    def in_flight(self, method: str | None = None) -> int:
        """Requests of `method` (or any) received and not yet answered."""
        with self._lock:
            if method is None:
                return sum(self._in_flight.values())
            return self._in_flight[method.lower()]

    def connections(self) -> int:
        """Client connections open now. A client process that died has none left once the kernel
        has closed its sockets: what it had sent by then has landed, or was cut off with it."""
        server = self._server
        return 0 if server is None else len(server.server_state.connections)

    def rate_violations(self) -> dict[str, int]:
        """Per rule, how many requests broke it (each a 429 the real provider could send)."""
        return self.rates.violations()

    @property
    def enforce_rate_limits(self) -> bool:
        return self.rates.enforce

    @enforce_rate_limits.setter
    def enforce_rate_limits(self, value: bool) -> None:
        """True: requests over a limit get the provider's 429 instead of being only counted."""
        self.rates.enforce = value

    @property
    def would_be_rate_limited(self) -> int:
        return sum(self.rates.violations().values())

    # --- updates ---------------------------------------------------------------------------
    def inject_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an update for polling or webhook delivery; validated like the real provider's."""
        with self._lock:
            seq = self._next_seq
            self._next_seq += 1
            stamped = self._stamp_update(update, seq)
            self._validate_update(stamped)
            self._updates.append((seq, stamped))
            return stamped

    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return [u for _, u in self._updates]

    async def deliver_webhooks(self, client: httpx.AsyncClient | None = None) -> int:
        """POST queued updates to the registered webhook, oldest first, as the provider would:
        a 2xx answer confirms one; anything else stops the run, keeps the update and records
        the error. Call it from the test's event loop. Returns how many were delivered."""
        target = self._webhook_target()
        if target is None:
            return 0
        url, headers = target
        own = client is None
        http = client or httpx.AsyncClient()
        delivered = 0
        try:
            while (head := self._head_update()) is not None:
                seq, update = head
                try:
                    resp = await http.post(url, json=update, headers=headers, timeout=10)
                except httpx.HTTPError as exc:
                    self._webhook_failed(f"Connection failed: {type(exc).__name__}")
                    break
                if not (resp.status_code == 200 if self.webhook_needs_200 else resp.is_success):
                    self._webhook_failed(f"Wrong response from the webhook: {resp.status_code} {resp.reason_phrase}")
                    break
                with self._lock:
                    self._updates = [(s, u) for s, u in self._updates if s != seq]
                delivered += 1
        finally:
            if own:
                await http.aclose()
        return delivered

    def _head_update(self) -> tuple[int, dict[str, Any]] | None:
        with self._lock:
            return self._updates[0] if self._updates else None

    # --- hooks -----------------------------------------------------------------------------
    @abstractmethod
    async def _parse(self, request: Request) -> Call: ...

    @abstractmethod
    async def _handle(self, call: Call) -> Response: ...

    @abstractmethod
    def _fault_response(self, hit: FaultHit, call: Call) -> Response: ...

    @abstractmethod
    def _rate_limited_response(self, violation: Violation, call: Call) -> Response: ...

    @abstractmethod
    def _stamp_update(self, update: dict[str, Any], seq: int) -> dict[str, Any]: ...

    @abstractmethod
    def _validate_update(self, update: dict[str, Any]) -> None: ...

    @abstractmethod
    def _webhook_target(self) -> tuple[str, dict[str, str]] | None: ...

    @abstractmethod
    def _webhook_failed(self, message: str) -> None: ...

    def _reset_state(self) -> None:  # noqa: B027 - a hook: providers without state keep this
        """Provider state (chats, webhooks, files) back to new; called under the lock."""

    # --- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        call = await self._parse(Request(scope, receive))
        with self._lock:
            self._in_flight[call.method.lower()] += 1
        try:
            await self._serve(call, scope, receive, send)
        finally:
            with self._lock:
                self._in_flight[call.method.lower()] -= 1

    async def _serve(self, call: Call, scope: Scope, receive: Receive, send: Send) -> None:
        if call.refusal is not None:
            self._record(call, call.refusal.status_code, None)
            await call.refusal(scope, receive, send)
            return
        hit = self.faults.take(call.method, call.chat_id)
        if hit is not None and hit.fault == Fault.SLOW:
            await asyncio.sleep(hit.delay)
            hit = None
        if hit is not None and hit.fault == Fault.DROP:
            self._record(call, 0, Fault.DROP)
            await _drop_connection(send)
            return
        if hit is not None:
            response = self._fault_response(hit, call)
        elif call.metered and (violation := self.rates.admit(call.chat_id, call.is_send, time.monotonic())):
            response = self._rate_limited_response(violation, call)
        else:
            try:
                response = await self._handle(call)
            except Exception as exc:  # a bug in the fake: say so loudly instead of a bare 500
                log.exception("%s crashed on %s %s", type(self).__name__, call.http_method, call.path)
                response = PlainTextResponse(f"fake crashed: {exc!r}", status_code=500)
        self._record(call, response.status_code, hit.fault if hit else None)
        await response(scope, receive, send)

    def _record(self, call: Call, status: int, fault: Fault | None) -> None:
        with self._lock:
            self._records.append(
                Recorded(
                    seq=len(self._records) + 1,
                    at=call.at,
                    wall=datetime.now(UTC),
                    http_method=call.http_method,
                    method=call.method,
                    path=call.path,
                    chat_id=call.chat_id,
                    params=call.params,
                    files=call.files,
                    authorization=call.authorization,
                    bot=call.bot,
                    status=status,
                    fault=fault,
                    message_ids=tuple(call.message_ids),
                )
            )

    def _add_sent(self, call: Call, message_id: str, **fields: Any) -> None:
        with self._lock:
            call.message_ids.append(message_id)
            self._sent.append(
                SentMessage(
                    message_id=message_id,
                    chat_id=call.chat_id or "",
                    method=call.method,
                    bot=call.bot or "",
                    text=fields.get("text"),
                    format=fields.get("format"),
                    files=tuple(fields.get("files", call.files.values())),
                    attachments=tuple(fields.get("attachments") or ()),
                    at=call.at,
                )
            )


async def read_body(request: Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
    """JSON, urlencoded and multipart body fields; uploaded files apart."""
    params: dict[str, Any] = {}
    files: dict[str, UploadedFile] = {}
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("request body is not a JSON object")
        params.update(body)
    elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = await request.form()
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = UploadedFile(key, value.filename, value.content_type, await value.read())
            else:
                params[key] = value
    return params, files


async def _drop_connection(send: Send) -> None:
    """Promise a body and never send it: uvicorn closes the socket mid-answer."""
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]})
    await send({"type": "http.response.body", "body": b'{"ok":', "more_body": True})
