"""Helpers for the realtime tests: signed-in staff, an SSE reader, events through the real path
(a committed row of realtime_events -> NOTIFY -> the api's hub -> its filter -> the stream)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

import asyncpg
import httpx

from domain.enums import DeliveryStatus, OperatorRole
from domain.events import ConversationIds, MessageStatusChanged
from infra.db import asyncpg_dsn
from infra.event_log import CHANNEL, LoggedEvent, parse_notification, publish
from infra.models import Branch, Operator, WebSession
from infra.security import new_token, token_digest

_ids = count(1)


@dataclass(frozen=True)
class Frame:
    id: int | None
    event: str
    data: dict


@dataclass
class Stream:
    """One open SSE stream; frames arrive on `frames` as the server writes them."""

    frames: asyncio.Queue[Frame] = field(default_factory=asyncio.Queue)
    last_id: int | None = None
    task: asyncio.Task | None = None

    async def next(self, timeout: float = 10) -> Frame:
        return await asyncio.wait_for(self.frames.get(), timeout)

    async def until(self, predicate, timeout: float = 10) -> list[Frame]:
        """Every frame up to and including the first that matches."""
        seen = []
        while True:
            frame = await self.next(timeout)
            seen.append(frame)
            if predicate(frame):
                return seen

    def nothing_waiting(self) -> bool:
        return self.frames.empty()


def parse_frames(buffer: str) -> tuple[list[Frame], str]:
    frames = []
    while "\n\n" in buffer:
        block, buffer = buffer.split("\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":") or ": " not in line:
                continue
            name, value = line.split(": ", 1)
            fields[name] = value
        if "event" in fields:
            frames.append(
                Frame(
                    int(fields["id"]) if "id" in fields else None, fields["event"], json.loads(fields.get("data", "{}"))
                )
            )
    return frames, buffer


@contextlib.asynccontextmanager
async def open_sse(
    base_url: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    cookies: dict[str, str] | None = None,
    last_event_id: int | None = None,
) -> AsyncIterator[Stream]:
    """An SSE stream read in the background into `Stream.frames` (the cabinet's and the widget's)."""
    stream = Stream()
    headers = {"accept": "text/event-stream", **(headers or {})}
    if last_event_id is not None:
        headers["last-event-id"] = str(last_event_id)
    opened = asyncio.get_running_loop().create_future()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=base_url, cookies=cookies, timeout=None) as http,
            http.stream("GET", path, params=params, headers=headers) as response,
        ):
            opened.set_result(response.status_code)
            buffer = ""
            async for chunk in response.aiter_text():
                frames, buffer = parse_frames(buffer + chunk)
                for frame in frames:
                    if frame.id is not None:
                        stream.last_id = frame.id
                    stream.frames.put_nowait(frame)

    stream.task = asyncio.create_task(read())
    status = await asyncio.wait_for(asyncio.shield(opened), 10)
    assert status == 200, status
    try:
        yield stream
    finally:
        stream.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await stream.task


def open_stream(
    base_url: str, cookie: str, *, last_event_id: int | None = None
) -> contextlib.AbstractAsyncContextManager[Stream]:
    """A signed-in operator's `GET /events`."""
    return open_sse(base_url, "/events", cookies={"sb_session": cookie}, last_event_id=last_event_id)


async def staff(factory, role: OperatorRole = OperatorRole.OPERATOR, branch_id: int | None = None) -> tuple[int, str]:
    """An operator with a live cabinet session: (operator id, session cookie)."""
    n = next(_ids)
    token = new_token()
    async with factory() as db, db.begin():
        operator = Operator(
            email=f"rt{n}@example.com", display_name=f"RT {n}", password_hash="x", role=role, branch_id=branch_id
        )
        db.add(operator)
        await db.flush()
        db.add(
            WebSession(
                token_hash=token_digest(token),
                operator_id=operator.id,
                csrf_token="c",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
        return operator.id, token


async def branch(factory) -> int:
    async with factory() as db, db.begin():
        row = Branch(name=f"RT branch {next(_ids)}")
        db.add(row)
        await db.flush()
        return row.id


def status_event(
    conversation_id: int, branch_id: int | None, assignee_id: int | None, message_id: int = 1
) -> MessageStatusChanged:
    """A small event about any conversation: the hub only reads its scope."""
    ref = ConversationIds(conversation_id=conversation_id, inbox_id=1, branch_id=branch_id, assignee_id=assignee_id)
    return MessageStatusChanged.of(ref, message_id=message_id, status=DeliveryStatus.SENT)


async def commit(factory, *events) -> None:
    async with factory() as db, db.begin():
        for event in events:
            await publish(db, event)


@contextlib.asynccontextmanager
async def announcements(database_url: str) -> AsyncIterator[asyncio.Queue[LoggedEvent]]:
    """Every realtime notification, parsed, in commit order, on a LISTEN connection of its own."""
    conn = await asyncpg.connect(**asyncpg_dsn(database_url))
    heard: asyncio.Queue[LoggedEvent] = asyncio.Queue()
    await conn.add_listener(CHANNEL, lambda _c, _p, _ch, text: heard.put_nowait(parse_notification(text)))
    try:
        yield heard
    finally:
        await conn.close()
