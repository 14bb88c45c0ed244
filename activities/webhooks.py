"""The activity of WebhookEndpointWorkflow: drain one endpoint's queue.

A drain delivers in rounds. Each round takes the due rows (oldest first) and sends each
conversation's rows one after another, conversations side by side; the first failure of a
conversation stops it there and blocks its later rows behind it until its retry time, so a
receiver sees every conversation's events in order. When a whole round fails (the receiver is
down) the endpoint itself waits for its next retry time instead of trying every conversation.
Every time is measured on the workflow's clock, handed in as `now`: retries and the 24-hour
give-up follow Temporal's timers (and the time-skipping tests).

Between rounds the drain waits for new rows (the commit trigger's NOTIFY wakes it) up to
`watch_seconds`, then hands back to the workflow. Sending twice is possible only when a worker
dies between a receiver's answer and our record of it: receivers deduplicate on the event id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Any

import aiohttp
from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.heartbeats import heartbeating
from domain.events import MessageCreated, WebhookEndpointPaused
from domain.webhooks import (
    DRAIN_WEBHOOK_QUEUE,
    GIVE_UP_AFTER,
    DeliveryState,
    DrainOutcome,
    DrainRequest,
    EndpointState,
    next_try,
)
from infra import metrics
from infra.event_log import Wakeups, publish
from infra.models import WebhookAttempt, WebhookBlocked, WebhookDelivery, WebhookEndpoint
from infra.security import CredentialBox
from infra.settings import Settings
from integrations import outgoing_webhooks
from services.webhooks import active_secrets

log = logging.getLogger(__name__)

ROUND_LIMIT = 500  # rows taken per round
SESSION_SECONDS = 50.0  # a drain that keeps finding work hands back to the workflow after this
# after a wake, a moment for more rows to commit, so a round carries a batch, not one event
GATHER_SECONDS = 0.05
HEARTBEAT_EVERY = 5.0

# Due rows, oldest first, except those waiting behind a blocked conversation (a blocked
# conversation's head is due again at `until`). A message's text and the correlation id of the
# request that brought it come along.
_DUE = text(f"""
    SELECT d.id, d.event_id, d.event_type, d.order_key, d.payload, d.created_at, d.attempts,
           d.first_failed_at, m.text AS message_text, m.correlation_id
    FROM webhook_deliveries d
    LEFT JOIN messages m
      ON d.event_type = '{MessageCreated.NAME}' AND m.id = (d.payload->>'message_id')::bigint
    WHERE d.endpoint_id = :endpoint_id AND d.status = 'pending'
      AND NOT EXISTS (
        SELECT 1 FROM webhook_blocked b
        WHERE b.endpoint_id = :endpoint_id AND b.order_key = d.order_key
          AND (b.until > :now OR b.delivery_id <> d.id))
    ORDER BY d.id
    LIMIT :limit
""")
_NEXT_BLOCKED = text("SELECT min(until) FROM webhook_blocked WHERE endpoint_id = :endpoint_id")
# one drain per endpoint at a time, even when a worker presumed dead is still sending
_LOCK = text("SELECT pg_try_advisory_xact_lock(726465, CAST(:endpoint_id AS integer))")


@dataclass
class _Sent:
    row: Any
    answer: outgoing_webhooks.Answer
    correlation_id: str


class WebhookActivities:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        box: CredentialBox,
        settings: Settings,
        wakeups: Wakeups,
    ) -> None:
        self._factory = factory
        self._box = box
        self._settings = settings
        self._wakeups = wakeups

    @activity.defn(name=DRAIN_WEBHOOK_QUEUE)
    async def drain_webhook_queue(self, request: DrainRequest) -> DrainOutcome:
        began = time.monotonic()

        def clock() -> datetime:
            return request.now + timedelta(seconds=time.monotonic() - began)

        delivered = failed = 0
        # one session per drain: its connections to the receiver are reused for the drain's
        # rounds and closed with it
        async with heartbeating(HEARTBEAT_EVERY), aiohttp.ClientSession() as http:
            while True:
                result = await self._round(http, request.endpoint_id, clock())
                if isinstance(result, EndpointState):
                    return DrainOutcome(state=result, delivered=delivered, failed=failed)
                round_delivered, round_failed, next_due = result
                delivered, failed = delivered + round_delivered, failed + round_failed
                elapsed = time.monotonic() - began
                if round_delivered + round_failed and elapsed < SESSION_SECONDS:
                    continue
                wait = request.watch_seconds - elapsed
                if next_due is not None:
                    wait = min(wait, (next_due - clock()).total_seconds())
                if wait <= 0 or round_delivered + round_failed:
                    return DrainOutcome(
                        state=EndpointState.ACTIVE, delivered=delivered, failed=failed, next_due=next_due
                    )
                if await self._wakeups.wait(wait):
                    await asyncio.sleep(GATHER_SECONDS)

    async def _round(
        self, http: aiohttp.ClientSession, endpoint_id: int, now: datetime
    ) -> EndpointState | tuple[int, int, datetime | None]:
        """(delivered, failed, next due) of one round, or why there is nothing to do."""
        async with self._factory() as db, db.begin():
            if not await db.scalar(_LOCK, {"endpoint_id": endpoint_id}):
                return 0, 0, now + timedelta(seconds=1)  # another drain holds it: look again soon
            endpoint = await db.get(WebhookEndpoint, endpoint_id)
            if endpoint is None:
                return EndpointState.GONE
            if endpoint.paused_at is not None:
                return EndpointState.PAUSED
            if endpoint.retry_at is not None and endpoint.retry_at > now:
                return 0, 0, endpoint.retry_at
            rows = (await db.execute(_DUE, {"endpoint_id": endpoint_id, "now": now, "limit": ROUND_LIMIT})).all()
            if rows:
                secrets = active_secrets(self._box, endpoint, now)
                sent = await self._send_all(http, endpoint, secrets, rows)
                delivered, failed = await self._record(db, endpoint, sent, now)
            else:
                delivered = failed = 0
            if endpoint.paused_at is not None:
                return EndpointState.PAUSED
            next_due = await db.scalar(_NEXT_BLOCKED, {"endpoint_id": endpoint_id})
            if endpoint.retry_at is not None:
                next_due = min(filter(None, (next_due, endpoint.retry_at)))
            return delivered, failed, next_due

    async def _send_all(
        self, http: aiohttp.ClientSession, endpoint: WebhookEndpoint, secrets: list[str], rows: list[Any]
    ) -> list[_Sent]:
        """Each conversation's rows in order, stopping at its first failure; conversations side by
        side, at most `webhook_concurrency` requests at once."""
        gate = asyncio.Semaphore(self._settings.webhook_concurrency)
        groups = [
            list(group) for _, group in groupby(sorted(rows, key=lambda r: (r.order_key, r.id)), lambda r: r.order_key)
        ]

        async def conversation(group: list[Any]) -> list[_Sent]:
            done = []
            for row in group:
                async with gate:
                    done.append(await self._send(http, endpoint, secrets, row))
                if not done[-1].answer.ok:
                    break
            return done

        results = await asyncio.gather(*(conversation(group) for group in groups))
        return [sent for group in results for sent in group]

    async def _send(
        self, http: aiohttp.ClientSession, endpoint: WebhookEndpoint, secrets: list[str], row: Any
    ) -> _Sent:
        data = dict(row.payload)
        if row.message_text is not None:
            data["text"] = row.message_text
        correlation_id = row.correlation_id or f"event-{row.event_id}"
        body = outgoing_webhooks.envelope(row.event_id, row.event_type, row.created_at, data)
        answer = await outgoing_webhooks.post(
            http,
            endpoint.url,
            secrets,
            row.event_id,
            body,
            correlation_id=correlation_id,
            timeout=self._settings.webhook_timeout_seconds,
        )
        metrics.WEBHOOK_DELIVERIES.labels(outcome="delivered" if answer.ok else "failed").inc()
        metrics.WEBHOOK_LATENCY.observe(answer.latency_ms / 1000)
        if row.attempts:
            metrics.WEBHOOK_RETRIES.inc()
        return _Sent(row, answer, correlation_id)

    async def _record(
        self, db: AsyncSession, endpoint: WebhookEndpoint, sent: list[_Sent], now: datetime
    ) -> tuple[int, int]:
        schedule = self._settings.webhook_retry_schedule
        journal = []
        delivered_ids = []
        failed = 0
        for item in sent:
            row, answer = item.row, item.answer
            outcome = "delivered" if answer.ok else "failed"
            if answer.ok:
                delivered_ids.append(row.id)
            else:
                failed += 1
                first_failed = row.first_failed_at or now
                if first_failed + GIVE_UP_AFTER <= now:
                    outcome = DeliveryState.DEAD.value
                    await self._give_up(db, endpoint.id, [row.id])
                    await db.execute(
                        delete(WebhookBlocked).where(
                            WebhookBlocked.endpoint_id == endpoint.id, WebhookBlocked.order_key == row.order_key
                        )
                    )
                else:
                    retry = next_try(schedule, row.attempts + 1, first_failed, now)
                    await db.execute(
                        update(WebhookDelivery)
                        .where(WebhookDelivery.id == row.id)
                        .values(attempts=row.attempts + 1, first_failed_at=first_failed, next_attempt_at=retry)
                    )
                    await db.execute(
                        upsert(WebhookBlocked)
                        .values(endpoint_id=endpoint.id, order_key=row.order_key, delivery_id=row.id, until=retry)
                        .on_conflict_do_update(
                            index_elements=["endpoint_id", "order_key"], set_={"delivery_id": row.id, "until": retry}
                        )
                    )
                endpoint.last_error = _describe(answer)
                log.info(
                    "webhook %s to endpoint %s failed (attempt %s): %s",
                    row.event_id,
                    endpoint.id,
                    row.attempts + 1,
                    endpoint.last_error,
                    extra={"correlation_id": item.correlation_id},
                )
            journal.append(
                {
                    "endpoint_id": endpoint.id,
                    "event_id": row.event_id,
                    "event_type": row.event_type,
                    "attempt": row.attempts + 1,
                    "outcome": outcome,
                    "status_code": answer.status_code,
                    "latency_ms": answer.latency_ms,
                    "response_excerpt": answer.excerpt or None,
                    "correlation_id": item.correlation_id[:100],
                }
            )
        if delivered_ids:
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(delivered_ids))
                .values(status=DeliveryState.DELIVERED, delivered_at=now)
            )
            await db.execute(
                delete(WebhookBlocked).where(
                    WebhookBlocked.endpoint_id == endpoint.id, WebhookBlocked.delivery_id.in_(delivered_ids)
                )
            )
            endpoint.failing_since = endpoint.retry_at = None
            endpoint.failing_rounds = 0
        elif failed:
            await self._receiver_failing(db, endpoint, now)
        if journal:
            await db.execute(insert(WebhookAttempt), journal)
        return len(delivered_ids), failed

    async def _receiver_failing(self, db: AsyncSession, endpoint: WebhookEndpoint, now: datetime) -> None:
        """A round with no success: the receiver waits as a whole, and after the whole retry
        window its queue is set aside and it is paused, with an alert to the supervisors."""
        endpoint.failing_since = endpoint.failing_since or now
        endpoint.failing_rounds += 1
        if endpoint.failing_since + GIVE_UP_AFTER > now:
            endpoint.retry_at = next_try(
                self._settings.webhook_retry_schedule, endpoint.failing_rounds, endpoint.failing_since, now
            )
            return
        reason = f"failing since {endpoint.failing_since.isoformat()}: {endpoint.last_error or 'no answer'}"
        endpoint.paused_at, endpoint.pause_reason = now, reason[:500]
        pending = select(WebhookDelivery.id).where(
            WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == DeliveryState.PENDING
        )
        await self._give_up(db, endpoint.id, pending)
        await db.execute(delete(WebhookBlocked).where(WebhookBlocked.endpoint_id == endpoint.id))
        await publish(db, WebhookEndpointPaused(endpoint_id=endpoint.id, reason=reason[:500]))
        metrics.WEBHOOK_ENDPOINTS_PAUSED.inc()
        log.warning("webhook endpoint %s paused: %s", endpoint.id, reason)

    @staticmethod
    async def _give_up(db: AsyncSession, endpoint_id: int, ids: Any) -> None:
        given_up = await db.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.id.in_(ids))
            .values(status=DeliveryState.DEAD)
        )
        metrics.WEBHOOK_DEAD_LETTERS.inc(given_up.rowcount)

    def all(self) -> list[Any]:
        return [self.drain_webhook_queue]


def _describe(answer: outgoing_webhooks.Answer) -> str:
    head = f"HTTP {answer.status_code}" if answer.status_code is not None else "no answer"
    return f"{head}: {answer.excerpt}"[:500] if answer.excerpt else head
