"""StaffNotifierWorkflow: one per staff notification rule (`staff-notify-{rule_id}`): a loop of
`notify_staff` activities, each of which waits up to `watch_seconds` for customer messages,
sends what it found as one coalesced Telegram message and hands back. Temporal per chat, never
per message; the history stays short through continue-as-new."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.staff_notifications import (
        NOTIFY_STAFF,
        STAFF_NOTIFIER_WORKFLOW,
        NotifierInput,
        NotifyOutcome,
        NotifyRequest,
    )

ROUNDS_PER_RUN = 500


@workflow.defn(name=STAFF_NOTIFIER_WORKFLOW)
class StaffNotifierWorkflow:
    @workflow.run
    async def run(self, params: NotifierInput) -> str:
        for _ in range(ROUNDS_PER_RUN):
            outcome = await workflow.execute_activity(
                NOTIFY_STAFF,
                NotifyRequest(rule_id=params.rule_id, watch_seconds=params.watch_seconds),
                result_type=NotifyOutcome,
                start_to_close_timeout=timedelta(seconds=params.watch_seconds + 90),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
            )
            if outcome.gone:
                return "deleted"
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(params)
