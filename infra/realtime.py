"""Realtime events over PostgreSQL NOTIFY: published inside the writing transaction, so
listeners hear about a change exactly when it commits (and never about a rolled-back one).

Payloads are small ids-only JSON; every api process LISTENs once and filters per subscriber.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "switchboard_events"
log = logging.getLogger(__name__)


async def publish(db: AsyncSession, event_type: str, **fields: Any) -> None:
    payload = json.dumps({"type": event_type, **fields}, separators=(",", ":"), default=str)
    await db.execute(select(func.pg_notify(CHANNEL, payload)))


def asyncpg_dsn(sqlalchemy_url: str) -> dict[str, Any]:
    """Connection arguments for a raw asyncpg connection (LISTEN needs one of its own)."""
    url = make_url(sqlalchemy_url)
    args: dict[str, Any] = {"user": url.username, "password": url.password, "database": url.database}
    if host := url.query.get("host"):
        args["host"] = host
    else:
        args["host"], args["port"] = url.host, url.port
    return args


class RealtimeListener:
    """One LISTEN connection fanning events out to in-process subscribers."""

    def __init__(self, database_url: str, channel: str = CHANNEL) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._channel = channel
        self._conn: asyncpg.Connection | None = None
        self._queues: set[asyncio.Queue[dict[str, Any]]] = set()

    async def start(self) -> None:
        self._conn = await asyncpg.connect(**self._dsn)
        await self._conn.add_listener(self._channel, self._on_notify)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        event = json.loads(payload)
        for queue in self._queues:
            queue.put_nowait(event)

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
