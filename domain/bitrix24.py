"""Contracts of Bitrix24TaskWorkflow: one per (conversation, purpose), id `b24-task-{id}-{purpose}`,
so a double click or a retried request starts nothing twice."""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

from pydantic import BaseModel

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
BITRIX24_TASK_WORKFLOW = "Bitrix24TaskWorkflow"
CREATE_BITRIX24_TASK = "create_bitrix24_task"
FAIL_BITRIX24_TASK = "fail_bitrix24_task"

FOLLOW_UP = "follow_up"  # "Send to B24": a task to follow the conversation up
# a rate-limit answer: the activity asks Temporal to retry after the pause it names
RATE_LIMITED_ERROR = "Bitrix24RateLimited"
REFUSED_ERROR = "Bitrix24Refused"  # 4xx: no retry changes it


class TaskStatus(StrEnum):
    PENDING = "pending"
    READY = "ready"  # "Ready (B24)": the task exists, its id and link are stored
    FAILED = "failed"


class TaskRequest(BaseModel):
    conversation_id: int
    purpose: str = FOLLOW_UP


class TaskFailure(BaseModel):
    conversation_id: int
    purpose: str
    reason: str


def xml_id(conversation_id: int, purpose: str) -> str:
    """Our key in the task's XML_ID: a retry finds the task an earlier attempt created."""
    return f"switchboard-{conversation_id}-{purpose}"


def valid_webhook_url(url: str) -> bool:
    """An inbound-webhook URL as Bitrix24 shows it: https://{portal}/rest/{user id}/{code}/."""
    parts = urlsplit(url.strip())
    path = [p for p in parts.path.split("/") if p]
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and len(path) == 3
        and path[0] == "rest"
        and path[1].isdigit()
    )
