"""Helpers for the widget tests: a widget inbox, and a visitor as the chat frame's script calls
the API (with the frame's own Origin, or a host site's)."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass, field
from itertools import count

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import ChannelKind
from infra.models import Branch, Inbox
from tests.integration.realtime_support import Stream, open_sse

_ids = count(1)


async def widget_inbox(factory: async_sessionmaker[AsyncSession], **settings) -> int:
    async with factory() as db, db.begin():
        if await db.scalar(select(Branch.id).limit(1)) is None:
            db.add(Branch(name=f"Widget branch {next(_ids)}", timezone="UTC", is_default=True))
        inbox = Inbox(name=f"Site {next(_ids)}", channel=ChannelKind.WIDGET, settings=settings)
        db.add(inbox)
        await db.flush()
        return inbox.id


def new_client_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Visitor:
    base_url: str
    inbox_id: int
    origin: str | None = None  # None: the chat frame itself (our own origin)
    token: str | None = None
    conversation_id: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def _headers(self) -> dict[str, str]:
        headers = {"origin": self.origin or self.base_url, **self.headers}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        return headers

    async def call(self, method: str, path: str, **kw) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            return await http.request(method, f"/widget/v1{path}", headers=self._headers(), **kw)

    async def start(self) -> httpx.Response:
        answer = await self.call("POST", f"/inboxes/{self.inbox_id}/sessions", json={"token": self.token})
        if answer.status_code == 201:
            body = answer.json()
            self.token = body["token"]
            if body["conversation"]:
                self.conversation_id = body["conversation"]["id"]
        return answer

    async def say(self, text: str, client_id: str | None = None) -> httpx.Response:
        return await self.call("POST", "/messages", json={"client_id": client_id or new_client_id(), "text": text})

    async def chat(self, after: int | None = None) -> dict:
        answer = await self.call("GET", "/chat", params={} if after is None else {"after": after})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        if body["conversation"]:
            self.conversation_id = body["conversation"]["id"]
        return body

    def stream(self, last_event_id: int | None = None) -> contextlib.AbstractAsyncContextManager[Stream]:
        return open_sse(
            self.base_url,
            "/widget/v1/events",
            headers={"origin": self.origin or self.base_url},
            params={"token": self.token},
            last_event_id=last_event_id,
        )
