"""Channel webhooks: verify the provider's secret, parse, ingest, answer at commit.

Never a 500 for what a provider sends: a bad secret is 401, a body that is not an update 400,
an update kind we do not handle is acknowledged (200) and logged by the adapter, and so is one
whose data the database refuses. Only the database being away answers 5xx, so the provider
retries.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from channels.base import MalformedUpdate, Webhook
from domain.enums import ChannelKind
from infra.models import Inbox
from services.ingest import ingest, refused_for_its_data
from web.problems import problem

router = APIRouter(tags=["webhooks"])
log = logging.getLogger(__name__)

# Inbox credentials change rarely; a webhook burst should not decrypt them per request.
CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class _InboxAuth:
    channel: ChannelKind
    credentials: dict[str, Any]
    loaded_at: float


async def _inbox_auth(request: Request, inbox_id: int) -> _InboxAuth | None:
    cache: dict[int, _InboxAuth] = request.app.state.inbox_cache
    cached = cache.get(inbox_id)
    if cached is not None and time.monotonic() - cached.loaded_at < CACHE_SECONDS:
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
        return problem(401, "Unauthorized", "The webhook secret does not match.")
    try:
        payload = json.loads(await request.body())
        events = adapter.parse_update(inbox_id, payload)
    except (ValueError, MalformedUpdate) as exc:  # JSONDecodeError is a ValueError
        return problem(400, "Bad Request", f"Not a {channel} update: {exc}")
    for event in events:
        try:
            await ingest(request.app.state.sessionmaker, event)
        except DBAPIError as exc:
            if not refused_for_its_data(exc):
                raise  # the database is away: a 5xx makes the provider retry, which is right
            # The same data would be refused on every retry, and Telegram holds back the
            # bot's later updates until this one is accepted: log it and move on.
            log.error(
                "inbox %s: skipping update %s that cannot be stored (SQLSTATE %s)",
                inbox_id,
                event.provider_message_id,
                getattr(exc.orig, "sqlstate", None),
            )
    return JSONResponse({"ok": True})
