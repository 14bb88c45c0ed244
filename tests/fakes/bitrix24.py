"""A fake Bitrix24 portal on loopback, answering its REST API through inbound webhooks as the
docs (CHANNELS.md) say:

    POST /rest/{user_id}/{code}/{method}.json   JSON body, {"result": ...} or {"error", "error_description"}

- an unknown user/code pair: 401 `INVALID_CREDENTIALS`; an unknown method: 404 `ERROR_METHOD_NOT_FOUND`;
- a leaky bucket per portal (`leak_per_second` 2, `burst` 50 as on the real portals): past it,
  503 `QUERY_LIMIT_EXCEEDED`;
- `tasks.task.add {"fields": {TITLE, RESPONSIBLE_ID, DESCRIPTION?, DEADLINE?, XML_ID?}}` ->
  `{"result": {"task": {"id": "<string>", ...}}}` (TITLE and RESPONSIBLE_ID required, 400 else);
  there is no idempotency key: two adds make two tasks;
- `tasks.task.list {"filter": {"XML_ID": ...}, "select": [...]}` -> `{"result": {"tasks": [...]}}`;
- scripted faults: `fail_next(count, "time_limit")` (429 `OPERATION_TIME_LIMIT`), `"unavailable"`
  (503 `QUERY_LIMIT_EXCEEDED`), `"slow"` (answer after `delay` s, the work done even when the
  caller gave up).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Self

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

USER_ID = "1"
CODE = "k3y0fw3bh00k"


@dataclass(frozen=True, slots=True)
class Call:
    at: float
    method: str
    body: dict[str, Any]
    status: int


class FakeBitrix24:
    def __init__(self, *, leak_per_second: float = 2.0, burst: int = 50) -> None:
        self.leak_per_second = leak_per_second
        self.burst = burst
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._tasks: list[dict[str, Any]] = []
        self._ids = itertools.count(3711)
        self._level = 0.0
        self._level_at = time.monotonic()
        self._faults: list[tuple[str, float]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def portal(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webhook_url(self) -> str:
        """What an admin pastes from Bitrix24's "Inbound webhook" page."""
        return f"{self.portal}/rest/{USER_ID}/{CODE}/"

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
                raise RuntimeError("fake Bitrix24 did not start")
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

    # --- scripting and inspection ------------------------------------------------------------
    def fail_next(self, count: int, fault: str, delay: float = 0.0) -> None:
        with self._lock:
            self._faults.extend([(fault, delay)] * count)

    def tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(t) for t in self._tasks]

    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    # --- the API -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        parts = request.url.path.strip("/").split("/")
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            body = None
        method = parts[3].removesuffix(".json") if len(parts) == 4 else ""
        status, answer, delay = self._answer(parts, method, body)
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            self._calls.append(Call(time.monotonic(), method, body if isinstance(body, dict) else {}, status))
        await JSONResponse(answer, status_code=status)(scope, receive, send)

    def _answer(self, parts: list[str], method: str, body: Any) -> tuple[int, dict[str, Any], float]:
        if len(parts) != 4 or parts[0] != "rest" or parts[1] != USER_ID or parts[2] != CODE:
            return 401, _error("INVALID_CREDENTIALS", "Invalid request credentials"), 0.0
        with self._lock:
            fault, delay = self._faults.pop(0) if self._faults else (None, 0.0)
            if fault == "time_limit":
                return 429, _error("OPERATION_TIME_LIMIT", "Method is blocked due to operation time limit."), 0.0
            if fault == "unavailable" or not self._admit():
                return 503, _error("QUERY_LIMIT_EXCEEDED", "Too many requests"), 0.0
            if not isinstance(body, dict):
                return 400, _error("INVALID_REQUEST", "Body is not a JSON object"), delay
            if method == "tasks.task.add":
                return (*self._add(body), delay)
            if method == "tasks.task.list":
                return (*self._list(body), delay)
            return 404, _error("ERROR_METHOD_NOT_FOUND", "Method not found!"), delay

    def _admit(self) -> bool:
        """The leaky bucket: each request adds one, `leak_per_second` drain; over `burst` refused."""
        now = time.monotonic()
        self._level = max(0.0, self._level - (now - self._level_at) * self.leak_per_second)
        self._level_at = now
        if self._level + 1 > self.burst:
            return False
        self._level += 1
        return True

    def _add(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        fields = body.get("fields")
        if not isinstance(fields, dict) or not fields.get("TITLE") or not fields.get("RESPONSIBLE_ID"):
            return 400, _error("ERROR_CORE", "TITLE and RESPONSIBLE_ID are required")
        task = {
            "id": str(next(self._ids)),
            "title": fields["TITLE"],
            "description": fields.get("DESCRIPTION", ""),
            "responsibleId": str(fields["RESPONSIBLE_ID"]),
            "deadline": fields.get("DEADLINE"),
            "xmlId": fields.get("XML_ID"),
        }
        self._tasks.append(task)
        return 200, {"result": {"task": task}, "time": {"duration": 0.05}}

    def _list(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = (body.get("filter") or {}).get("XML_ID")
        found = [t for t in self._tasks if wanted is None or t["xmlId"] == wanted]
        return 200, {"result": {"tasks": found}, "total": len(found)}


def _error(code: str, description: str) -> dict[str, str]:
    return {"error": code, "error_description": description}
