"""Signed-in HTTP clients for the settings pages: one per role, each with its session cookie and
CSRF token, talking to the live app over real HTTP."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select

from domain.enums import ChannelKind, OperatorRole
from infra.models import Branch, Contact, ContactChat, ContactIdentity, Conversation, Inbox, Operator, OutboxEvent
from infra.security import hash_password
from tests.conftest import LiveServer

PASSWORD = "staff-password"
HTML = {"accept": "text/html"}
_HASH = hash_password(PASSWORD)


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@dataclass
class Client:
    http: httpx.AsyncClient
    csrf: str

    async def get(self, path: str, **kwargs) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def post(self, path: str, data: dict | list | None = None, **kwargs) -> httpx.Response:
        """A form post with the session's CSRF token (a list of pairs repeats fields)."""
        pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
        fields: dict[str, list[str]] = {"csrf_token": [self.csrf]}
        for name, value in pairs:
            fields.setdefault(name, []).extend(value if isinstance(value, list) else [str(value)])
        return await self.http.post(path, data=fields, **kwargs)


async def add_staff(factory, role: OperatorRole, email: str, name: str, branch_id: int | None = None) -> int:
    async with factory() as db, db.begin():
        if branch_id is None:
            branch_id = await db.scalar(select(Branch.id).where(Branch.is_default))
        operator = Operator(email=email, display_name=name, password_hash=_HASH, role=role, branch_id=branch_id)
        db.add(operator)
        await db.flush()
        return operator.id


async def add_parked_row(factory, error: str = "Workflow type not registered") -> tuple[int, int]:
    """A conversation of a new Telegram inbox whose outbox row Temporal refused until it was
    parked (services/outbox.py): (outbox row id, conversation id)."""
    async with factory() as db, db.begin():
        inbox = Inbox(name="Бот с отложенной записью", channel=ChannelKind.TELEGRAM, credentials_encrypted=b"")
        contact = Contact(display_name="Ирина")
        db.add_all([inbox, contact])
        await db.flush()
        user = str(contact.id)  # one identity per call
        identity = ContactIdentity(contact_id=contact.id, channel=ChannelKind.TELEGRAM, provider_user_id=user)
        db.add(identity)
        await db.flush()
        db.add(ContactChat(identity_id=identity.id, inbox_id=inbox.id, provider_chat_id=user))
        conversation = Conversation(inbox_id=inbox.id, contact_id=contact.id, identity_id=identity.id)
        db.add(conversation)
        await db.flush()
        row = OutboxEvent(
            conversation_id=conversation.id,
            kind="notice",
            payload={"kind": "inbound"},
            attempts=10,
            refusals=10,
            last_error=error,
            parked_at=datetime.now(UTC),
        )
        db.add(row)
        await db.flush()
        return row.id, conversation.id


async def sign_in(base_url: str, email: str, password: str = PASSWORD) -> Client:
    http = httpx.AsyncClient(base_url=base_url, headers=HTML)
    form = await http.get("/login")
    answer = await http.post("/login", data={"email": email, "password": password, "csrf_token": csrf_of(form.text)})
    assert answer.status_code == 303, answer.text
    home = await http.get("/")
    return Client(http, csrf_of(home.text))


@pytest.fixture
async def https_api(app_settings):
    """The app as deployed behind https://switchboard.test: bots are connected by webhook (tests
    post the provider's updates to its real address themselves)."""
    from api import create_app

    server = await asyncio.to_thread(
        LiveServer(create_app(app_settings.model_copy(update={"public_url": "https://switchboard.test"}))).start
    )
    yield server
    await asyncio.to_thread(server.stop)
