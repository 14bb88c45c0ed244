"""One conversation's outgoing queue in memory, behind stand-ins for the delivery activities
(the same names and inputs): what the real activities read from and write to the database,
with a scripted provider per message.

The plan follows the real one: the predecessor is the latest earlier message still queued, and,
when the workflow asks to verify it, only while its delivery-{id} runs (asked of the test's
Temporal server through the same helper the real activity uses).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from temporalio import activity

from domain.delivery import (
    FAIL_DELIVERY,
    PREPARE_DELIVERY,
    SEND_MESSAGE,
    DeliveryPlan,
    FailRequest,
    Outcome,
    PrepareRequest,
    SendOutcome,
    SendRequest,
)
from infra.temporal import delivery_running

GIVE_UP_AFTER = timedelta(hours=24)


@dataclass
class Row:
    id: int
    created_at: datetime
    status: str = "queued"  # queued | sent | failed
    reason: str = ""
    final_at: datetime | None = None  # when it was sent or failed (server clock)


@dataclass
class Chat:
    """`provider(row, now)` answers a send: a SendOutcome, or raises like a broken activity."""

    provider: Callable[[Row, datetime], SendOutcome]
    rows: dict[int, Row] = field(default_factory=dict)
    attempts: list[tuple[int, datetime]] = field(default_factory=list)

    def add(self, message_id: int, created_at: datetime) -> Row:
        self.rows[message_id] = Row(message_id, created_at)
        return self.rows[message_id]

    def _successor(self, row: Row) -> int | None:
        return min((r.id for r in self.rows.values() if r.id > row.id and r.status == "queued"), default=None)

    def activities(self) -> list:
        chat = self

        @activity.defn(name=PREPARE_DELIVERY)
        async def prepare(request: PrepareRequest) -> DeliveryPlan:
            row = chat.rows[request.message_id]
            if row.status != "queued":
                return DeliveryPlan(final=True, give_up_after=GIVE_UP_AFTER)
            earlier = [r.id for r in chat.rows.values() if r.id < row.id and r.status == "queued"]
            predecessor = max(earlier, default=None)
            if (
                predecessor is not None
                and getattr(request, "verify_predecessor", False)
                and not await delivery_running(activity.client(), predecessor)
            ):
                predecessor = None
            return DeliveryPlan(predecessor_id=predecessor, created_at=row.created_at, give_up_after=GIVE_UP_AFTER)

        @activity.defn(name=SEND_MESSAGE)
        async def send(request: SendRequest) -> SendOutcome:
            row = chat.rows[request.message_id]
            now = activity.info().current_attempt_scheduled_time
            chat.attempts.append((row.id, now))
            result = chat.provider(row, now)
            if result.outcome == Outcome.SENT:
                row.status, row.final_at = "sent", now
                result = result.model_copy(update={"successor_id": chat._successor(row)})
            return result

        @activity.defn(name=FAIL_DELIVERY)
        async def fail(request: FailRequest) -> SendOutcome:
            row = chat.rows[request.message_id]
            row.status, row.reason = "failed", request.reason
            row.final_at = activity.info().current_attempt_scheduled_time
            return SendOutcome(outcome=Outcome.FAILED, reason=request.reason, successor_id=chat._successor(row))

        return [prepare, send, fail]
