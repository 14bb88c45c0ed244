""" "Send to B24" through the API: ask for the conversation's Bitrix24 task and read how it stands.
Asking again is harmless (one task per conversation and purpose; its workflow looks the task up
in Bitrix24 before adding one); a conversation without a connection is refused with the reason."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from domain.bitrix24 import FOLLOW_UP
from infra.models import Bitrix24Task
from services import bitrix24
from services.conversations import acting_on
from services.visibility import integration, load_conversation
from web.api_v1.auth import TokenDep, WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.idempotency import OnceDep
from web.api_v1.paging import IdPath
from web.deps import SessionDep
from web.problems import ApiError
from web.workflows import starter

router = APIRouter(prefix="/conversations/{conversation_id:int}/bitrix24-task", tags=["bitrix24"])


class TaskOut(BaseModel):
    conversation_id: int
    status: Literal["none", "pending", "ready", "failed"] = Field(
        description="none: never asked; pending: being created; ready: created (task_url); failed: see error."
    )
    task_id: str | None
    task_url: str | None
    error: str | None
    updated_at: datetime | None


def _out(conversation_id: int, task: Bitrix24Task | None) -> TaskOut:
    if task is None:
        return TaskOut(
            conversation_id=conversation_id, status="none", task_id=None, task_url=None, error=None, updated_at=None
        )
    return TaskOut(
        conversation_id=conversation_id,
        status=task.status,
        task_id=task.task_id,
        task_url=task.task_url,
        error=task.error,
        updated_at=task.updated_at,
    )


@router.get("", summary="Get the conversation's Bitrix24 task")
async def get(conversation_id: IdPath, token: TokenDep, db: SessionDep) -> TaskOut:
    await load_conversation(db, integration(token), conversation_id)
    return _out(conversation_id, await bitrix24.task_of(db, conversation_id))


@router.post("", status_code=202, summary="Send to B24", responses=WRITE_ERRORS)
async def send(conversation_id: IdPath, request: Request, token: WriterDep, db: SessionDep, once: OnceDep) -> TaskOut:
    """Creates a task in the Bitrix24 portal of the conversation's inbox (else its branch): a
    summary, a link back, the responsible user and deadline from Settings -> Bitrix24. Answers at
    once with the task as it stands; read it again (or open the conversation) for "ready"."""
    conversation = await acting_on(db, token, conversation_id)
    # asked again under the same key, the task is still looked at: a start that failed is retried
    first = await once.replay(None)
    task, start = await bitrix24.request_task(db, conversation, operator_id=None, token_id=token.id)
    response = first or await once.answer(202, _out(conversation_id, task))
    await db.commit()
    if start:
        try:
            await (await starter(request)).start_bitrix24_task(conversation_id, FOLLOW_UP)
        except Exception as exc:
            raise ApiError(
                503, "The task is queued but could not be started: ask again.", headers={"Retry-After": "5"}
            ) from exc
    return response
