"""PresenceSweepWorkflow: one instance (`presence-sweep`) that takes offline, every pass, the
operators with no cabinet tab open for longer than the cabinet's setting."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.presence import PRESENCE_SWEEP_WORKFLOW, TAKE_ABSENT_OFFLINE, PresenceSweepInput


@workflow.defn(name=PRESENCE_SWEEP_WORKFLOW)
class PresenceSweepWorkflow:
    @workflow.run
    async def run(self, params: PresenceSweepInput) -> None:
        try:
            await workflow.execute_activity(
                TAKE_ABSENT_OFFLINE,
                result_type=list[int],
                start_to_close_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3),
            )
        except ActivityError as err:
            # the next pass tries again; one bad pass must not end the sweeps for good
            workflow.logger.warning("presence sweep failed: %s", err.cause or err)
        await workflow.sleep(timedelta(seconds=params.interval_seconds))
        # a fresh history per pass keeps it tiny
        workflow.continue_as_new(params)
