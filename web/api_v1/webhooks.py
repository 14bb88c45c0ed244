"""Outgoing webhook endpoints through the API: list, add (the secret is answered once), get,
change, delete, rotate the secret, pause, resume, read the delivery journal and redeliver.

An endpoint receives every inbox's events (or one inbox's), whatever branch they belong to, so
only a token of all branches manages them; a branch-scoped token is refused with 403."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from domain.contracts import CustomerText
from infra.models import ApiToken, WebhookAttempt, WebhookEndpoint
from services import webhooks
from services.errors import Forbidden
from services.webhooks import URL_MAX, EndpointInput, RedeliverInput
from web.api_v1.auth import TokenDep, WriterDep
from web.api_v1.docs import WRITE_ERRORS
from web.api_v1.idempotency import OnceDep
from web.api_v1.paging import IdPath, Limit
from web.deps import SessionDep
from web.problems import ApiError
from web.workflows import wake_webhook_endpoint

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
ALL_BRANCHES = "Only a token of all branches manages webhook endpoints: they receive every branch's events."
SCOPE_ERRORS = {403: WRITE_ERRORS[403] | {"description": "The token is read-only, or not of all branches."}}


class EndpointOut(BaseModel):
    id: int
    name: str
    url: str
    events: list[str]
    inbox_id: int | None = Field(description="One inbox's events; null: every inbox's.")
    paused: bool
    pause_reason: str | None
    failing_since: datetime | None
    last_error: str | None
    queued: int = Field(description="Events waiting to be delivered.")
    dead: int = Field(description="Events given up after 24 hours, waiting for a redelivery.")
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="Signs X-Switchboard-Signature. Answered only here: keep it.")


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret; the previous one signs beside it for the overlap.")
    previous_valid_until: datetime


class EndpointChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: CustomerText | None = Field(None, max_length=200)
    url: CustomerText | None = Field(None, max_length=URL_MAX)
    events: list[str] | None = Field(None, max_length=50)


class Redelivery(BaseModel):
    queued: int = Field(description="Events queued again.")


class AttemptOut(BaseModel):
    id: int
    event_id: int
    event_type: str
    attempt: int
    outcome: str = Field(description="delivered, failed (retried) or dead (given up).")
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    correlation_id: str
    created_at: datetime


def _all_branches(token: ApiToken) -> None:
    if token.branch_ids is not None:
        raise ApiError(403, ALL_BRANCHES)


async def _endpoint(db, token: ApiToken, endpoint_id: int) -> WebhookEndpoint:
    _all_branches(token)
    endpoint = await db.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise Forbidden()
    return endpoint


async def _out(db, endpoint: WebhookEndpoint) -> EndpointOut:
    health = next(h for h in await webhooks.health(db) if h.endpoint_id == endpoint.id)
    return EndpointOut(
        id=endpoint.id,
        name=endpoint.name,
        url=endpoint.url,
        events=list(endpoint.events),
        inbox_id=endpoint.inbox_id,
        paused=health.paused,
        pause_reason=health.pause_reason,
        failing_since=health.failing_since,
        last_error=health.last_error,
        queued=health.queued,
        dead=health.dead,
        created_at=endpoint.created_at,
    )


@router.get("", summary="List webhook endpoints", responses=SCOPE_ERRORS)
async def list_(token: TokenDep, db: SessionDep) -> list[EndpointOut]:
    _all_branches(token)
    found = await webhooks.health(db)
    endpoints = {e.id: e for e in [await db.get(WebhookEndpoint, h.endpoint_id) for h in found]}
    return [
        EndpointOut(
            id=h.endpoint_id,
            name=h.name,
            url=h.url,
            events=list(endpoints[h.endpoint_id].events),
            inbox_id=endpoints[h.endpoint_id].inbox_id,
            paused=h.paused,
            pause_reason=h.pause_reason,
            failing_since=h.failing_since,
            last_error=h.last_error,
            queued=h.queued,
            dead=h.dead,
            created_at=endpoints[h.endpoint_id].created_at,
        )
        for h in found
    ]


@router.post("", status_code=201, summary="Add a webhook endpoint", responses=WRITE_ERRORS | SCOPE_ERRORS)
async def create(
    data: EndpointInput, request: Request, token: WriterDep, db: SessionDep, once: OnceDep
) -> EndpointCreated:
    """Its workflow starts at once; events from now on are queued for it."""
    _all_branches(token)
    if (first := await once.replay(data)) is not None:
        return first
    box = request.app.state.credential_box
    endpoint, secret = await webhooks.create_endpoint(db, box, data, operator_id=None, token_id=token.id)
    out = await _out(db, endpoint)
    response = await once.answer(201, EndpointCreated(**out.model_dump(), secret=secret))
    await db.commit()
    await wake_webhook_endpoint(request, endpoint.id)
    return response


@router.get("/{endpoint_id}", summary="Get a webhook endpoint", responses=SCOPE_ERRORS)
async def get(endpoint_id: IdPath, token: TokenDep, db: SessionDep) -> EndpointOut:
    return await _out(db, await _endpoint(db, token, endpoint_id))


@router.patch("/{endpoint_id}", summary="Change a webhook endpoint", responses=WRITE_ERRORS | SCOPE_ERRORS)
async def update(endpoint_id: IdPath, change: EndpointChange, token: WriterDep, db: SessionDep) -> EndpointOut:
    """Only the fields given change. Events already queued stay queued."""
    endpoint = await _endpoint(db, token, endpoint_id)
    data = EndpointInput(
        name=endpoint.name if change.name is None else change.name,
        url=endpoint.url if change.url is None else change.url,
        events=list(endpoint.events) if change.events is None else change.events,
    )
    await webhooks.update_endpoint(db, endpoint, data, operator_id=None, token_id=token.id)
    out = await _out(db, endpoint)
    await db.commit()
    return out


@router.delete("/{endpoint_id}", status_code=204, summary="Delete a webhook endpoint", responses=SCOPE_ERRORS)
async def delete(endpoint_id: IdPath, token: WriterDep, db: SessionDep) -> Response:
    """Its queue and journal go with it; its workflow ends by itself."""
    endpoint = await _endpoint(db, token, endpoint_id)
    await webhooks.delete_endpoint(db, endpoint, operator_id=None, token_id=token.id)
    await db.commit()
    return Response(status_code=204)


@router.post("/{endpoint_id}/secret", summary="Rotate the signing secret", responses=WRITE_ERRORS | SCOPE_ERRORS)
async def rotate(endpoint_id: IdPath, request: Request, token: WriterDep, db: SessionDep, once: OnceDep) -> SecretOut:
    """A new secret signs from now on; the previous one keeps signing beside it (a second `v1=`)
    for WEBHOOK_SECRET_OVERLAP_HOURS, so the receiver switches without losing an event."""
    endpoint = await _endpoint(db, token, endpoint_id)
    if (first := await once.replay(None)) is not None:
        return first
    state = request.app.state
    overlap = timedelta(hours=state.settings.webhook_secret_overlap_hours)
    secret = await webhooks.rotate_secret(
        db, state.credential_box, endpoint, overlap=overlap, operator_id=None, token_id=token.id
    )
    response = await once.answer(200, SecretOut(secret=secret, previous_valid_until=datetime.now(UTC) + overlap))
    await db.commit()
    return response


@router.post("/{endpoint_id}/pause", summary="Pause delivery", responses=SCOPE_ERRORS)
async def pause(endpoint_id: IdPath, token: WriterDep, db: SessionDep) -> EndpointOut:
    """Events keep queueing and go out on resume."""
    endpoint = await _endpoint(db, token, endpoint_id)
    await webhooks.pause(db, endpoint, reason="Paused through the API.", operator_id=None, token_id=token.id)
    out = await _out(db, endpoint)
    await db.commit()
    return out


@router.post("/{endpoint_id}/resume", summary="Resume delivery", responses=SCOPE_ERRORS)
async def resume(endpoint_id: IdPath, request: Request, token: WriterDep, db: SessionDep) -> EndpointOut:
    endpoint = await _endpoint(db, token, endpoint_id)
    await webhooks.resume(db, endpoint, operator_id=None, token_id=token.id)
    out = await _out(db, endpoint)
    await db.commit()
    await wake_webhook_endpoint(request, endpoint_id)
    return out


@router.post("/{endpoint_id}/redeliver", summary="Redeliver events", responses=WRITE_ERRORS | SCOPE_ERRORS)
async def redeliver(
    endpoint_id: IdPath, data: RedeliverInput, request: Request, token: WriterDep, db: SessionDep, once: OnceDep
) -> Redelivery:
    """One event (`event_id`) or every event since a time (`since`, with its offset) again, in
    their original order, delivered or given up; resumes a paused endpoint."""
    endpoint = await _endpoint(db, token, endpoint_id)
    if (first := await once.replay(data)) is not None:
        return first
    queued = await webhooks.redeliver(db, endpoint, data, operator_id=None, token_id=token.id)
    response = await once.answer(200, Redelivery(queued=queued))
    await db.commit()
    await wake_webhook_endpoint(request, endpoint_id)
    return response


@router.get("/{endpoint_id}/deliveries", summary="Read the delivery journal", responses=SCOPE_ERRORS)
async def deliveries(endpoint_id: IdPath, token: TokenDep, db: SessionDep, limit: Limit = 100) -> list[AttemptOut]:
    """Every try, newest first: its event, status code, latency and the receiver's answer."""
    await _endpoint(db, token, endpoint_id)
    attempts: list[WebhookAttempt] = await webhooks.delivery_log(db, endpoint_id, limit=limit)
    return [AttemptOut.model_validate(a, from_attributes=True) for a in attempts]
