"""Periodic clean-up: expired cabinet sessions and delivery attempts past their retention, and
the sweep of outgoing messages left pending past their give-up time with no delivery running."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.delivery import FAIL_STUCK_DELIVERIES
    from domain.housekeeping import HOUSEKEEPING_WORKFLOW, PURGE_EXPIRED

# runs recorded before the sweep existed replay without it
DELIVERY_SWEEP = "delivery-sweep"


@workflow.defn(name=HOUSEKEEPING_WORKFLOW)
class HousekeepingWorkflow:
    @workflow.run
    async def run(self) -> None:
        # one pass per hour; a fresh history each pass keeps it tiny
        await workflow.execute_activity(PURGE_EXPIRED, start_to_close_timeout=timedelta(minutes=5))
        if workflow.patched(DELIVERY_SWEEP):
            # a pass that keeps failing is left to the next hour rather than holding up the clean-up
            with contextlib.suppress(ActivityError):
                await workflow.execute_activity(
                    FAIL_STUCK_DELIVERIES,
                    start_to_close_timeout=timedelta(minutes=5),
                    heartbeat_timeout=timedelta(minutes=1),
                    retry_policy=RetryPolicy(maximum_attempts=3),
                )
        await workflow.sleep(timedelta(hours=1))
        workflow.continue_as_new()
