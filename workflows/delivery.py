"""DeliveryWorkflow: one per outgoing message (`delivery-{message_id}`, so a second start is
harmless). Sends through the conversation's own channel, in order per conversation.

Order: a delivery waits until the message before it in the same conversation is final (sent
or failed); the finishing delivery signals its successor, and a periodic re-check covers a
signal that found no workflow yet. A message that failed for good does not hold back the next.
Retries: retryable errors back off 1 s doubling to 10 min; a 429 waits exactly retry_after;
after `give_up_after` (24 h) the message is failed and joins the dead-letter list.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.delivery import (
        DELIVERY_WORKFLOW,
        FAIL_DELIVERY,
        PREDECESSOR_DONE,
        PREPARE_DELIVERY,
        SEND_MESSAGE,
        DeliveryInput,
        DeliveryPlan,
        FailRequest,
        Outcome,
        PrepareRequest,
        SendOutcome,
        SendRequest,
    )
    from domain.ids import delivery_workflow_id

FIRST_BACKOFF = timedelta(seconds=1)
MAX_BACKOFF = timedelta(minutes=10)
PREDECESSOR_RECHECK = timedelta(seconds=30)
ACTIVITY = {
    # the send waits for its rate slot (<= 20 s) and the provider (<= 30 s)
    "start_to_close_timeout": timedelta(seconds=90),
    # only infrastructure failures raise (provider outcomes are returned): keep trying
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
}
# The send heartbeats while it waits and talks to the provider: a worker that dies mid-send is
# noticed in seconds, not after the 90 s above, and the chat behind it does not wait that long.
SEND_ACTIVITY = ACTIVITY | {"heartbeat_timeout": timedelta(seconds=15)}
# Reading the plan is one short query: a local activity, so each reply costs the server one
# activity task (the send) instead of two. The send stays a regular activity: it waits for its
# rate slot and the provider, and heartbeats. Runs recorded before this replay the old way.
LOCAL_PREPARE = "local-prepare"


@workflow.defn(name=DELIVERY_WORKFLOW)
class DeliveryWorkflow:
    def __init__(self) -> None:
        self._predecessor_done = False

    @workflow.signal(name=PREDECESSOR_DONE)
    def predecessor_done(self) -> None:
        self._predecessor_done = True

    @workflow.run
    async def run(self, params: DeliveryInput) -> str:
        plan = await self._prepare(params.message_id)
        while not plan.final and plan.predecessor_id is not None:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._predecessor_done, timeout=PREDECESSOR_RECHECK)
            self._predecessor_done = False
            plan = await self._prepare(params.message_id)
        if plan.final:
            return "final"

        give_up_at = workflow.now() + plan.give_up_after
        backoff = FIRST_BACKOFF
        sent_parts: list[str] = []
        slot_at = None
        attempt = 0
        while True:
            attempt += 1
            result = await workflow.execute_activity(
                SEND_MESSAGE,
                SendRequest(message_id=params.message_id, attempt=attempt, sent_parts=sent_parts, slot_at=slot_at),
                result_type=SendOutcome,
                **SEND_ACTIVITY,
            )
            sent_parts, slot_at = result.sent_parts, result.slot_at
            if result.outcome in (Outcome.SENT, Outcome.FAILED):
                break
            if result.outcome == Outcome.MIGRATED:
                continue  # the activity moved the identity to the new chat: send there now
            if result.outcome == Outcome.RATE_LIMITED and result.retry_after is not None:
                wait = timedelta(seconds=result.retry_after)  # exactly what the provider asked
            else:
                wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            if workflow.now() + wait > give_up_at:
                result = await workflow.execute_activity(
                    FAIL_DELIVERY,
                    FailRequest(
                        message_id=params.message_id, reason=f"gave up after {attempt} attempts: {result.reason}"
                    ),
                    result_type=SendOutcome,
                    **ACTIVITY,
                )
                break
            await workflow.sleep(wait)

        if result.successor_id is not None:
            await self._tell_successor(result.successor_id)
        return result.outcome.value

    async def _prepare(self, message_id: int) -> DeliveryPlan:
        request = PrepareRequest(message_id=message_id)
        if workflow.patched(LOCAL_PREPARE):
            return await workflow.execute_local_activity(
                PREPARE_DELIVERY, request, result_type=DeliveryPlan, **ACTIVITY
            )
        return await workflow.execute_activity(PREPARE_DELIVERY, request, result_type=DeliveryPlan, **ACTIVITY)

    async def _tell_successor(self, message_id: int) -> None:
        handle = workflow.get_external_workflow_handle(delivery_workflow_id(message_id))
        with contextlib.suppress(ApplicationError):  # not started yet: it will find this message final
            await handle.signal(PREDECESSOR_DONE)
