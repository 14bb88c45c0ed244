"""Bitrix24 tasks from conversations ("Send to B24"): where a conversation's tasks go (its
inbox's connection, else its branch's), asking for one, and what a page shows of it.

Asking twice (a double click, a retried API call) is harmless: the task row is keyed by
(conversation, purpose), and so is its workflow (`b24-task-{id}-{purpose}`), which looks the
task up in Bitrix24 by our XML_ID before it adds one.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.bitrix24 import FOLLOW_UP, TaskStatus, valid_webhook_url
from domain.wording import N_
from infra.models import Bitrix24Connection, Bitrix24Task, Branch, Conversation, Inbox
from infra.security import CredentialBox
from services import audit
from services.errors import Invalid

NOT_CONNECTED = N_("Bitrix24 is not connected for this conversation's inbox or branch.")


async def connection_for(db: AsyncSession, conversation: Conversation) -> Bitrix24Connection | None:
    """The inbox's connection, else the branch's."""
    owners = [Bitrix24Connection.inbox_id == conversation.inbox_id]
    if conversation.branch_id is not None:
        owners.append(Bitrix24Connection.branch_id == conversation.branch_id)
    rows = (await db.scalars(select(Bitrix24Connection).where(or_(*owners)))).all()
    return next((c for c in rows if c.inbox_id is not None), None) or next(iter(rows), None)


class ConnectionInput(BaseModel):
    """A branch's or an inbox's portal as an admin gives it."""

    owner: str = Field(pattern=r"^(branch|inbox):\d{1,18}$", description="branch:<id> or inbox:<id>")
    webhook_url: str = Field(max_length=500)
    responsible_id: int = Field(ge=1, description="The Bitrix24 user the tasks are for.")
    deadline_hours: int = Field(default=24, ge=1, le=24 * 90)


async def connect(
    db: AsyncSession, box: CredentialBox, data: ConnectionInput, *, operator_id: int | None
) -> Bitrix24Connection:
    """Connect a branch or an inbox to a portal, replacing what it had."""
    kind, _, number = data.owner.partition(":")
    owner_id = int(number)
    if await db.get(Branch if kind == "branch" else Inbox, owner_id) is None:
        raise Invalid(N_("There is no such branch or inbox."), field="owner")
    if not valid_webhook_url(data.webhook_url):
        raise Invalid(
            N_("Paste the inbound webhook URL as Bitrix24 shows it: https://<portal>/rest/<user>/<code>/"),
            field="webhook_url",
        )
    column = Bitrix24Connection.branch_id if kind == "branch" else Bitrix24Connection.inbox_id
    connection = await db.scalar(select(Bitrix24Connection).where(column == owner_id))
    if connection is None:
        connection = Bitrix24Connection(**{f"{kind}_id": owner_id})
        db.add(connection)
    connection.webhook_url_encrypted = box.seal({"webhook_url": data.webhook_url.strip()})
    connection.responsible_id = data.responsible_id
    connection.deadline_hours = data.deadline_hours
    await db.flush()
    audit.record(
        db,
        "bitrix24.connected",
        operator_id=operator_id,
        details={"owner": data.owner, "responsible_id": data.responsible_id},
    )
    return connection


async def disconnect(db: AsyncSession, connection: Bitrix24Connection, *, operator_id: int | None) -> None:
    """Tasks already created stay in Bitrix24; asking for new ones there is refused with a reason."""
    audit.record(db, "bitrix24.disconnected", operator_id=operator_id, details={"connection_id": connection.id})
    await db.delete(connection)


async def request_task(
    db: AsyncSession,
    conversation: Conversation,
    *,
    operator_id: int | None,
    token_id: int | None = None,
    purpose: str = FOLLOW_UP,
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
    audit.record(
        db, "bitrix24.task_requested", operator_id=operator_id, token_id=token_id, conversation_id=conversation.id
    )
    return task, True


async def task_of(db: AsyncSession, conversation_id: int, purpose: str = FOLLOW_UP) -> Bitrix24Task | None:
    """What a page shows: pending, "Ready (B24)" with its link, or failed with why."""
    return await db.get(Bitrix24Task, (conversation_id, purpose))
