"""Periodic clean-up: expired cabinet sessions and delivery attempts past their retention."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow



@workflow.defn
class HousekeepingWorkflow:
    @workflow.run
    async def run(self) -> None:
        # one pass per hour; a fresh history each pass keeps it tiny
        await workflow.execute_activity(
            "purge_expired", start_to_close_timeout=timedelta(minutes=5)
        )
        await workflow.sleep(timedelta(hours=1))
        workflow.continue_as_new()
