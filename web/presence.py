"""Which operators this api process streams to, stamped into the database (services/presence.py)
so every process's tabs count and the sweep needs no process's memory.

One UPDATE per flush for every operator with a stream open here, plus those whose last stream
here just ended: at least every `every` seconds, sooner when an operator's first stream opens or
last one ends (at most one flush a second, so a burst of reconnects costs one statement).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.presence import mark_seen

log = logging.getLogger(__name__)


class StreamPresence:
    def __init__(self, factory: async_sessionmaker[AsyncSession], every: float = 30.0, gap: float = 1.0) -> None:
        self._factory = factory
        self._every = every
        self._gap = gap
        self._open: Counter[int] = Counter()
        self._ended: set[int] = set()
        self._news = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def opened(self, operator_id: int) -> None:
        self._open[operator_id] += 1
        if self._open[operator_id] == 1:
            self._news.set()

    def closed(self, operator_id: int) -> None:
        self._open[operator_id] -= 1
        if self._open[operator_id] <= 0:
            del self._open[operator_id]
            self._ended.add(operator_id)
            self._news.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        # the streams ended with the process: their end is the last stamp
        await self._flush()

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._every):
                    await self._news.wait()
            self._news.clear()
            await self._flush()
            await asyncio.sleep(self._gap)

    async def _flush(self) -> None:
        ids = set(self._open) | self._ended
        self._ended = set()
        if not ids:
            return
        try:
            async with self._factory() as db, db.begin():
                await mark_seen(db, list(ids))
        except Exception:
            log.warning("could not stamp %d operators' presence; trying again", len(ids), exc_info=True)
            self._ended |= ids - set(self._open)
