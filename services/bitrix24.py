"""Bitrix24 tasks from conversations ("Send to B24"): where a conversation's tasks go (its
inbox's connection, else its branch's), asking for one, and what a page shows of it.

Asking twice (a double click, a retried API call) is harmless: the task row is keyed by
(conversation, purpose), and so is its workflow (`b24-task-{id}-{purpose}`), which looks the
task up in Bitrix24 by our XML_ID before it adds one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.bitrix24 import FOLLOW_UP, TaskStatus, valid_webhook_url
from infra.models import Bitrix24Connection, Bitrix24Task, Conversation
from infra.security import CredentialBox
from services import audit
from services.errors import Invalid

NOT_CONNECTED = "Bitrix24 is not connected for this conversation's inbox or branch."


async def connection_for(db: AsyncSession, conversation: Conversation) -> Bitrix24Connection | None:
    """The inbox's connection, else the branch's."""
    owners = [Bitrix24Connection.inbox_id == conversation.inbox_id]
    if conversation.branch_id is not None:
        owners.append(Bitrix24Connection.branch_id == conversation.branch_id)
    rows = (await db.scalars(select(Bitrix24Connection).where(or_(*owners)))).all()
    return next((c for c in rows if c.inbox_id is not None), None) or next(iter(rows), None)


async def connect(
    db: AsyncSession,
    box: CredentialBox,
    *,
    webhook_url: str,
    responsible_id: int,
    deadline_hours: int = 24,
    branch_id: int | None = None,
    inbox_id: int | None = None,
    operator_id: int | None,
) -> Bitrix24Connection:
    """Connect a branch or an inbox (one of them) to a portal, replacing what it had."""
    if (branch_id is None) == (inbox_id is None):
        raise Invalid("Connect either a branch or an inbox.")
    if not valid_webhook_url(webhook_url):
        raise Invalid("Paste the inbound webhook URL as Bitrix24 shows it: https://<portal>/rest/<user>/<code>/")
    if responsible_id <= 0 or not 1 <= deadline_hours <= 24 * 90:
        raise Invalid("Give the responsible user's id and a deadline of 1 hour to 90 days.")
    owner = Bitrix24Connection.inbox_id == inbox_id if inbox_id else Bitrix24Connection.branch_id == branch_id
    connection = await db.scalar(select(Bitrix24Connection).where(owner))
    if connection is None:
        connection = Bitrix24Connection(branch_id=branch_id, inbox_id=inbox_id)
        db.add(connection)
    connection.webhook_url_encrypted = box.seal({"webhook_url": webhook_url.strip()})
    connection.responsible_id = responsible_id
    connection.deadline_hours = deadline_hours
    await db.flush()
    audit.record(
        db,
        "bitrix24.connected",
        operator_id=operator_id,
        details={"branch_id": branch_id, "inbox_id": inbox_id, "responsible_id": responsible_id},
    )
    return connection


async def request_task(
    db: AsyncSession, conversation: Conversation, *, operator_id: int | None, purpose: str = FOLLOW_UP
) -> tuple[Bitrix24Task, bool]:
    """(the task row, whether its workflow must be started) for a conversation the caller may
    see (the caller checked). A ready task is answered as it is; a failed one is asked again.
    Start the workflow after commit: `WorkflowStarter.start_bitrix24_task`."""
    if await connection_for(db, conversation) is None:
        raise Invalid(NOT_CONNECTED)
    await db.execute(
        insert(Bitrix24Task)
        .values(conversation_id=conversation.id, purpose=purpose, requested_by_operator_id=operator_id)
        .on_conflict_do_nothing(index_elements=["conversation_id", "purpose"])
    )
    task = await db.scalar(
        select(Bitrix24Task)
        .where(Bitrix24Task.conversation_id == conversation.id, Bitrix24Task.purpose == purpose)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if task.status == TaskStatus.READY:
        return task, False
    if task.status == TaskStatus.FAILED:
        task.status, task.error, task.updated_at = TaskStatus.PENDING, None, datetime.now(UTC)
    audit.record(db, "bitrix24.task_requested", operator_id=operator_id, conversation_id=conversation.id)
    return task, True


async def task_of(db: AsyncSession, conversation_id: int, purpose: str = FOLLOW_UP) -> Bitrix24Task | None:
    """What a page shows: pending, "Ready (B24)" with its link, or failed with why."""
    return await db.get(Bitrix24Task, (conversation_id, purpose))
