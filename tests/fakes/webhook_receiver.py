"""An integrator's webhook receiver on loopback: records every request as received and answers
from a script (`fail_next(3)`, `down()`, `up()`), 200 otherwise.

It knows nothing of our signing code: tests check its recorded requests with their own HMAC.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class Received:
    at: float  # time.monotonic()
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def accepted(self) -> bool:
        return 200 <= self.status < 300


class WebhookReceiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._fail_next = 0
        self._down = False
        self._status = 500
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self, http="h11", lifespan="off", log_level="critical", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=5)

    async def __aenter__(self) -> Self:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    # --- scripting -------------------------------------------------------------------------
    def fail_next(self, count: int, status: int = 500) -> None:
        with self._lock:
            self._fail_next, self._status = count, status

    def down(self, status: int = 503) -> None:
        with self._lock:
            self._down, self._status = True, status

    def up(self) -> None:
        with self._lock:
            self._down = False
            self._fail_next = 0

    # --- inspection ------------------------------------------------------------------------
    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def accepted(self) -> list[Received]:
        return [r for r in self.received() if r.accepted]

    # --- ASGI ------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = await request.body()
        with self._lock:
            if self._down:
                status = self._status
            elif self._fail_next > 0:
                self._fail_next -= 1
                status = self._status
            else:
                status = 200
            self._received.append(
                Received(time.monotonic(), {k.lower(): v for k, v in request.headers.items()}, body, status)
            )
        await PlainTextResponse("ok" if status == 200 else "receiver says no", status_code=status)(scope, receive, send)
