"""Workflows the web layer starts or wakes after its transaction committed. Waking an outgoing
webhook endpoint is a courtesy: the change is already kept, and the worker wakes every endpoint
on its start, so a Temporal failure here is logged, not shown."""

from __future__ import annotations

import logging

from starlette.requests import Request

from infra.temporal import WorkflowStarter

log = logging.getLogger(__name__)


async def starter(request: Request) -> WorkflowStarter:
    state = request.app.state
    return WorkflowStarter(await state.temporal.client(), state.settings.temporal_task_queue)


async def wake_webhook_endpoint(request: Request, endpoint_id: int) -> None:
    try:
        await (await starter(request)).wake_webhook_endpoint(endpoint_id)
    except Exception as exc:  # noqa: BLE001 - see the module's note
        log.warning("webhook endpoint %s: waking its workflow failed: %s", endpoint_id, type(exc).__name__)
