"""Activity of PresenceSweepWorkflow: offline for whoever has had no cabinet tab open too long."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from domain.presence import TAKE_ABSENT_OFFLINE
from services.presence import take_absent_offline


class PresenceActivities:
    def __init__(self, factory: async_sessionmaker[AsyncSession]) -> None:
        self._factory = factory

    @activity.defn(name=TAKE_ABSENT_OFFLINE)
    async def take_absent_offline(self) -> list[int]:
        async with self._factory() as db, db.begin():
            return await take_absent_offline(db)
