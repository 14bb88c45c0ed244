"""Channel webhooks: verify the provider's secret, parse, ingest, answer at commit.

Never a 500 for what a provider sends: an unknown inbox is 404, a bad secret 401, a body that
is not an update 400 (413 past the size cap). An update we do not handle, one whose fields do
not parse, and one whose data the database refuses are acknowledged (200) and logged: a
redelivery would fail the same way, and Telegram holds back a bot's later updates until one is
accepted (MAX drops a subscription after 8 h of failures). Only the database being away answers
5xx (503), so the provider retries.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from channels.base import MalformedUpdate, Webhook
from channels.payload import MAX_BODY_BYTES, UnreadableUpdate, load_json
from domain.contracts import INT64_MAX
from domain.enums import ChannelKind
from infra import metrics
from infra.models import Inbox
from services.ingest import ingest, refused_for_its_data
from web.problems import problem

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

# Inbox credentials change rarely; a webhook burst should not decrypt them per request.
CACHE_SECONDS = 30.0
# A secret that does not match credentials this old is checked against the database again (a
# rotation in another process), at most this often per inbox.
RECHECK_AFTER_SECONDS = 1.0


@dataclass(frozen=True)
class _InboxAuth:
    channel: ChannelKind
    credentials: dict[str, Any]
    loaded_at: float


async def _inbox_auth(request: Request, inbox_id: int, *, fresh: bool = False) -> _InboxAuth | None:
    if not 0 < inbox_id <= INT64_MAX:
        return None  # no such row, and the database would refuse the number
    cache: dict[int, _InboxAuth] = request.app.state.inbox_cache
    cached = cache.get(inbox_id)
    if not fresh and cached is not None and time.monotonic() - cached.loaded_at < CACHE_SECONDS:
        return cached
    async with request.app.state.sessionmaker() as db:
        row = (
            await db.execute(
                select(Inbox.channel, Inbox.credentials_encrypted).where(Inbox.id == inbox_id, Inbox.is_active)
            )
        ).first()
    if row is None:
        cache.pop(inbox_id, None)
        return None
    auth = _InboxAuth(row.channel, request.app.state.credential_box.open(row.credentials_encrypted), time.monotonic())
    cache[inbox_id] = auth
    return auth


@router.post("/webhooks/{channel}/{inbox_id}")
async def receive(channel: str, inbox_id: int, request: Request) -> Response:
    adapter = request.app.state.adapters.get(channel)
    auth = await _inbox_auth(request, inbox_id) if isinstance(adapter, Webhook) else None
    if auth is None or auth.channel.value != channel:
        return problem(404, "Not Found", "No such inbox for this channel.")
    if not adapter.verify_webhook(request.headers, auth.credentials):
        if time.monotonic() - auth.loaded_at > RECHECK_AFTER_SECONDS:
            auth = await _inbox_auth(request, inbox_id, fresh=True)
        if auth is None or not adapter.verify_webhook(request.headers, auth.credentials):
            metrics.WEBHOOK_VERIFICATION_FAILURES.labels(channel=channel).inc()
            return problem(401, "Unauthorized", "The webhook secret does not match.")
    body = await _body(request)
    if body is None:
        return problem(413, "Content Too Large", f"An update is at most {MAX_BODY_BYTES} bytes.")
    try:
        events = adapter.parse_update(inbox_id, load_json(body))
    except UnreadableUpdate as exc:
        log.warning("inbox %s: acknowledging an update that does not parse: %s", inbox_id, exc)
        metrics.SKIPPED_UPDATES.labels(channel=channel).inc()
        return JSONResponse({"ok": True})
    except MalformedUpdate as exc:
        return problem(400, "Bad Request", f"Not a {channel} update: {exc}")
    for event in events:
        try:
            stored = await ingest(request.app.state.sessionmaker, event)
        except DBAPIError as exc:
            if not refused_for_its_data(exc):
                # the database is away: the provider retries, which is right
                log.warning(
                    "inbox %s: database unavailable (%s); asking the provider to retry",
                    inbox_id,
                    type(exc.orig).__name__,
                )
                unavailable = problem(503, "Service Unavailable", "Try again later.")
                unavailable.headers["Retry-After"] = "5"
                return unavailable
            # The same data would be refused on every retry, and Telegram holds back the
            # bot's later updates until this one is accepted: log it and move on.
            log.error(
                "inbox %s: skipping update %s that cannot be stored (SQLSTATE %s)",
                inbox_id,
                event.provider_message_id,
                getattr(exc.orig, "sqlstate", None),
            )
            continue
        if not stored.duplicate:  # a button press is answered in the background: the spinner stops
            request.app.state.button_answers.answer(adapter, auth.credentials, event)
    return JSONResponse({"ok": True})


async def _body(request: Request) -> bytes | None:
    """The request body, or None once it passes the cap (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
