"""Outgoing webhook endpoints as admins manage them: create (the secret is shown once), rotate
the secret with an overlap window, pause and resume, delete, redeliver, read the delivery log;
and what the health page shows of them.

Events reach an endpoint's queue through the realtime log's commit trigger (migration 0014);
the endpoint's workflow (`webhook-endpoint-{id}`, activities/webhooks.py) drains it. Callers
tell that workflow of a change with `WorkflowStarter.wake_webhook_endpoint` after commit.
"""

from __future__ import annotations

import secrets as random_secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain.contracts import INT64_MAX, CustomerText
from domain.webhooks import WEBHOOK_EVENTS, DeliveryState
from domain.wording import N_
from infra.models import Inbox, WebhookAttempt, WebhookBlocked, WebhookDelivery, WebhookEndpoint
from infra.security import CredentialBox
from services import audit
from services.errors import Invalid

SECRET_PREFIX = "whsec_"
URL_MAX = 2000


def new_secret() -> str:
    return SECRET_PREFIX + random_secrets.token_urlsafe(32)


def active_secrets(box: CredentialBox, endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    """The secrets that sign now: the newest, and a rotated-out one until its overlap ends."""
    stored = box.open(endpoint.secrets_encrypted).get("secrets", [])
    return [s["secret"] for s in stored if s.get("expires_at") is None or datetime.fromisoformat(s["expires_at"]) > now]


class EndpointInput(BaseModel):
    """An endpoint as an admin (or the API) gives it."""

    name: CustomerText = Field(max_length=200)
    url: CustomerText = Field(max_length=URL_MAX)
    events: list[str] = Field(default_factory=list, max_length=50)
    inbox_id: int | None = Field(
        default=None, ge=1, le=INT64_MAX, description="One inbox's events; none: every inbox's."
    )


class RedeliverInput(BaseModel):
    """One event again (`event_id`), or every event since a time (`since`)."""

    event_id: int | None = Field(default=None, ge=1, le=INT64_MAX)
    since: AwareDatetime | None = None


def _check(data: EndpointInput) -> tuple[str, str, list[str]]:
    name, url = data.name.strip(), data.url.strip()
    if not name:
        raise Invalid(N_("Give the endpoint a name."), field="name")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(N_("The URL must be an http:// or https:// address."), field="url")
    if set(data.events) - set(WEBHOOK_EVENTS):
        raise Invalid(N_("Choose events from the list."), field="events")
    if not data.events:
        raise Invalid(N_("Choose at least one event."), field="events")
    return name, url, [e for e in WEBHOOK_EVENTS if e in data.events]


async def create_endpoint(
    db: AsyncSession, box: CredentialBox, data: EndpointInput, *, operator_id: int | None, token_id: int | None = None
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its secret, which is never shown again. Flushed, not committed."""
    name, url, events = _check(data)
    inbox_id = data.inbox_id
    if inbox_id is not None and await db.get(Inbox, inbox_id) is None:
        raise Invalid(N_("There is no such inbox."), field="inbox_id")
    secret = new_secret()
    endpoint = WebhookEndpoint(
        name=name,
        url=url,
        events=events,
        inbox_id=inbox_id,
        secrets_encrypted=box.seal({"secrets": [{"secret": secret, "expires_at": None}]}),
    )
    db.add(endpoint)
    await db.flush()
    audit.record(
        db,
        "webhook.created",
        operator_id=operator_id,
        token_id=token_id,
        details={"endpoint_id": endpoint.id, "url": url},
    )
    return endpoint, secret


async def update_endpoint(
    db: AsyncSession,
    endpoint: WebhookEndpoint,
    data: EndpointInput,
    *,
    operator_id: int | None,
    token_id: int | None = None,
) -> None:
    """Events already queued stay queued; from the commit on, the new subscription applies (the
    inbox it is for stays as it was made)."""
    endpoint.name, endpoint.url, endpoint.events = _check(data)
    audit.record(
        db,
        "webhook.updated",
        operator_id=operator_id,
        token_id=token_id,
        details={"endpoint_id": endpoint.id, "url": endpoint.url},
    )


async def rotate_secret(
    db: AsyncSession,
    box: CredentialBox,
    endpoint: WebhookEndpoint,
    *,
    overlap: timedelta,
    operator_id: int | None,
    token_id: int | None = None,
) -> str:
    """A new secret signs from now on; the current one keeps signing (a second `v1=`) for
    `overlap`, so the receiver can switch without losing an event."""
    now = datetime.now(UTC)
    expires = (now + overlap).isoformat()
    kept = [
        {"secret": s, "expires_at": expires if overlap > timedelta(0) else now.isoformat()}
        for s in active_secrets(box, endpoint, now)[:1]
    ]
    secret = new_secret()
    endpoint.secrets_encrypted = box.seal({"secrets": [{"secret": secret, "expires_at": None}, *kept]})
    audit.record(
        db,
        "webhook.secret_rotated",
        operator_id=operator_id,
        token_id=token_id,
        details={"endpoint_id": endpoint.id, "overlap_seconds": int(overlap.total_seconds())},
    )
    return secret


async def pause(
    db: AsyncSession, endpoint: WebhookEndpoint, *, reason: str, operator_id: int | None, token_id: int | None = None
) -> None:
    """Delivery stops; events keep queueing and go out on resume."""
    if endpoint.paused_at is None:
        endpoint.paused_at = datetime.now(UTC)
        endpoint.pause_reason = reason[:500]
        audit.record(
            db, "webhook.paused", operator_id=operator_id, token_id=token_id, details={"endpoint_id": endpoint.id}
        )


async def resume(
    db: AsyncSession, endpoint: WebhookEndpoint, *, operator_id: int | None, token_id: int | None = None
) -> None:
    """Delivery goes on at once, with a clean slate for the receiver's failures."""
    endpoint.paused_at = endpoint.pause_reason = None
    endpoint.failing_since = endpoint.retry_at = None
    endpoint.failing_rounds = 0
    await db.execute(delete(WebhookBlocked).where(WebhookBlocked.endpoint_id == endpoint.id))
    audit.record(
        db, "webhook.resumed", operator_id=operator_id, token_id=token_id, details={"endpoint_id": endpoint.id}
    )


async def delete_endpoint(
    db: AsyncSession, endpoint: WebhookEndpoint, *, operator_id: int | None, token_id: int | None = None
) -> None:
    audit.record(
        db, "webhook.deleted", operator_id=operator_id, token_id=token_id, details={"endpoint_id": endpoint.id}
    )
    await db.delete(endpoint)


async def redeliver(
    db: AsyncSession,
    endpoint: WebhookEndpoint,
    data: RedeliverInput,
    *,
    operator_id: int | None,
    token_id: int | None = None,
) -> int:
    """Queue one event (`event_id`) or every event since `since` again, delivered or given up,
    in their original order; resumes the endpoint. How many were queued."""
    event_id, since = data.event_id, data.since
    if (event_id is None) == (since is None):
        raise Invalid(N_("Redeliver one event, or every event since a time."))
    query = update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)
    if event_id is not None:
        query = query.where(WebhookDelivery.event_id == event_id)
    else:
        query = query.where(WebhookDelivery.created_at >= since)
    queued = (
        await db.execute(
            query.values(
                status=DeliveryState.PENDING,
                attempts=0,
                first_failed_at=None,
                next_attempt_at=None,
                delivered_at=None,
            )
        )
    ).rowcount
    if event_id is not None and not queued:
        raise Invalid(N_("That event is not in this endpoint's log (it may be past its retention)."))
    await resume(db, endpoint, operator_id=operator_id, token_id=token_id)
    audit.record(
        db,
        "webhook.redelivered",
        operator_id=operator_id,
        token_id=token_id,
        details={
            "endpoint_id": endpoint.id,
            "event_id": event_id,
            "since": since.isoformat() if since else None,
            "queued": queued,
        },
    )
    return queued


async def delivery_log(db: AsyncSession, endpoint_id: int, *, limit: int = 100) -> list[WebhookAttempt]:
    return list(
        (
            await db.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.endpoint_id == endpoint_id)
                .order_by(WebhookAttempt.id.desc())
                .limit(limit)
            )
        ).all()
    )


@dataclass(frozen=True)
class EndpointHealth:
    endpoint_id: int
    name: str
    url: str
    paused: bool
    pause_reason: str | None
    failing_since: datetime | None
    last_error: str | None
    queued: int  # waiting to be delivered
    dead: int  # given up, waiting for a redelivery
    oldest_queued_at: datetime | None


async def health(db: AsyncSession) -> list[EndpointHealth]:
    """Every endpoint with its queue: for the health page and the metrics."""
    counts = (
        select(
            WebhookDelivery.endpoint_id,
            func.count().filter(WebhookDelivery.status == DeliveryState.PENDING).label("queued"),
            func.count().filter(WebhookDelivery.status == DeliveryState.DEAD).label("dead"),
            func.min(WebhookDelivery.created_at)
            .filter(WebhookDelivery.status == DeliveryState.PENDING)
            .label("oldest"),
        )
        .where(WebhookDelivery.status != DeliveryState.DELIVERED)
        .group_by(WebhookDelivery.endpoint_id)
        .subquery()
    )
    rows = (
        await db.execute(
            select(WebhookEndpoint, counts.c.queued, counts.c.dead, counts.c.oldest)
            .outerjoin(counts, counts.c.endpoint_id == WebhookEndpoint.id)
            .order_by(WebhookEndpoint.id)
        )
    ).all()
    return [
        EndpointHealth(
            endpoint_id=ep.id,
            name=ep.name,
            url=ep.url,
            paused=ep.paused_at is not None,
            pause_reason=ep.pause_reason,
            failing_since=ep.failing_since,
            last_error=ep.last_error,
            queued=queued or 0,
            dead=dead or 0,
            oldest_queued_at=oldest,
        )
        for ep, queued, dead, oldest in rows
    ]


async def endpoint_ids(db: AsyncSession) -> list[int]:
    return list((await db.scalars(select(WebhookEndpoint.id))).all())
