"""Bitrix24TaskWorkflow: one task per (conversation, purpose), `b24-task-{id}-{purpose}`.

A low-volume action, so one workflow each (DESIGN.md). The activity looks the task up by our
XML_ID before adding it, so a retry after a worker died mid-call finds the first task instead of
making a second; rate-limit answers are retried after the pause the activity names, anything
else transient with backoff, for up to a day; a refusal (bad URL, no rights) is final and shown.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.bitrix24 import (
        BITRIX24_TASK_WORKFLOW,
        CREATE_BITRIX24_TASK,
        FAIL_BITRIX24_TASK,
        REFUSED_ERROR,
        TaskFailure,
        TaskRequest,
    )

GIVE_UP_AFTER = timedelta(days=1)


@workflow.defn(name=BITRIX24_TASK_WORKFLOW)
class Bitrix24TaskWorkflow:
    @workflow.run
    async def run(self, request: TaskRequest) -> str:
        try:
            return await workflow.execute_activity(
                CREATE_BITRIX24_TASK,
                request,
                result_type=str,
                start_to_close_timeout=timedelta(seconds=90),
                # a worker that dies mid-call is noticed in seconds and the retry looks the task up
                heartbeat_timeout=timedelta(seconds=10),
                schedule_to_close_timeout=GIVE_UP_AFTER,
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=1),
                    maximum_interval=timedelta(minutes=5),
                    non_retryable_error_types=[REFUSED_ERROR],
                ),
            )
        except ActivityError as err:
            reason = str(err.cause or err)[:500]
            await workflow.execute_activity(
                FAIL_BITRIX24_TASK,
                TaskFailure(conversation_id=request.conversation_id, purpose=request.purpose, reason=reason),
                start_to_close_timeout=timedelta(seconds=30),
            )
            return "failed"
