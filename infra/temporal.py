"""Temporal plumbing: the one place a client is built (always with the pydantic data converter)
and the one place workflows are started and signalled, by type name."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.bitrix24 import BITRIX24_TASK_WORKFLOW, TaskRequest
from domain.conversation import CONVERSATION_WORKFLOW, NOTIFY, ConversationInput, ConversationNotice
from domain.delivery import DELIVERY_WORKFLOW, DeliveryInput
from domain.files import FETCH_ATTACHMENTS_WORKFLOW, FetchAttachmentsInput
from domain.housekeeping import HOUSEKEEPING_WORKFLOW
from domain.ids import (
    HOUSEKEEPING_WORKFLOW_ID,
    PRESENCE_SWEEP_WORKFLOW_ID,
    WEBHOOK_CHECK_WORKFLOW_ID,
    bitrix24_task_workflow_id,
    conversation_workflow_id,
    delivery_workflow_id,
    files_workflow_id,
    poller_workflow_id,
    staff_notifier_workflow_id,
    webhook_endpoint_workflow_id,
)
from domain.polling import DEFAULT_POLL_TIMEOUT, POLLER_WORKFLOW, PollerInput
from domain.presence import PRESENCE_SWEEP_WORKFLOW, PresenceSweepInput
from domain.staff_notifications import STAFF_NOTIFIER_WORKFLOW, NotifierInput
from domain.webhook_check import WEBHOOK_CHECK_WORKFLOW, WebhookCheckInput
from domain.webhooks import WAKE, WEBHOOK_ENDPOINT_WORKFLOW, EndpointInput
from infra.settings import Settings


async def connect_temporal(settings: Settings) -> Client:
    if not settings.temporal_address:
        raise RuntimeError("TEMPORAL_ADDRESS is not set (make run sets it for the dev server)")
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


class TemporalGateway:
    """A lazily connected client: the api must start, and take webhooks, while Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.wait_for(connect_temporal(self._settings), timeout=5)
        return self._client

    async def check(self) -> None:
        """Raises when the server does not answer a health check within 2 s."""
        client = await self.client()
        await asyncio.wait_for(client.service_client.check_health(), timeout=2)


async def delivery_running(client: Client, message_id: int) -> bool:
    """Whether the latest run of delivery-{message_id} is still running (False when it ended in
    any way, or never started)."""
    try:
        description = await client.get_workflow_handle(delivery_workflow_id(message_id)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


class WorkflowStarter:
    """The one place our workflows are started and signalled, by their type names from `domain`:
    nothing outside worker.py imports `workflows/`. Each method knows its workflow's id and what
    starting it twice means."""

    def __init__(self, client: Client, task_queue: str, *, rpc_timeout: timedelta | None = None) -> None:
        self.client = client
        self.task_queue = task_queue
        self._rpc_timeout = rpc_timeout

    async def notify_conversation(self, conversation_id: int, notice: ConversationNotice) -> None:
        """Signal conversation-{id}, starting it first when it is not running."""
        await self.client.start_workflow(
            CONVERSATION_WORKFLOW,
            ConversationInput(conversation_id=conversation_id),
            id=conversation_workflow_id(conversation_id),
            task_queue=self.task_queue,
            start_signal=NOTIFY,
            start_signal_args=[notice],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # a closed conversation's workflow has finished; a new notice (rare: a late
            # operator action) starts a fresh run that reloads the state from the database
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            rpc_timeout=self._rpc_timeout,
        )

    async def start_delivery(self, message_id: int, *, retry: bool = False) -> None:
        """Start delivery-{message_id}; a second start of the same message is a no-op.

        `retry` (a supervisor's, from the dead-letter list) starts the id again once its previous
        run has finished. While that run is still open (it failed the message and has yet to
        close) this raises WorkflowAlreadyStartedError: the outbox row that asked stays and is
        tried again, so the retry is never lost. Starting it twice stays harmless: a run finding
        its message already sent or failed ends at once."""
        try:
            await self.client.start_workflow(
                DELIVERY_WORKFLOW,
                DeliveryInput(message_id=message_id, retry=retry),
                id=delivery_workflow_id(message_id),
                task_queue=self.task_queue,
                # delivery-{id} runs once: a relay retry must not send it twice. Only a
                # supervisor's retry of a failed message starts it again (the workflow itself
                # re-reads the status, so a doubled retry request still sends once).
                id_reuse_policy=(
                    WorkflowIDReusePolicy.ALLOW_DUPLICATE if retry else WorkflowIDReusePolicy.REJECT_DUPLICATE
                ),
                execution_timeout=timedelta(days=3),
                rpc_timeout=self._rpc_timeout,
            )
        except WorkflowAlreadyStartedError:
            if retry:
                raise

    async def start_fetch_attachments(self, message_id: int) -> None:
        """Start files-{message_id}; a second start of the same message is a no-op."""
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self.client.start_workflow(
                FETCH_ATTACHMENTS_WORKFLOW,
                FetchAttachmentsInput(message_id=message_id),
                id=files_workflow_id(message_id),
                task_queue=self.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                rpc_timeout=self._rpc_timeout,
            )

    async def start_poller(self, inbox_id: int, *, poll_timeout: int = DEFAULT_POLL_TIMEOUT) -> str:
        """Start poller-{inbox_id} unless it runs already (then it is left as it is); returns its id."""
        workflow_id = poller_workflow_id(inbox_id)
        await self.client.start_workflow(
            POLLER_WORKFLOW,
            PollerInput(inbox_id=inbox_id, poll_timeout=poll_timeout),
            id=workflow_id,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=self._rpc_timeout,
        )
        return workflow_id

    async def poller_running(self, inbox_id: int) -> bool:
        """Whether poller-{inbox_id} runs now (the settings and health pages show it)."""
        try:
            described = await self.client.get_workflow_handle(poller_workflow_id(inbox_id)).describe(
                rpc_timeout=self._rpc_timeout or timedelta(seconds=5)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return described.status == WorkflowExecutionStatus.RUNNING

    async def wake_webhook_endpoint(self, endpoint_id: int) -> None:
        """Signal webhook-endpoint-{id} to look at its queue now, starting it when it is not
        running (a new endpoint, or one whose workflow ended)."""
        await self.client.start_workflow(
            WEBHOOK_ENDPOINT_WORKFLOW,
            EndpointInput(endpoint_id=endpoint_id),
            id=webhook_endpoint_workflow_id(endpoint_id),
            task_queue=self.task_queue,
            start_signal=WAKE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            rpc_timeout=self._rpc_timeout,
        )

    async def start_bitrix24_task(self, conversation_id: int, purpose: str) -> None:
        """Start b24-task-{id}-{purpose} unless it runs. After it finished, a new start runs again:
        only a request for a task that is not ready (a failed one) comes here."""
        await self.client.start_workflow(
            BITRIX24_TASK_WORKFLOW,
            TaskRequest(conversation_id=conversation_id, purpose=purpose),
            id=bitrix24_task_workflow_id(conversation_id, purpose),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            rpc_timeout=self._rpc_timeout,
        )

    async def start_staff_notifier(self, rule_id: int) -> None:
        """Start staff-notify-{rule_id} unless it runs."""
        await self.client.start_workflow(
            STAFF_NOTIFIER_WORKFLOW,
            NotifierInput(rule_id=rule_id),
            id=staff_notifier_workflow_id(rule_id),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            rpc_timeout=self._rpc_timeout,
        )

    async def start_singletons(self) -> None:
        """The housekeeping, webhook-check and presence-sweep workflows, one each, left alone when
        running."""
        await self.client.start_workflow(
            HOUSEKEEPING_WORKFLOW,
            id=HOUSEKEEPING_WORKFLOW_ID,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=self._rpc_timeout,
        )
        await self.client.start_workflow(
            WEBHOOK_CHECK_WORKFLOW,
            WebhookCheckInput(),
            id=WEBHOOK_CHECK_WORKFLOW_ID,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=self._rpc_timeout,
        )
        await self.client.start_workflow(
            PRESENCE_SWEEP_WORKFLOW,
            PresenceSweepInput(),
            id=PRESENCE_SWEEP_WORKFLOW_ID,
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            rpc_timeout=self._rpc_timeout,
        )
