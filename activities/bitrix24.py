"""Activities of Bitrix24TaskWorkflow: create the task (looking it up by our XML_ID first), or
record why it could not be.

Every call to a portal takes a rate slot shared by every worker (infra/ratelimit.py), so the
portal's ~2 requests/s hold however many workers ask at once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.heartbeats import heartbeating
from domain.bitrix24 import (
    CREATE_BITRIX24_TASK,
    FAIL_BITRIX24_TASK,
    RATE_LIMITED_ERROR,
    REFUSED_ERROR,
    TaskFailure,
    TaskRequest,
    TaskStatus,
    xml_id,
)
from domain.enums import MessageDirection
from domain.links import conversation_url
from infra import metrics
from infra.models import Bitrix24Task, Contact, Conversation, Message
from infra.ratelimit import Limit, reserve
from infra.security import CredentialBox
from infra.settings import Settings
from integrations import bitrix24
from services import audit
from services.bitrix24 import connection_for

HEARTBEAT_EVERY = 3.0  # well inside the workflow's 10 s heartbeat timeout
SUMMARY_MESSAGES = 20
SUMMARY_LINE_CHARS = 300


class Bitrix24Activities:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        box: CredentialBox,
        settings: Settings,
        http: httpx.AsyncClient,
    ) -> None:
        self._factory = factory
        self._box = box
        self._settings = settings
        self._http = http

    @activity.defn(name=CREATE_BITRIX24_TASK)
    async def create_bitrix24_task(self, request: TaskRequest) -> str:
        async with heartbeating(HEARTBEAT_EVERY):
            return await self._create(request)

    async def _create(self, request: TaskRequest) -> str:
        async with self._factory() as db:
            task = await db.get(Bitrix24Task, (request.conversation_id, request.purpose))
            conversation = await db.get(Conversation, request.conversation_id)
            if task is None or conversation is None:
                return "gone"
            if task.status == TaskStatus.READY:
                return task.task_id or ""
            connection = await connection_for(db, conversation)
            if connection is None:
                raise ApplicationError("Bitrix24 is not connected any more", type=REFUSED_ERROR, non_retryable=True)
            url = self._box.open(connection.webhook_url_encrypted)["webhook_url"]
            new = bitrix24.NewTask(
                title=await self._title(db, conversation),
                description=await self._summary(db, conversation),
                responsible_id=connection.responsible_id,
                deadline=(datetime.now(UTC) + timedelta(hours=connection.deadline_hours)).isoformat(),
                xml_id=xml_id(conversation.id, request.purpose),
            )
            responsible = connection.responsible_id
        try:
            await self._slot(url)
            task_id = await bitrix24.find_task(self._http, url, new.xml_id)
            if task_id is None:
                await self._slot(url)
                task_id = await bitrix24.add_task(self._http, url, new)
                metrics.BITRIX24_CALLS.labels(method="tasks.task.add", outcome="ok").inc()
        except bitrix24.Bitrix24Error as exc:
            metrics.BITRIX24_CALLS.labels(method="task", outcome="refused" if exc.permanent else "retried").inc()
            if exc.permanent:
                raise ApplicationError(exc.reason, type=REFUSED_ERROR, non_retryable=True) from None
            raise ApplicationError(
                exc.reason,
                type=RATE_LIMITED_ERROR if exc.retry_after else "Bitrix24Unavailable",
                next_retry_delay=timedelta(seconds=exc.retry_after) if exc.retry_after else None,
            ) from None
        async with self._factory() as db, db.begin():
            await db.execute(
                update(Bitrix24Task)
                .where(Bitrix24Task.conversation_id == request.conversation_id, Bitrix24Task.purpose == request.purpose)
                .values(
                    status=TaskStatus.READY,
                    task_id=task_id,
                    task_url=bitrix24.task_link(url, responsible, task_id),
                    error=None,
                    updated_at=datetime.now(UTC),
                )
            )
            audit.record(
                db, "bitrix24.task_created", conversation_id=request.conversation_id, details={"task_id": task_id}
            )
        return task_id

    @activity.defn(name=FAIL_BITRIX24_TASK)
    async def fail_bitrix24_task(self, failure: TaskFailure) -> None:
        async with self._factory() as db, db.begin():
            await db.execute(
                update(Bitrix24Task)
                .where(Bitrix24Task.conversation_id == failure.conversation_id, Bitrix24Task.purpose == failure.purpose)
                .values(status=TaskStatus.FAILED, error=failure.reason[:500], updated_at=datetime.now(UTC))
            )

    async def _slot(self, webhook_url: str) -> None:
        """Wait for this portal's next free request slot (shared by every worker)."""
        async with self._factory() as db, db.begin():
            portal = f"bitrix24:{bitrix24.portal_of(webhook_url)}"
            slot = await reserve(db, {portal: Limit.per_second(self._settings.bitrix24_rate_per_second)})
        await asyncio.sleep(max(0.0, (slot - datetime.now(UTC)).total_seconds()))

    @staticmethod
    async def _title(db: AsyncSession, conversation: Conversation) -> str:
        name = await db.scalar(select(Contact.display_name).where(Contact.id == conversation.contact_id))
        return f"Conversation #{conversation.id}: {name or 'customer'}"[:250]

    async def _summary(self, db: AsyncSession, conversation: Conversation) -> str:
        rows = (
            await db.execute(
                select(Message.direction, Message.text, Message.created_at)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.id.desc())
                .limit(SUMMARY_MESSAGES)
            )
        ).all()
        lines = [
            f"{'>' if direction == MessageDirection.IN else '<'} {text[:SUMMARY_LINE_CHARS]}"
            for direction, text, _ in reversed(rows)
        ]
        return "\n".join([*lines, "", conversation_url(self._settings.public_url, conversation.id)])

    def all(self) -> list[Any]:
        return [self.create_bitrix24_task, self.fail_bitrix24_task]
