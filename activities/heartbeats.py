"""Heartbeating while an activity waits on something slow (a rate slot, a provider, a receiver),
so a worker that dies mid-call is noticed within the heartbeat timeout, not the whole timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio import activity


@asynccontextmanager
async def heartbeating(every: float) -> AsyncIterator[None]:
    async def pump() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
