"""Bitrix24's REST API through an inbound webhook (`https://{portal}/rest/{user}/{code}/`): the two
calls a task needs, and its answers as typed results.

A small httpx client rather than fast-bitrix24 or b24pysdk: we make two calls per task, and both
libraries bring their own throttling and retries, where ours must be the rate slots shared by
every worker (infra/ratelimit.py) and Temporal's retries, with a look-up by XML_ID before any
second add (Bitrix24 has no idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

# Rate limit answers: retried after a pause (the portal's bucket leaks ~2 requests/s).
RETRY_AFTER_LIMIT = 1.0
RETRY_AFTER_TIME_LIMIT = 10.0  # OPERATION_TIME_LIMIT: the method was too busy for a while


class Bitrix24Error(Exception):
    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.permanent = permanent


def portal_of(webhook_url: str) -> str:
    """The portal's host: the key of its request budget."""
    return urlsplit(webhook_url).netloc.lower()


def task_link(webhook_url: str, responsible_id: int, task_id: str) -> str:
    parts = urlsplit(webhook_url)
    return f"{parts.scheme}://{parts.netloc}/company/personal/user/{responsible_id}/tasks/task/view/{task_id}/"


async def call(http: httpx.AsyncClient, webhook_url: str, method: str, params: dict[str, Any]) -> Any:
    url = webhook_url.rstrip("/") + f"/{method}.json"
    try:
        resp = await http.post(url, json=params, timeout=30)
    except httpx.TimeoutException:
        raise Bitrix24Error(f"{method}: timed out") from None
    except httpx.TransportError as exc:
        raise Bitrix24Error(f"{method}: {type(exc).__name__}") from None
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if resp.status_code == 200 and isinstance(body, dict) and "result" in body:
        return body["result"]
    code = body.get("error", "") if isinstance(body, dict) else ""
    reason = f"{method}: HTTP {resp.status_code} {code}".strip()
    if code == "QUERY_LIMIT_EXCEEDED" or resp.status_code == 503:
        raise Bitrix24Error(reason, retry_after=RETRY_AFTER_LIMIT)
    if code == "OPERATION_TIME_LIMIT" or resp.status_code == 429:
        raise Bitrix24Error(reason, retry_after=RETRY_AFTER_TIME_LIMIT)
    if resp.status_code >= 500:
        raise Bitrix24Error(reason)
    raise Bitrix24Error(f"{reason}: {body.get('error_description', '')}"[:500], permanent=True)


@dataclass(frozen=True)
class NewTask:
    title: str
    description: str
    responsible_id: int
    deadline: str | None  # ISO 8601
    xml_id: str  # our key, for the look-up on retry


async def find_task(http: httpx.AsyncClient, webhook_url: str, xml_id: str) -> str | None:
    result = await call(http, webhook_url, "tasks.task.list", {"filter": {"XML_ID": xml_id}, "select": ["ID"]})
    tasks = result.get("tasks", []) if isinstance(result, dict) else []
    return str(tasks[0]["id"]) if tasks else None


async def add_task(http: httpx.AsyncClient, webhook_url: str, task: NewTask) -> str:
    fields: dict[str, Any] = {
        "TITLE": task.title,
        "DESCRIPTION": task.description,
        "RESPONSIBLE_ID": task.responsible_id,
        "XML_ID": task.xml_id,
    }
    if task.deadline:
        fields["DEADLINE"] = task.deadline
    result = await call(http, webhook_url, "tasks.task.add", {"fields": fields})
    try:
        return str(result["task"]["id"])  # a string on the wire ("3711")
    except (KeyError, TypeError):
        raise Bitrix24Error("tasks.task.add: no task id in the answer", permanent=True) from None
