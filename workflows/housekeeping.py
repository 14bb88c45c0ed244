"""Periodic clean-up: expired cabinet sessions and delivery attempts past their retention."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.housekeeping import HOUSEKEEPING_WORKFLOW, PURGE_EXPIRED


@workflow.defn(name=HOUSEKEEPING_WORKFLOW)
class HousekeepingWorkflow:
    @workflow.run
    async def run(self) -> None:
        # one pass per hour; a fresh history each pass keeps it tiny
        await workflow.execute_activity(PURGE_EXPIRED, start_to_close_timeout=timedelta(minutes=5))
        await workflow.sleep(timedelta(hours=1))
        workflow.continue_as_new()
