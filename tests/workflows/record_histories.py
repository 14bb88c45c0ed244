"""Re-record the saved histories the replay test checks:
`python -m tests.workflows.record_histories [NAME ...]` with names from RECORDERS below; all of them
without arguments.

Run it after a deliberate, versioned (`workflow.patched`) change of a workflow, and keep the
earlier files under a versioned name: the workflow must replay them as long as such runs may be
alive (the `*_v1_regular_activities.json` files predate the local-activity patches,
`delivery_v2_local_prepare.json` the bounded wait, `housekeeping_v1.json` the delivery sweep,
the conversation's v2 the reported action failures, settings notices and close-adopts-reopen,
its v3 snoozes and an operator's reopen).
"""

import asyncio
import logging
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from temporalio import activity
from temporalio.client import WorkflowExecutionStatus
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.bitrix24 import CREATE_BITRIX24_TASK, FAIL_BITRIX24_TASK, TaskFailure, TaskRequest
from domain.conversation import ACTION_REFUSED, TRANSFER_CONVERSATION, ConversationNotice, InboxPolicy, NoticeKind
from domain.delivery import FAIL_STUCK_DELIVERIES, DeliveryInput, Outcome, SendOutcome
from domain.enums import ConversationStatus
from domain.files import FETCH_ATTACHMENTS, FetchAttachmentsInput, FetchReport
from domain.housekeeping import PURGE_EXPIRED
from domain.polling import PollerInput
from domain.presence import TAKE_ABSENT_OFFLINE, PresenceSweepInput
from domain.staff_notifications import NOTIFY_STAFF, NotifierInput, NotifyOutcome, NotifyRequest
from domain.webhook_check import CHECK_WEBHOOKS, WebhookCheckInput, WebhookCheckReport
from domain.webhooks import DRAIN_WEBHOOK_QUEUE, DrainOutcome, DrainRequest, EndpointInput, EndpointState
from setup.devstack import venv_binary
from tests.conftest import register_search_attributes
from tests.workflows.delivery_chat import Chat, Row
from tests.workflows.standins import Branch
from tests.workflows.test_conversation import conversation, eventually
from tests.workflows.test_polling import ScriptedPoller
from workflows.bitrix24 import Bitrix24TaskWorkflow
from workflows.conversation import ConversationWorkflow
from workflows.delivery import DeliveryWorkflow
from workflows.files import FetchAttachmentsWorkflow
from workflows.housekeeping import HousekeepingWorkflow
from workflows.polling import PollerWorkflow
from workflows.presence import PresenceSweepWorkflow
from workflows.staff_notifications import StaffNotifierWorkflow
from workflows.webhook_check import WebhookCheckWorkflow
from workflows.webhooks import WebhookEndpointWorkflow

HISTORIES = Path(__file__).parent / "histories"


def _save(name: str, history) -> None:
    (HISTORIES / name).write_text(history.to_json())
    print(f"recorded {name}: {len(history.events)} events")


async def record_conversation(env: WorkflowEnvironment) -> None:
    """Settings changed while it waits, an escalation, a transfer refused (reported, the
    conversation goes on), resolve, and closing finding it reopened by the customer."""
    refusal = ApplicationError("That operator was deactivated.", type=ACTION_REFUSED, non_retryable=True)
    branch = Branch(
        online=[1, 2, 3],
        policy=InboxPolicy(auto_reply="Hello!", rating_mode="stars", escalation_minutes=60, resolved_close_days=1),
        failing={TRANSFER_CONVERSATION: refusal},
    )
    async with conversation(env, branch, f"record-{uuid.uuid4()}") as handle:
        await eventually(lambda: branch.kinds("assigned"))
        branch.policy = branch.policy.model_copy(update={"escalation_minutes": 4})
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=2, kind=NoticeKind.SETTINGS_CHANGED)
        )
        await eventually(lambda: branch.kinds("settings_loaded"))
        await env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("escalated"))
        await handle.signal(
            ConversationWorkflow.notify,
            ConversationNotice(outbox_id=9, kind=NoticeKind.TRANSFER, operator_id=2, target_operator_id=3),
        )
        await eventually(lambda: branch.kinds("action_failed"))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=10, kind=NoticeKind.RESOLVE, operator_id=2)
        )
        await eventually(lambda: branch.kinds("dispatch"))
        branch.status = ConversationStatus.OPEN  # the customer wrote before it closed
        await env.sleep(timedelta(days=1, minutes=1))
        await eventually(lambda: branch.kinds("reopened"))
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=11, kind=NoticeKind.REOPENED))
        await eventually(lambda: len(branch.kinds("system_message")) == 2)  # auto-reply, rating request
        for _ in range(100):
            if (await handle.query(ConversationWorkflow.current_state)).last_outbox_id == 11:
                break
            await asyncio.sleep(0.05)
        _save("conversation_v3_actions_survive.json", await handle.fetch_history())


async def record_conversation_snoozed(env: WorkflowEnvironment) -> None:
    """Snoozed for an hour (woken by its timer), snoozed until the customer writes (woken by the
    notice), resolved, and reopened by an operator."""
    branch = Branch(online=[1, 2], policy=InboxPolicy(escalation_minutes=4))
    async with conversation(env, branch, f"record-{uuid.uuid4()}") as handle:
        await eventually(lambda: branch.kinds("assigned"))
        until = await env.get_current_time() + timedelta(hours=1)
        await handle.signal(
            ConversationWorkflow.notify,
            ConversationNotice(outbox_id=2, kind=NoticeKind.SNOOZE, operator_id=1, until=until),
        )
        await env.sleep(timedelta(hours=1, seconds=1))
        await eventually(lambda: branch.kinds("woken"))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=3, kind=NoticeKind.SNOOZE, operator_id=1)
        )
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=4, kind=NoticeKind.WAKE))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=5, kind=NoticeKind.RESOLVE, operator_id=1)
        )
        await eventually(lambda: branch.kinds("resolved"))
        await handle.signal(
            ConversationWorkflow.notify, ConversationNotice(outbox_id=6, kind=NoticeKind.REOPEN, operator_id=2)
        )
        for _ in range(100):
            if (await handle.query(ConversationWorkflow.current_state)).last_outbox_id == 6:
                break
            await asyncio.sleep(0.05)
        _save("conversation_v4_snoozed_reopened.json", await handle.fetch_history())


async def record_delivery(env: WorkflowEnvironment) -> None:
    """Two replies to one chat: the first meets a 502, then a 90 s retry_after, then is sent; the
    second waits for it (one re-check on the way), is told, and is sent. A third reply's send
    raises until its attempts run out, so it is failed with the error. Saves the second and third."""
    queue = f"record-{uuid.uuid4()}"
    first, second, third = 76, 77, 78
    script = {
        first: [
            SendOutcome(outcome=Outcome.RETRYABLE, reason="502"),
            SendOutcome(outcome=Outcome.RATE_LIMITED, retry_after=90, reason="429"),
        ]
    }

    def provider(row: Row, now) -> SendOutcome:
        if row.id == third:
            raise FileNotFoundError(2, "No such file or directory", "/data/files/3f/3fa9c0")
        steps = script.get(row.id, [])
        return steps.pop(0) if steps else SendOutcome(outcome=Outcome.SENT, sent_parts=[f"{row.id}:1"])

    chat = Chat(provider)
    async with Worker(env.client, task_queue=queue, workflows=[DeliveryWorkflow], activities=chat.activities()):
        handles = []
        for message_id in (first, second):
            chat.add(message_id, await env.get_current_time())
            handles.append(
                await env.client.start_workflow(
                    DeliveryWorkflow.run,
                    DeliveryInput(message_id=message_id),
                    id=f"delivery-{message_id}",
                    task_queue=queue,
                )
            )
        for handle in handles:
            await handle.result()
        _save("delivery_v3_bounded_wait.json", await handles[1].fetch_history())
        chat.add(third, await env.get_current_time())
        handle = await env.client.start_workflow(
            DeliveryWorkflow.run, DeliveryInput(message_id=third), id=f"delivery-{third}", task_queue=queue
        )
        await handle.result()
        _save("delivery_v3_send_raised.json", await handle.fetch_history())


async def record_poller(env: WorkflowEnvironment) -> None:
    """Two runs of one poller: three polls (one retried) then continue-as-new; two more, then told to stop."""
    queue = f"record-{uuid.uuid4()}"
    script = ScriptedPoller(rounds=4)
    async with Worker(env.client, task_queue=queue, workflows=[PollerWorkflow], activities=[script.activity()]):
        handle = await env.client.start_workflow(
            PollerWorkflow.run,
            PollerInput(inbox_id=5, polls_per_run=3, poll_timeout=1),
            id=f"poller-{queue}",
            task_queue=queue,
        )
        await handle.result()
        first = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        _save("poller_v1_continue_as_new.json", await first.fetch_history())
        last = env.client.get_workflow_handle(handle.id, run_id=(await handle.describe()).run_id)
        _save("poller_v1_stopped.json", await last.fetch_history())


async def record_files(env: WorkflowEnvironment) -> None:
    @activity.defn(name=FETCH_ATTACHMENTS)
    async def fetch_attachments(params: FetchAttachmentsInput) -> FetchReport:
        if activity.info().attempt < 3:
            raise ApplicationError("file host unavailable", type="RetryableError")
        return FetchReport(stored=2, skipped=1)

    queue = f"record-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[FetchAttachmentsWorkflow], activities=[fetch_attachments]
    ):
        handle = await env.client.start_workflow(
            FetchAttachmentsWorkflow.run,
            FetchAttachmentsInput(message_id=9, retry_initial_seconds=1),
            id=f"files-{queue}",
            task_queue=queue,
        )
        await handle.result()
        _save("files_v1.json", await handle.fetch_history())


async def record_webhook_check(env: WorkflowEnvironment) -> None:
    """A pass whose activity fails all three attempts, the pause, continue-as-new."""

    @activity.defn(name=CHECK_WEBHOOKS)
    async def check_webhooks() -> WebhookCheckReport:
        raise ApplicationError("database away")

    await _first_run(
        env,
        "webhook_check_v1.json",
        WebhookCheckWorkflow,
        [check_webhooks],
        lambda queue: env.client.start_workflow(
            WebhookCheckWorkflow.run,
            WebhookCheckInput(interval_seconds=600),
            id=f"webhook-check-{queue}",
            task_queue=queue,
        ),
    )


async def record_housekeeping(env: WorkflowEnvironment) -> None:
    @activity.defn(name=PURGE_EXPIRED)
    async def purge_expired() -> dict[str, int]:
        return {"sessions": 2, "attempts": 5}

    @activity.defn(name=FAIL_STUCK_DELIVERIES)
    async def fail_stuck_deliveries() -> int:
        return 1

    await _first_run(
        env,
        "housekeeping_v2_delivery_sweep.json",
        HousekeepingWorkflow,
        [purge_expired, fail_stuck_deliveries],
        lambda queue: env.client.start_workflow(HousekeepingWorkflow.run, id=f"housekeeping-{queue}", task_queue=queue),
    )


async def record_presence_sweep(env: WorkflowEnvironment) -> None:
    @activity.defn(name=TAKE_ABSENT_OFFLINE)
    async def take_absent_offline() -> list[int]:
        return [3]

    await _first_run(
        env,
        "presence_sweep_v1.json",
        PresenceSweepWorkflow,
        [take_absent_offline],
        lambda queue: env.client.start_workflow(
            PresenceSweepWorkflow.run, PresenceSweepInput(), id=f"presence-sweep-{queue}", task_queue=queue
        ),
    )


async def record_webhook_endpoint(env: WorkflowEnvironment) -> None:
    """A failed round and its retry timer, a delivered round, a pause woken by a signal, deletion."""
    script = iter(
        [
            lambda now: DrainOutcome(state=EndpointState.ACTIVE, failed=2, next_due=now + timedelta(seconds=10)),
            lambda now: DrainOutcome(state=EndpointState.ACTIVE, next_due=now + timedelta(seconds=10)),
            lambda now: DrainOutcome(state=EndpointState.ACTIVE, delivered=2),
            lambda now: DrainOutcome(state=EndpointState.PAUSED),
            lambda now: DrainOutcome(state=EndpointState.GONE),
        ]
    )

    @activity.defn(name=DRAIN_WEBHOOK_QUEUE)
    async def drain(request: DrainRequest) -> DrainOutcome:
        return next(script)(request.now)

    queue = f"record-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[WebhookEndpointWorkflow], activities=[drain]):
        handle = await env.client.start_workflow(
            WebhookEndpointWorkflow.run,
            EndpointInput(endpoint_id=4, watch_seconds=0),
            id=f"webhook-endpoint-{queue}",
            task_queue=queue,
        )
        await env.sleep(timedelta(minutes=5))
        await handle.signal(WebhookEndpointWorkflow.wake)
        await handle.result()
        _save("webhook_endpoint_v1.json", await handle.fetch_history())


async def record_bitrix24_task(env: WorkflowEnvironment) -> None:
    """A rate-limited attempt retried after its pause, then the task; and a refused one, recorded."""

    @activity.defn(name=CREATE_BITRIX24_TASK)
    async def create(request: TaskRequest) -> str:
        if request.conversation_id == 2:
            raise ApplicationError("tasks.task.add: HTTP 401", type="Bitrix24Refused", non_retryable=True)
        if activity.info().attempt == 1:
            raise ApplicationError(
                "QUERY_LIMIT_EXCEEDED", type="Bitrix24RateLimited", next_retry_delay=timedelta(seconds=1)
            )
        return "3711"

    @activity.defn(name=FAIL_BITRIX24_TASK)
    async def fail(failure: TaskFailure) -> None:
        return None

    queue = f"record-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[Bitrix24TaskWorkflow], activities=[create, fail]):
        for conversation_id, name in ((1, "bitrix24_task_v1_created.json"), (2, "bitrix24_task_v1_refused.json")):
            handle = await env.client.start_workflow(
                Bitrix24TaskWorkflow.run,
                TaskRequest(conversation_id=conversation_id),
                id=f"b24-task-{conversation_id}-{queue}",
                task_queue=queue,
            )
            await handle.result()
            _save(name, await handle.fetch_history())


async def record_staff_notifier(env: WorkflowEnvironment) -> None:
    """Two rounds (one sent, one failed), then the rule is deleted."""
    script = iter([NotifyOutcome(sent=1), NotifyOutcome(failed=1), NotifyOutcome(gone=True)])

    @activity.defn(name=NOTIFY_STAFF)
    async def notify(request: NotifyRequest) -> NotifyOutcome:
        return next(script)

    queue = f"record-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[StaffNotifierWorkflow], activities=[notify]):
        handle = await env.client.start_workflow(
            StaffNotifierWorkflow.run, NotifierInput(rule_id=3, watch_seconds=1), id=f"staff-{queue}", task_queue=queue
        )
        await handle.result()
        _save("staff_notifier_v1.json", await handle.fetch_history())


async def _first_run(
    env: WorkflowEnvironment, name: str, workflow: type, activities: list, start: Callable[[str], Awaitable]
) -> None:
    """Save the history of a periodic workflow's first run, which ends by continuing as new."""
    queue = f"record-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[workflow], activities=activities):
        handle = await start(queue)
        first = env.client.get_workflow_handle(handle.id, run_id=handle.first_execution_run_id)
        await env.sleep(timedelta(hours=2))
        for _ in range(100):
            if (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{workflow.__name__} did not continue as new")
        _save(name, await first.fetch_history())
        await handle.terminate()


RECORDERS = {
    "conversation": record_conversation,
    "conversation_snoozed": record_conversation_snoozed,
    "delivery": record_delivery,
    "poller": record_poller,
    "files": record_files,
    "webhook_check": record_webhook_check,
    "housekeeping": record_housekeeping,
    "presence_sweep": record_presence_sweep,
    "webhook_endpoint": record_webhook_endpoint,
    "bitrix24_task": record_bitrix24_task,
    "staff_notifier": record_staff_notifier,
}


async def main(names: list[str]) -> None:
    logging.getLogger("temporalio").setLevel(logging.CRITICAL)  # the scripted failures are expected
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server")), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    try:
        for name in names or RECORDERS:
            await RECORDERS[name](env)
    finally:
        await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)
