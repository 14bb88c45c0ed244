"""DeliveryWorkflow: one per outgoing message (`delivery-{message_id}`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.delivery import DeliveryInput

SEND = "send_message"


@workflow.defn
class DeliveryWorkflow:
    @workflow.run
    async def run(self, params: DeliveryInput) -> str:
        return await workflow.execute_activity(
            SEND,
            params.message_id,
            result_type=str,
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=10)),
        )
