"""Activities for HousekeepingWorkflow: expired sessions, the delivery journal past its retention,
realtime events past theirs, outgoing webhooks' journal and finished (or never sent) events past
WEBHOOK_LOG_RETENTION_DAYS, expired API idempotency keys and idle request budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.housekeeping import PURGE_EXPIRED
from infra import event_log, idempotency, ratelimit
from infra.models import DeliveryAttempt, WebhookAttempt, WebhookDelivery, WebSession
from infra.settings import Settings


class HousekeepingActivities:
    def __init__(self, factory: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self._factory = factory
        self._settings = settings

    @activity.defn(name=PURGE_EXPIRED)
    async def purge_expired(self) -> dict[str, int]:
        now = datetime.now(UTC)
        async with self._factory() as db, db.begin():
            sessions = await db.execute(delete(WebSession).where(WebSession.expires_at < now))
            attempts = await db.execute(
                delete(DeliveryAttempt).where(
                    DeliveryAttempt.created_at < now - timedelta(days=self._settings.attempt_retention_days)
                )
            )
            events = await event_log.prune(db, now - timedelta(hours=self._settings.realtime_retention_hours))
            webhook_cutoff = now - timedelta(days=self._settings.webhook_log_retention_days)
            webhook_attempts = await db.execute(
                delete(WebhookAttempt).where(WebhookAttempt.created_at < webhook_cutoff)
            )
            webhook_events = await db.execute(
                delete(WebhookDelivery).where(WebhookDelivery.created_at < webhook_cutoff)
            )
            keys = await idempotency.purge_expired(db, now)
            # a budget whole for an hour is the same as none (strangers' addresses add up)
            budgets = await ratelimit.forget_idle(db, "api", timedelta(hours=1))
        return {
            "sessions": sessions.rowcount,
            "attempts": attempts.rowcount,
            "realtime_events": events,
            "webhook_attempts": webhook_attempts.rowcount,
            "webhook_events": webhook_events.rowcount,
            "idempotency_keys": keys,
            "request_budgets": budgets,
        }
