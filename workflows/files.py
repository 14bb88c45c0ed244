"""FetchAttachmentsWorkflow: one per inbound message with files (`files-{message_id}`).

Downloads what the customer sent into our content-addressed store. A file that can never be
fetched (too large, gone) gets its `fetch_error` at once; a provider or network hiccup is
retried with growing delays, and on the last attempt is recorded as the error instead.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.files import FETCH_ATTACHMENTS, FETCH_ATTACHMENTS_WORKFLOW, FetchAttachmentsInput, FetchReport


@workflow.defn(name=FETCH_ATTACHMENTS_WORKFLOW)
class FetchAttachmentsWorkflow:
    @workflow.run
    async def run(self, params: FetchAttachmentsInput) -> FetchReport:
        return await workflow.execute_activity(
            FETCH_ATTACHMENTS,
            params,
            result_type=FetchReport,
            # up to 20 MB from the provider's file host
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=params.retry_initial_seconds),
                backoff_coefficient=2.0,
                maximum_interval=timedelta(minutes=10),
                maximum_attempts=params.max_attempts,
            ),
        )
