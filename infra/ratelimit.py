"""Provider rate limits held across every worker process, in PostgreSQL.

Each key (a bot, a chat) has a clock `next_at`: a send takes the slot at the latest of its keys'
clocks and now, and pushes every one of its keys' clocks to that slot plus the key's interval
(GCRA without burst). Row locks in a fixed key order, so any number of workers agree without a
coordinator.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

# Lock each key's row (creating it on first use) and read when it is free again.
_LOCK = text(
    """
    INSERT INTO rate_slots (key, next_at) VALUES (:key, clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET next_at = rate_slots.next_at
    RETURNING GREATEST(rate_slots.next_at, clock_timestamp())
    """
)
_ADVANCE = text("UPDATE rate_slots SET next_at = :next_at WHERE key = :key")


async def reserve(db: AsyncSession, limits: dict[str, float]) -> datetime:
    """Reserve one send on every key ({key: interval seconds}); returns when it may happen.

    The send happens at the latest of the keys' free times, so every key's clock moves on from
    that moment: advancing the chat's clock from its own earlier slot would let the next send to
    that chat follow less than an interval after this one whenever the bot's clock was behind."""
    free_at = [await db.scalar(_LOCK, {"key": key}) for key in sorted(limits)]  # fixed order: no deadlocks
    slot = max(free_at)
    await db.execute(
        _ADVANCE,
        [{"key": key, "next_at": slot + timedelta(seconds=interval)} for key, interval in sorted(limits.items())],
    )
    return slot
