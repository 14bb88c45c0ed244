"""Re-record the saved histories the replay test checks: `python -m tests.workflows.record_histories`.

Run it after a deliberate, versioned (`workflow.patched`) change of a workflow, and keep the
earlier files under a versioned name: the workflow must replay them as long as such runs may be
alive (the `*_v1_regular_activities.json` files predate the local-activity patches).
"""

import asyncio
import os
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.conversation import ConversationNotice, InboxPolicy, NoticeKind
from infra.devstack import venv_binary
from tests.conftest import register_search_attributes
from tests.workflows.standins import Branch
from tests.workflows.test_conversation import conversation, eventually
from temporalio.worker import Worker

from domain.delivery import DeliveryInput, Outcome, SendOutcome
from tests.workflows.test_delivery import Provider
from workflows.conversation import ConversationWorkflow
from workflows.delivery import DeliveryWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def main() -> None:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server")), data_converter=pydantic_data_converter
    )
    await register_search_attributes(env.client)
    branch = Branch(online=[1, 2, 3], policy=InboxPolicy(auto_reply="Hello!", rating_mode="stars"))
    async with conversation(env, branch, f"record-{uuid.uuid4()}") as handle:
        await eventually(lambda: branch.kinds("assigned"))
        for _ in range(3):
            await env.sleep(timedelta(minutes=4, seconds=1))
        await eventually(lambda: branch.kinds("alert"))
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=9, kind=NoticeKind.TRANSFER,
                                                                             operator_id=1, target_operator_id=3))
        await handle.signal(ConversationWorkflow.notify, ConversationNotice(outbox_id=10, kind=NoticeKind.RESOLVE,
                                                                             operator_id=3))
        await eventually(lambda: branch.kinds("dispatch"))
        history = await handle.fetch_history()
    (HISTORIES / "conversation_v2_local_db_calls.json").write_text(history.to_json())

    provider = Provider([
        SendOutcome(outcome=Outcome.RETRYABLE, reason="502"),
        SendOutcome(outcome=Outcome.RATE_LIMITED, retry_after=3, reason="429"),
        SendOutcome(outcome=Outcome.SENT, sent_parts=["1:1"], successor_id=77),
    ], predecessor=None)
    queue = f"record-{uuid.uuid4()}"
    async with Worker(env.client, task_queue=queue, workflows=[DeliveryWorkflow], activities=provider.activities()):
        handle = await env.client.start_workflow(DeliveryWorkflow.run, DeliveryInput(message_id=76),
                                                 id=f"delivery-{queue}", task_queue=queue)
        await handle.result()
        history = await handle.fetch_history()
    (HISTORIES / "delivery_v2_local_prepare.json").write_text(history.to_json())
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)
