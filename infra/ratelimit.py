"""Provider rate limits held across every worker process, in PostgreSQL.

Each key (a bot, a chat) has a clock `next_at`: a send reserves the slot at
max(next_at, now) and pushes the clock by the key's interval (GCRA without burst). One
UPSERT per key, so any number of workers agree without a coordinator.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_RESERVE = text(
    """
    INSERT INTO rate_slots (key, next_at) VALUES (:key, clock_timestamp() + make_interval(secs => :interval))
    ON CONFLICT (key) DO UPDATE
        SET next_at = GREATEST(rate_slots.next_at, clock_timestamp()) + make_interval(secs => :interval)
    RETURNING next_at - make_interval(secs => :interval)
    """
)


async def reserve(db: AsyncSession, limits: dict[str, float]) -> datetime:
    """Reserve one send on every key ({key: interval seconds}); returns when it may happen."""
    slot = None
    for key, interval in sorted(limits.items()):  # a fixed order: no lock-order deadlocks
        at = await db.scalar(_RESERVE, {"key": key, "interval": interval})
        slot = at if slot is None else max(slot, at)
    assert slot is not None
    return slot
