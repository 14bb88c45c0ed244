"""Contracts of WebhookCheckWorkflow: the one instance (`webhook-check`) looking after every
inbox whose provider delivers to our webhook."""

from __future__ import annotations

from pydantic import BaseModel

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
WEBHOOK_CHECK_WORKFLOW = "WebhookCheckWorkflow"
CHECK_WEBHOOKS = "check_webhooks"


class WebhookCheckInput(BaseModel):
    interval_seconds: float = 600.0


class WebhookCheckReport(BaseModel):
    checked: int = 0
    resubscribed: int = 0
    errors: int = 0
