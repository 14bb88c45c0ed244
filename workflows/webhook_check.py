"""WebhookCheckWorkflow: one instance (`webhook-check`) that looks after every webhook inbox.

MAX removes a subscription after 8 hours of failed deliveries, and Telegram only reports its
delivery errors when asked: every pass asks each provider, subscribes again where the webhook
is gone, and keeps the provider's last error on the inbox for the admins to see.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.webhook_check import CHECK_WEBHOOKS, WEBHOOK_CHECK_WORKFLOW, WebhookCheckInput, WebhookCheckReport


@workflow.defn(name=WEBHOOK_CHECK_WORKFLOW)
class WebhookCheckWorkflow:
    @workflow.run
    async def run(self, params: WebhookCheckInput) -> None:
        try:
            await workflow.execute_activity(
                CHECK_WEBHOOKS,
                result_type=WebhookCheckReport,
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), maximum_attempts=3),
            )
        except ActivityError as err:
            # the next pass tries again; one bad pass must not end the checks for good
            workflow.logger.warning("webhook check pass failed: %s", err.cause or err)
        await workflow.sleep(timedelta(seconds=params.interval_seconds))
        # a fresh history per pass keeps it tiny
        workflow.continue_as_new(params)
