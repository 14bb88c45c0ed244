"""DeliveryWorkflow: one per outgoing message (`delivery-{message_id}`, so a second start is
harmless). Sends through the conversation's own channel, in order per conversation.

Order: a delivery waits until the message before it in the same conversation is final (sent
or failed); the finishing delivery signals its successor. A re-check, rare and asking Temporal
whether the predecessor's delivery still runs, covers a predecessor that ended without a final
status (terminated, timed out): it no longer holds the chat. A message that failed for good
does not hold back the next.
Retries: retryable errors back off 1 s doubling to 10 min; a 429 waits exactly retry_after; a
send that raises (a missing file, credentials that no longer decrypt) is retried a bounded number
of times. The give-up time counts from the message's creation (from the run's start for a
supervisor's retry), waiting included: past it the message is failed and joins the dead-letter
list, whether it was sending or still waiting for its turn.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

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
# Waiting for the predecessor: its signal wakes us; a re-check 1 min after the wait began,
# doubling to every 10 min, finds one that ended without telling (a day of waiting is ~150
# re-checks, a few hundred history events; every 30 s it was ~17,000).
FIRST_RECHECK = timedelta(minutes=1)
MAX_RECHECK = timedelta(minutes=10)
UNBOUNDED_RECHECK = timedelta(seconds=30)  # runs started before BOUNDED_WAIT
# A send that raises instead of returning a provider outcome (a missing file, credentials that
# no longer decrypt, the database away) is tried this often, 1 s doubling to 1 min apart
# (~4 min in all), then the message is failed with the error as its reason.
SEND_ATTEMPTS = 10
ACTIVITY = {
    # the send waits for its rate slot (<= 20 s) and the provider (<= 30 s)
    "start_to_close_timeout": timedelta(seconds=90),
    # only infrastructure failures raise (provider outcomes are returned): keep trying
    "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
}
# The send heartbeats while it waits and talks to the provider: a worker that dies mid-send is
# noticed in seconds, not after the 90 s above, and the chat behind it does not wait that long.
SEND_ACTIVITY = ACTIVITY | {"heartbeat_timeout": timedelta(seconds=15)}
BOUNDED_SEND_ACTIVITY = SEND_ACTIVITY | {
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1), maximum_attempts=SEND_ATTEMPTS
    )
}
# Reading the plan is one short query: a local activity, so each reply costs the server one
# activity task (the send) instead of two. The send stays a regular activity: it waits for its
# rate slot and the provider, and heartbeats. Runs recorded before this replay the old way.
LOCAL_PREPARE = "local-prepare"
# Give-up counted from the message's creation, a rare re-check that releases a successor whose
# predecessor's delivery ended, bounded send attempts. Runs started before keep the old schedule.
BOUNDED_WAIT = "bounded-wait"


@workflow.defn(name=DELIVERY_WORKFLOW)
class DeliveryWorkflow:
    def __init__(self) -> None:
        self._predecessor_done = False

    @workflow.signal(name=PREDECESSOR_DONE)
    def predecessor_done(self) -> None:
        self._predecessor_done = True

    @workflow.run
    async def run(self, params: DeliveryInput) -> str:
        if not workflow.patched(BOUNDED_WAIT):
            return await self._run_unbounded(params)
        started = workflow.now()
        plan = await self._plan(params.message_id, verify_predecessor=False)
        origin = started if params.retry or plan.created_at is None else plan.created_at
        give_up_at = origin + plan.give_up_after
        plan = await self._wait_for_predecessor(params.message_id, plan, give_up_at)
        if plan.final:
            return "final"
        hours = plan.give_up_after / timedelta(hours=1)
        if plan.predecessor_id is not None:
            result = await self._fail(
                params.message_id,
                f"not sent within {hours:g} h: message {plan.predecessor_id} before it was still pending",
            )
        elif workflow.now() >= give_up_at:
            result = await self._fail(params.message_id, f"not sent within {hours:g} h: its turn came too late")
        else:
            result = await self._send(params.message_id, give_up_at)
        if result.successor_id is not None:
            await self._tell_successor(result.successor_id)
        return result.outcome.value

    async def _wait_for_predecessor(self, message_id: int, plan: DeliveryPlan, give_up_at: datetime) -> DeliveryPlan:
        """Until no earlier message of the chat is pending, or the give-up time: the plan then."""
        recheck = FIRST_RECHECK
        while not plan.final and plan.predecessor_id is not None:
            left = give_up_at - workflow.now()
            if left <= timedelta(0):
                break
            try:
                await workflow.wait_condition(lambda: self._predecessor_done, timeout=min(recheck, left))
                told = True
            except TimeoutError:
                told = False
            self._predecessor_done = False
            recheck = FIRST_RECHECK if told else min(recheck * 2, MAX_RECHECK)
            # told: the predecessor is final. Not told: ask whether its delivery still runs.
            plan = await self._plan(message_id, verify_predecessor=not told)
        return plan

    async def _send(self, message_id: int, give_up_at: datetime) -> SendOutcome:
        backoff = FIRST_BACKOFF
        sent_parts: list[str] = []
        slot_at = None
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await workflow.execute_activity(
                    SEND_MESSAGE,
                    SendRequest(message_id=message_id, attempt=attempt, sent_parts=sent_parts, slot_at=slot_at),
                    result_type=SendOutcome,
                    **BOUNDED_SEND_ACTIVITY,
                )
            except ActivityError as exc:
                return await self._fail(message_id, f"the send failed {SEND_ATTEMPTS} times: {_describe(exc)}")
            sent_parts, slot_at = result.sent_parts, result.slot_at
            if result.outcome in (Outcome.SENT, Outcome.FAILED):
                return result
            if result.outcome == Outcome.MIGRATED:
                continue  # the activity moved the identity to the new chat: send there now
            if result.outcome == Outcome.RATE_LIMITED and result.retry_after is not None:
                wait = timedelta(seconds=result.retry_after)  # exactly what the provider asked
            else:
                wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            if workflow.now() + wait > give_up_at:
                return await self._fail(message_id, f"gave up after {attempt} attempts: {result.reason}")
            await workflow.sleep(wait)

    async def _plan(self, message_id: int, *, verify_predecessor: bool) -> DeliveryPlan:
        return await workflow.execute_local_activity(
            PREPARE_DELIVERY,
            PrepareRequest(message_id=message_id, verify_predecessor=verify_predecessor),
            result_type=DeliveryPlan,
            **ACTIVITY,
        )

    async def _fail(self, message_id: int, reason: str) -> SendOutcome:
        return await workflow.execute_activity(
            FAIL_DELIVERY, FailRequest(message_id=message_id, reason=reason), result_type=SendOutcome, **ACTIVITY
        )

    async def _tell_successor(self, message_id: int) -> None:
        handle = workflow.get_external_workflow_handle(delivery_workflow_id(message_id))
        with contextlib.suppress(ApplicationError):  # not started yet: it will find this message final
            await handle.signal(PREDECESSOR_DONE)

    # -- runs started before BOUNDED_WAIT: replayed exactly as they were recorded ----------------

    async def _run_unbounded(self, params: DeliveryInput) -> str:
        plan = await self._prepare(params.message_id)
        while not plan.final and plan.predecessor_id is not None:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._predecessor_done, timeout=UNBOUNDED_RECHECK)
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
                continue
            if result.outcome == Outcome.RATE_LIMITED and result.retry_after is not None:
                wait = timedelta(seconds=result.retry_after)
            else:
                wait, backoff = backoff, min(backoff * 2, MAX_BACKOFF)
            if workflow.now() + wait > give_up_at:
                result = await self._fail(params.message_id, f"gave up after {attempt} attempts: {result.reason}")
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


def _describe(exc: ActivityError) -> str:
    """The error the send raised last, as `Type: message`."""
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type:
        return f"{cause.type}: {cause.message}"
    return str(cause or exc)
