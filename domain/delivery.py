"""Contracts of DeliveryWorkflow (one per outgoing message, id `delivery-{message_id}`): its
names, its input and what its activities take and answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

# Names in Temporal: saved histories and running workflows refer to them, so they never change.
DELIVERY_WORKFLOW = "DeliveryWorkflow"
PREDECESSOR_DONE = "predecessor_done"  # signal: the message before this one is final
PREPARE_DELIVERY = "prepare_delivery"
SEND_MESSAGE = "send_message"
FAIL_DELIVERY = "fail_delivery"
# the housekeeping sweep: fails messages left pending past their give-up time with no delivery running
FAIL_STUCK_DELIVERIES = "fail_stuck_deliveries"


class DeliveryInput(BaseModel):
    message_id: int
    # a supervisor's retry from the dead-letter list: its give-up time counts from this run's
    # start, not from the message's creation
    retry: bool = False


class PrepareRequest(BaseModel):
    message_id: int
    # ask Temporal whether the predecessor's delivery still runs (or is about to start): one
    # whose workflow ended without a final status (terminated, timed out) must not hold this
    # message. Asked on the workflow's periodic re-checks only, never on the hot path.
    verify_predecessor: bool = False


class FailRequest(BaseModel):
    """The workflow gives up on a message after `give_up_after` of retryable errors."""

    message_id: int
    reason: str


class DeliveryPlan(BaseModel):
    """What the workflow needs before its first attempt."""

    final: bool = False  # already sent or failed (a re-run after a completed delivery)
    # an earlier outgoing message of the same conversation still queued or sending
    predecessor_id: int | None = None
    give_up_after: timedelta = timedelta(hours=24)
    # when the message was written: its give-up time counts from here, waiting included
    created_at: datetime | None = None


class Outcome(StrEnum):
    SENT = "sent"
    RETRYABLE = "retryable"
    RATE_LIMITED = "rate_limited"
    MIGRATED = "migrated"  # Telegram group became a supergroup: send again to the new chat
    FAILED = "failed"  # permanent: blocked, chat not found, bad request; already recorded


class SendOutcome(BaseModel):
    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None
    # parts of a long text already delivered by this and earlier attempts (never resent)
    sent_parts: list[str] = Field(default_factory=list)
    # the next queued message of the same conversation, told when this one is final
    successor_id: int | None = None
    # our own rate limit: the slot reserved for this message, kept for the next attempt
    slot_at: datetime | None = None


class SendRequest(BaseModel):
    message_id: int
    attempt: int
    sent_parts: list[str] = Field(default_factory=list)
    # a rate slot reserved by an earlier attempt: used as is, never reserved twice
    slot_at: datetime | None = None
