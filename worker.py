"""Temporal worker: registers every workflow and activity. `python worker.py`."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket

import httpx
import uvloop
from prometheus_client import start_http_server
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.bitrix24 import Bitrix24Activities
from activities.channels import ChannelActivities
from activities.conversation import ConversationActivities
from activities.delivery import DeliveryActivities
from activities.housekeeping import HousekeepingActivities
from activities.presence import PresenceActivities
from activities.staff_notifications import StaffNotificationActivities
from activities.webhooks import WebhookActivities
from channels.base import Polling
from channels.registry import build_adapters, supporting
from infra.db import asyncpg_dsn, make_engine, make_sessionmaker, warm_pool
from infra.event_log import Wakeups
from infra.logs import configure as configure_logging
from infra.security import CredentialBox
from infra.settings import Settings, get_settings
from infra.temporal import WorkflowStarter, connect_temporal
from services.health import heartbeat_forever
from services.inboxes import ensure_pollers
from services.outbox import OutboxRelay, listen_for_wakeups
from services.staff_notifications import rules as staff_notification_rules
from services.webhooks import endpoint_ids
from workflows.bitrix24 import Bitrix24TaskWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.files import FetchAttachmentsWorkflow
from workflows.housekeeping import HousekeepingWorkflow
from workflows.polling import PollerWorkflow
from workflows.presence import PresenceSweepWorkflow
from workflows.staff_notifications import StaffNotifierWorkflow
from workflows.webhook_check import WebhookCheckWorkflow
from workflows.webhooks import WebhookEndpointWorkflow

log = logging.getLogger("switchboard.worker")

WORKFLOWS = [
    ConversationWorkflow,
    DeliveryWorkflow,
    HousekeepingWorkflow,
    PollerWorkflow,
    WebhookCheckWorkflow,
    PresenceSweepWorkflow,
    FetchAttachmentsWorkflow,
    WebhookEndpointWorkflow,
    Bitrix24TaskWorkflow,
    StaffNotifierWorkflow,
]


def build_activities(factory, settings: Settings, http: httpx.AsyncClient) -> list:
    """Activity callables with their dependencies injected; nothing connects at import."""
    if settings.credentials_key is None:
        raise RuntimeError("CREDENTIALS_KEY is not set (make run generates one into DATA_DIR)")
    box = CredentialBox(settings.credentials_key.get_secret_value())
    adapters = build_adapters(http, settings)
    wakeups = Wakeups(asyncpg_dsn(settings.database_url))
    return [
        *ConversationActivities(factory, settings).all(),
        *DeliveryActivities(factory, adapters, box, settings).all(),
        HousekeepingActivities(factory, settings).purge_expired,
        PresenceActivities(factory).take_absent_offline,
        *ChannelActivities(factory, adapters, box, settings).all(),
        *Bitrix24Activities(factory, box, settings, http).all(),
        *WebhookActivities(factory, box, settings, wakeups).all(),
        *StaffNotificationActivities(factory, adapters, box, settings, wakeups).all(),
    ]


def build_worker(client: Client, settings: Settings, activities: list) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        activities=activities,
        # measured: the default pollers starve new workflows on the dev server
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(20),
        max_cached_workflows=5000,
        # long-polling inboxes each hold a slot for ~25 s; deliveries must still find one
        max_concurrent_activities=300,
        # The sandbox re-imports a workflow's non-passthrough modules for every new run: that was
        # a sixth of the worker's CPU at 15 new conversations/s. Workflows import only the pure
        # `domain` package and temporalio (tests/unit/test_boundaries.py checks it, transitively),
        # so sharing those modules is safe; the runtime checks on each call still apply.
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
        ),
    )


async def connect_with_retry(settings: Settings) -> Client:
    delay = 0.5
    while True:
        try:
            return await connect_temporal(settings)
        except Exception as exc:  # noqa: BLE001 - keep trying: Temporal may start after us
            log.warning("Temporal not reachable at %s (%s); retrying", settings.temporal_address, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10)


async def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)
    if settings.worker_metrics_port:
        # the worker's own counters (sends, webhook deliveries, escalations); the database
        # gauges are the api's /metrics
        try:
            start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host)
        except OSError as exc:  # a second worker on the same machine: it works, unscraped
            log.warning("worker metrics not served on port %s: %s", settings.worker_metrics_port, exc)
    engine = make_engine(settings)
    await warm_pool(engine, settings.db_pool_size)
    client = await connect_with_retry(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    factory = make_sessionmaker(engine)
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, connect=10)) as http:
        worker = build_worker(client, settings, build_activities(factory, settings, http))
        # the outbox relay lives beside the worker: it needs the same Temporal client
        relay = OutboxRelay(factory, client, settings.temporal_task_queue)
        me = f"{socket.gethostname()}:{os.getpid()}"
        background = [
            asyncio.create_task(relay.run_forever(stop)),
            asyncio.create_task(listen_for_wakeups(settings.database_url, relay, stop)),
            # the health page's "is a worker running": a stamp every few seconds
            asyncio.create_task(heartbeat_forever(factory, stop, worker=me, task_queue=settings.temporal_task_queue)),
        ]
        async with worker:
            starter = WorkflowStarter(client, settings.temporal_task_queue)
            await starter.start_singletons()
            # inboxes without a public webhook URL are long-polled, one poller workflow each
            await ensure_pollers(factory, supporting(Polling), starter)
            # every outgoing-webhook endpoint and staff notification rule has its workflow
            async with factory() as db:
                for endpoint_id in await endpoint_ids(db):
                    await starter.wake_webhook_endpoint(endpoint_id)
                for rule in await staff_notification_rules(db):
                    await starter.start_staff_notifier(rule.id)
            # Measured: full collections of everything loaded at start (SDK, models, adapters) paused
            # the event loop 120-200 ms every ~10 s, and every send whose rate slot fell in a pause
            # left late, bunched with the next ones. Frozen, they are no longer scanned.
            gc.freeze()
            log.info("worker running on task queue %s", settings.temporal_task_queue)
            await stop.wait()
        await asyncio.gather(*background, return_exceptions=True)
    await engine.dispose()


if __name__ == "__main__":
    # uvloop (which uvicorn already brings): the worker's own socket and timer work costs less
    uvloop.run(main())
    # the SDK can abort at interpreter shutdown (STACK-NOTES); leave without it
    os._exit(0)
