"""Outgoing webhooks: which realtime events an integrator may subscribe to, the retry schedule,
and the contracts of WebhookEndpointWorkflow (one per endpoint, `webhook-endpoint-{id}`).

An event reaches an endpoint as a queue row written by the realtime log's commit trigger, in
the transaction of the change (migration 0014); the endpoint's workflow drains that queue.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel

from domain.events import (
    ContactUpdated,
    ConversationAssigned,
    ConversationCreated,
    ConversationStatusChanged,
    MessageCreated,
    MessageStatusChanged,
)

# What an endpoint may subscribe to: names of the realtime vocabulary (domain/events.py).
WEBHOOK_EVENTS: tuple[str, ...] = (
    ConversationCreated.NAME,
    ConversationAssigned.NAME,
    ConversationStatusChanged.NAME,
    MessageCreated.NAME,
    MessageStatusChanged.NAME,
    ContactUpdated.NAME,
)
ENVELOPE_VERSION = 1

# Seed 002's schedule (1 m -> 5 m -> 15 m -> 1 h -> 3 h -> 12 h) with one faster retry first: a
# receiver restarting for a deploy is back within seconds. The last step repeats until the
# give-up time, and the last try happens right at it.
DEFAULT_RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=15),
    timedelta(hours=1),
    timedelta(hours=3),
    timedelta(hours=12),
)
GIVE_UP_AFTER = timedelta(hours=24)


def retry_delay(schedule: tuple[timedelta, ...], failures: int) -> timedelta:
    """The wait after the `failures`-th failure in a row (1-based)."""
    return schedule[min(max(failures, 1), len(schedule)) - 1]


def next_try(schedule: tuple[timedelta, ...], failures: int, first_failed_at: datetime, now: datetime) -> datetime:
    """When to try again after a failure; never later than the give-up time, so the last try is
    made right at it rather than up to a schedule step past it."""
    return min(now + retry_delay(schedule, failures), first_failed_at + GIVE_UP_AFTER)


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"  # given up after GIVE_UP_AFTER of failures; an admin may redeliver it


# Names in Temporal: saved histories and running workflows refer to them, so they never change.
WEBHOOK_ENDPOINT_WORKFLOW = "WebhookEndpointWorkflow"
DRAIN_WEBHOOK_QUEUE = "drain_webhook_queue"
WAKE = "wake"  # signal: resumed, or rows were put back for redelivery


class EndpointInput(BaseModel):
    endpoint_id: int
    # How long one drain waits for new rows before handing back to the workflow. 0: the
    # workflow waits on its own timers instead (the time-skipping tests need that: a real-time
    # wait inside an activity holds the skipped clock back).
    watch_seconds: float = 20.0
    drains_done: int = 0


class DrainRequest(BaseModel):
    endpoint_id: int
    now: datetime  # the workflow's clock: every retry time is measured on it
    watch_seconds: float


class EndpointState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # by an admin, or after failing for GIVE_UP_AFTER; rows keep queueing
    GONE = "gone"  # deleted: the workflow ends


class DrainOutcome(BaseModel):
    state: EndpointState
    delivered: int = 0
    failed: int = 0
    # the earliest moment a queued row may be tried (None: nothing is waiting for a retry)
    next_due: datetime | None = None
