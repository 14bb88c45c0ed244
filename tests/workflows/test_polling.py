"""PollerWorkflow, WebhookCheckWorkflow and FetchAttachmentsWorkflow on the time-skipping
server, with stand-in activities of the same names."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.files import FETCH_ATTACHMENTS, FetchAttachmentsInput, FetchReport
from domain.polling import POLL_INBOX, PollerInput, PollOutcome, PollRequest
from domain.webhook_check import CHECK_WEBHOOKS, WebhookCheckInput, WebhookCheckReport
from workflows.files import FetchAttachmentsWorkflow
from workflows.polling import PollerWorkflow
from workflows.webhook_check import WebhookCheckWorkflow


class ScriptedPoller:
    """Polls `rounds` times, then says the inbox switched to webhook mode. The second round's
    first attempt fails as a dead provider would."""

    def __init__(self, rounds: int) -> None:
        self.rounds = rounds
        self.calls: list[tuple[int, int]] = []  # (inbox id, attempt)
        self.succeeded = 0

    def activity(self):
        @activity.defn(name=POLL_INBOX)
        async def poll_inbox(request: PollRequest) -> PollOutcome:
            attempt = activity.info().attempt
            self.calls.append((request.inbox_id, attempt))
            if self.succeeded == 1 and attempt == 1:
                raise ApplicationError("provider down", type="RetryableError")
            if self.succeeded >= self.rounds:
                return PollOutcome(keep_polling=False, stop_reason="inbox switched to webhook mode")
            self.succeeded += 1
            return PollOutcome(keep_polling=True, updates=2, events=2)

        return poll_inbox


async def test_poller_loops_continues_as_new_and_stops_when_told(time_skipping_env, task_queue):
    client = time_skipping_env.client
    script = ScriptedPoller(rounds=7)
    async with Worker(client, task_queue=task_queue, workflows=[PollerWorkflow], activities=[script.activity()]):
        handle = await client.start_workflow(
            PollerWorkflow.run,
            PollerInput(inbox_id=5, polls_per_run=3, poll_timeout=1),
            id=f"poller-{task_queue}",
            task_queue=task_queue,
        )
        first_run = handle.first_execution_run_id or handle.result_run_id
        assert await handle.result() == "inbox switched to webhook mode"
        desc = await handle.describe()
        history = await client.get_workflow_handle(handle.id, run_id=desc.run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        [last_input] = await client.data_converter.decode(started.input.payloads, [PollerInput])
    assert script.succeeded == 7
    # 7 polls + the stopping one, and the failed attempt was retried rather than skipped
    assert [a for _, a in script.calls].count(2) == 1 and len(script.calls) == 9
    assert {inbox for inbox, _ in script.calls} == {5}
    # 8 completed polls with 3 per run: the loop continued as new twice
    assert desc.run_id != first_run and desc.status == WorkflowExecutionStatus.COMPLETED
    assert last_input.polls_done == 6  # the count is carried across runs


async def test_webhook_check_runs_every_interval_and_survives_a_failing_pass(time_skipping_env, task_queue):
    client = time_skipping_env.client
    passes: list[int] = []

    @activity.defn(name=CHECK_WEBHOOKS)
    async def check_webhooks() -> WebhookCheckReport:
        passes.append(activity.info().attempt)
        if len(passes) <= 3:  # the whole first pass fails (3 attempts)
            raise ApplicationError("database away")
        return WebhookCheckReport(checked=1)

    async with Worker(client, task_queue=task_queue, workflows=[WebhookCheckWorkflow], activities=[check_webhooks]):
        handle = await client.start_workflow(
            WebhookCheckWorkflow.run,
            WebhookCheckInput(interval_seconds=600),
            id=f"webhook-check-{task_queue}",
            task_queue=task_queue,
        )
        try:
            await time_skipping_env.sleep(timedelta(minutes=25))
            desc = await handle.describe()
        finally:
            with suppress(RPCError):
                await handle.terminate()
    assert passes[:3] == [1, 2, 3]  # the failing pass was retried, then given up on
    assert len(passes) == 3 + 2  # and the next passes still came, 10 minutes apart
    assert desc.status == WorkflowExecutionStatus.RUNNING


async def test_fetch_attachments_retries_then_lets_the_activity_give_up(time_skipping_env, task_queue):
    client = time_skipping_env.client
    attempts: list[int] = []

    @activity.defn(name=FETCH_ATTACHMENTS)
    async def fetch_attachments(params: FetchAttachmentsInput) -> FetchReport:
        attempts.append(activity.info().attempt)
        if activity.info().attempt < params.max_attempts:
            raise ApplicationError("file host unavailable", type="RetryableError")
        return FetchReport(failed=1)  # the last attempt records the error itself

    async with Worker(
        client, task_queue=task_queue, workflows=[FetchAttachmentsWorkflow], activities=[fetch_attachments]
    ):
        report = await client.execute_workflow(
            FetchAttachmentsWorkflow.run,
            FetchAttachmentsInput(message_id=9, max_attempts=4),
            id=f"files-{task_queue}",
            task_queue=task_queue,
        )
    assert attempts == [1, 2, 3, 4]
    assert report == FetchReport(failed=1)
