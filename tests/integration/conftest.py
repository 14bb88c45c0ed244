"""The conversation engine as it runs in production: real activities, the outbox relay and a
worker in this process, against the session's PostgreSQL and Temporal dev server."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import count

import httpx
import pytest
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError

from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.conversation import STATE_QUERY, ConversationState
from domain.enums import ChannelKind, OperatorRole, OperatorStatus
from domain.ids import conversation_workflow_id
from infra.models import Branch, Inbox, Operator
from infra.security import CredentialBox, hash_password
from infra.settings import Settings
from services.ingest import ingest
from services.outbox import OutboxRelay, listen_for_wakeups
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.max import TOKEN as FAKE_MAX_TOKEN
from tests.fakes.telegram import TOKEN as FAKE_TELEGRAM_TOKEN
from worker import build_activities, build_worker

_ids = count(1)
TELEGRAM_CREDENTIALS = {"token": FAKE_TELEGRAM_TOKEN, "webhook_secret": "s3cret-webhook_token"}
PASSWORD_HASH = hash_password("operator-password")


def user_id_of(user: str) -> str:
    """The provider user id `World.event` gives `user`."""
    return str(zlib.crc32(f"user {user}".encode()) + 1)


@dataclass
class World:
    factory: async_sessionmaker[AsyncSession]
    branch_id: int
    inbox_id: int

    async def operator(self, *, status=OperatorStatus.ONLINE, branch_id=None, role=OperatorRole.OPERATOR) -> int:
        n = next(_ids)
        async with self.factory() as db, db.begin():
            op = Operator(
                email=f"op{n}@example.com",
                display_name=f"Operator {n}",
                password_hash=PASSWORD_HASH,
                role=role,
                branch_id=branch_id or self.branch_id,
                status=status,
            )
            db.add(op)
            await db.flush()
            return op.id

    async def max_customer_writes(self, user: str, chat: str, text: str) -> int:
        """A MAX bot's inbox (the fake MAX's token) and a customer's first message in it: the
        conversation's id."""
        async with self.factory() as db, db.begin():
            inbox = Inbox(
                name="MAX bot",
                channel=ChannelKind.MAX,
                credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal(
                    {"token": FAKE_MAX_TOKEN, "webhook_secret": "max-secret-1"}
                ),
            )
            db.add(inbox)
            await db.flush()
        event = InboundEvent(
            inbox_id=inbox.id,
            channel=ChannelKind.MAX,
            kind=InboundKind.MESSAGE,
            provider_user_id=user,
            provider_chat_id=chat,
            provider_message_id=f"mid.{user}.{next(_ids)}",
            provider_time=datetime.now(UTC),
            text=text,
            profile=ContactProfile(display_name="Ivan"),
        )
        return (await ingest(self.factory, event)).conversation_id

    def event(self, user: str, text: str = "hello", *, message_id: str | None = None, **kw) -> InboundEvent:
        """A Telegram message from `user` in their chat with the bot: `user` is the chat id when
        numeric. The user id differs from the chat id, so code that mixes them up is caught."""
        chat_id = user if user.isdigit() else str(zlib.crc32(user.encode()))
        return InboundEvent(
            inbox_id=self.inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=kw.pop("kind", InboundKind.MESSAGE),
            provider_user_id=user_id_of(user),
            provider_chat_id=chat_id,
            provider_message_id=message_id or f"{user}:{next(_ids)}",
            provider_time=datetime.now(UTC),
            text=text,
            profile=ContactProfile(display_name=f"Customer {user}"),
            **kw,
        )


@pytest.fixture
async def world(clean_db) -> World:
    async with clean_db() as db, db.begin():
        branch = Branch(name=f"Branch {next(_ids)}", timezone="UTC", is_default=True)
        db.add(branch)
        await db.flush()
        inbox = Inbox(
            name="Telegram bot",
            channel=ChannelKind.TELEGRAM,
            settings={"escalation_minutes": 60, "rating_mode": "stars"},
            credentials_encrypted=CredentialBox(TEST_CREDENTIALS_KEY).seal(TELEGRAM_CREDENTIALS),
        )
        db.add(inbox)
        await db.flush()
        return World(clean_db, branch.id, inbox.id)


@dataclass
class Engine:
    client: Client
    task_queue: str
    relay: OutboxRelay


@pytest.fixture
async def engine_stack(clean_db, temporal_client, app_settings: Settings, task_queue) -> AsyncIterator[Engine]:
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    stop = asyncio.Event()
    async with httpx.AsyncClient() as http:
        worker = build_worker(temporal_client, settings, build_activities(clean_db, settings, http))
        relay = OutboxRelay(clean_db, temporal_client, task_queue, idle_poll=0.2)
        tasks = [
            asyncio.create_task(relay.run_forever(stop)),
            asyncio.create_task(listen_for_wakeups(settings.database_url, relay, stop)),
        ]
        async with worker:
            yield Engine(temporal_client, task_queue, relay)
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)


@asynccontextmanager
async def refusing_text(factory: async_sessionmaker[AsyncSession], text: str) -> AsyncIterator[None]:
    """The database refuses any message with this text, as it would data no retry can change
    (the contracts keep real data storable, so a test needs a constraint of its own)."""
    async with factory() as db, db.begin():
        await db.execute(sql(f"ALTER TABLE messages ADD CONSTRAINT test_refused CHECK (text <> '{text}') NOT VALID"))
    try:
        yield
    finally:
        async with factory() as db, db.begin():
            await db.execute(sql("ALTER TABLE messages DROP CONSTRAINT test_refused"))


async def wait_until(check: Callable[[], object], timeout: float = 30, interval: float = 0.1) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)


async def workflow_state(client: Client, conversation_id: int) -> ConversationState | None:
    """What conversation-{id} knows now; None before its workflow started."""
    handle = client.get_workflow_handle(conversation_workflow_id(conversation_id))
    try:
        return await handle.query(STATE_QUERY, result_type=ConversationState)
    except RPCError:
        return None
