"""What the polling, webhook and file tests share: adapters pointed at the fake providers,
inboxes made with `create_inbox`, and a worker of our own (not worker.py's) running the
channel workflows and activities against the session's PostgreSQL and Temporal dev server.

Import the fixtures into a test module:
    from tests.integration.channel_support import channels  # noqa: F401
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError
from temporalio.worker import Worker

from activities.channels import ChannelActivities
from channels.registry import build_adapters
from domain.enums import ChannelKind
from infra.models import Inbox, Message
from infra.security import CredentialBox
from infra.settings import Settings
from infra.temporal import WorkflowStarter
from services.inboxes import create_inbox
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.max import FakeMax
from tests.fakes.telegram import FakeTelegram
from worker import WORKFLOWS


@dataclass
class Channels:
    factory: async_sessionmaker[AsyncSession]
    settings: Settings
    adapters: dict[ChannelKind, Any]
    box: CredentialBox
    client: Client
    task_queue: str
    telegram: FakeTelegram
    max: FakeMax
    files: Path
    _handles: list[WorkflowHandle]

    def activities(self, cls: type[ChannelActivities] = ChannelActivities, **settings: Any) -> ChannelActivities:
        s = self.settings.model_copy(update=settings) if settings else self.settings
        return cls(self.factory, self.adapters, self.box, s)

    @asynccontextmanager
    async def worker(self, activities: ChannelActivities | None = None) -> AsyncIterator[ChannelActivities]:
        acts = activities or self.activities()
        async with Worker(self.client, task_queue=self.task_queue, workflows=WORKFLOWS, activities=acts.all()):
            yield acts

    @property
    def starter(self) -> WorkflowStarter:
        return WorkflowStarter(self.client, self.task_queue)

    def track(self, handle: WorkflowHandle) -> WorkflowHandle:
        """Terminated after the test, so no poller outlives it on the shared dev server."""
        self._handles.append(handle)
        return handle

    async def inbox(self, channel: ChannelKind, **credentials: str) -> int:
        fake = self.telegram if channel == ChannelKind.TELEGRAM else self.max
        async with self.factory() as db, db.begin():
            inbox = await create_inbox(db, self.box, name=f"{channel.value} bot", channel=channel, token=fake.token)
            if credentials:
                inbox.credentials_encrypted = self.box.seal(self.box.open(inbox.credentials_encrypted) | credentials)
            return inbox.id

    async def load(self, inbox_id: int) -> Inbox:
        async with self.factory() as db:
            inbox = await db.get(Inbox, inbox_id)
            assert inbox is not None
            return inbox

    def credentials(self, inbox: Inbox) -> dict[str, str]:
        return self.box.open(inbox.credentials_encrypted)

    async def texts(self, inbox_id: int) -> list[str]:
        async with self.factory() as db:
            return list(
                (await db.scalars(select(Message.text).where(Message.inbox_id == inbox_id).order_by(Message.id))).all()
            )

    async def message_count(self, inbox_id: int) -> int:
        async with self.factory() as db:
            return await db.scalar(select(func.count()).select_from(Message).where(Message.inbox_id == inbox_id))


@pytest.fixture
async def channels(
    clean_db,
    settings: Settings,
    temporal_client: Client,
    task_queue: str,
    fake_telegram: FakeTelegram,
    fake_max: FakeMax,
    tmp_path: Path,
) -> AsyncIterator[Channels]:
    s = settings.model_copy(
        update={
            "telegram_api_base": fake_telegram.base_url,
            "max_api_base": fake_max.base_url,
            "data_dir": tmp_path,
        }
    )
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, connect=5)) as http:
        env = Channels(
            clean_db,
            s,
            build_adapters(http, s),
            CredentialBox(TEST_CREDENTIALS_KEY),
            temporal_client,
            task_queue,
            fake_telegram,
            fake_max,
            tmp_path / "files",
            [],
        )
        try:
            yield env
        finally:
            for handle in env._handles:
                with suppress(RPCError):
                    await handle.terminate()
