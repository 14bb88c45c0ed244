"""WebhookEndpointWorkflow: one per outgoing-webhook endpoint (`webhook-endpoint-{id}`), for as
long as the endpoint exists. Temporal per endpoint, never per event: inbound alone writes
hundreds of events a second, far past what the embedded server starts or signals.

Each turn is one `drain_webhook_queue` activity, which delivers what is due, in order per
conversation, and waits up to `watch_seconds` for new rows (the realtime log's NOTIFY wakes it)
before handing back. The retry times it answers with are on this workflow's clock: with
`watch_seconds` 0 the workflow itself sleeps until the next one is due (or a `wake` signal).
A paused endpoint sleeps until it is resumed or redelivered (both send `wake`), checking now
and then in case a signal was lost. The history stays short through continue-as-new.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.webhooks import (
        DRAIN_WEBHOOK_QUEUE,
        WAKE,
        WEBHOOK_ENDPOINT_WORKFLOW,
        DrainOutcome,
        DrainRequest,
        EndpointInput,
        EndpointState,
    )

PAUSED_RECHECK = timedelta(hours=1)
IDLE_RECHECK = timedelta(minutes=10)  # only with watch_seconds 0: nothing queued at all
DRAINS_PER_RUN = 500


@workflow.defn(name=WEBHOOK_ENDPOINT_WORKFLOW)
class WebhookEndpointWorkflow:
    def __init__(self) -> None:
        self._woken = False

    @workflow.signal(name=WAKE)
    def wake(self) -> None:
        self._woken = True

    @workflow.run
    async def run(self, params: EndpointInput) -> str:
        drains = 0
        while drains < DRAINS_PER_RUN and not workflow.info().is_continue_as_new_suggested():
            self._woken = False
            outcome = await workflow.execute_activity(
                DRAIN_WEBHOOK_QUEUE,
                DrainRequest(endpoint_id=params.endpoint_id, now=workflow.now(), watch_seconds=params.watch_seconds),
                result_type=DrainOutcome,
                start_to_close_timeout=timedelta(seconds=params.watch_seconds + 120),
                heartbeat_timeout=timedelta(seconds=30),
                # only the database or the worker failing raises (receivers' answers are returned)
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
            )
            drains += 1
            if outcome.state == EndpointState.GONE:
                return "deleted"
            if outcome.state == EndpointState.PAUSED:
                await self._sleep(PAUSED_RECHECK)
            elif params.watch_seconds <= 0 and not (outcome.delivered or outcome.failed):
                due = outcome.next_due
                await self._sleep(due - workflow.now() if due is not None else IDLE_RECHECK)
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(params.model_copy(update={"drains_done": params.drains_done + drains}))

    async def _sleep(self, longest: timedelta) -> None:
        if longest > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._woken, timeout=longest)
