"""WebhookCheckWorkflow: one instance (`webhook-check`) that looks after every webhook inbox.

MAX removes a subscription after 8 hours of failed deliveries, and Telegram only reports its
delivery errors when asked: every pass asks each provider, subscribes again where the webhook
is gone, and keeps the provider's last error on the inbox for the admins to see.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

CHECK_WEBHOOKS = "check_webhooks"


class WebhookCheckInput(BaseModel):
    interval_seconds: float = 600.0


class WebhookCheckReport(BaseModel):
    checked: int = 0
    resubscribed: int = 0
    errors: int = 0


@workflow.defn
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
