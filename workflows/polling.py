"""PollerWorkflow: one per inbox in long-polling mode (`poller-{inbox_id}`).

Long polling is the default when the inbox has no public webhook URL. Each round is one
`poll_inbox` activity: fetch a batch from the provider, ingest every event (idempotent on the
provider's message id), then store the new cursor. A worker killed in the middle re-fetches the
same batch on retry and ingest drops the repeats: nothing is lost, nothing is stored twice.
The loop ends when the inbox is deactivated or switched to webhook mode.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain.polling import POLL_INBOX, POLLER_WORKFLOW, POLLS_QUERY, PollerInput, PollOutcome, PollRequest


@workflow.defn(name=POLLER_WORKFLOW)
class PollerWorkflow:
    def __init__(self) -> None:
        self._polls = 0

    @workflow.query(name=POLLS_QUERY)
    def polls(self) -> int:
        return self._polls

    @workflow.run
    async def run(self, params: PollerInput) -> str:
        self._polls = params.polls_done
        request = PollRequest(
            inbox_id=params.inbox_id,
            timeout=params.poll_timeout,
            heartbeat_every=max(params.heartbeat_timeout_seconds / 3, 0.2),
        )
        for _ in range(params.polls_per_run):
            outcome = await workflow.execute_activity(
                POLL_INBOX,
                request,
                result_type=PollOutcome,
                # the poll itself plus ingesting up to a full batch
                start_to_close_timeout=timedelta(seconds=params.poll_timeout + 120),
                heartbeat_timeout=timedelta(seconds=params.heartbeat_timeout_seconds),
                # the provider or the database may be away for long: keep trying, slowly
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(minutes=2),
                ),
            )
            self._polls += 1
            if not outcome.keep_polling:
                return outcome.stop_reason or "stopped"
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(params.model_copy(update={"polls_done": self._polls}))
