"""Rate limits held across every process, in PostgreSQL: provider send slots (`reserve`, the
caller waits for its slot) and request budgets (`admit`, the caller is refused past its burst).

Each key (a bot, a chat) has a clock `next_at`: a send takes the slot at the latest of its keys'
clocks and now, and pushes every one of its keys' clocks to that slot plus the key's interval
(GCRA without burst). Row locks in a fixed key order, so any number of workers agree without a
coordinator.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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


# GCRA with a burst: a key's clock `next_at` is when its budget is whole again; a request is
# admitted while the clock is less than `burst` intervals ahead of now, and moves it one interval.
_ADMIT = text(
    """
    INSERT INTO rate_slots (key, next_at) VALUES (:key, clock_timestamp() + :interval)
    ON CONFLICT (key) DO UPDATE SET next_at = GREATEST(rate_slots.next_at, clock_timestamp()) + :interval
        WHERE rate_slots.next_at <= clock_timestamp() + :tolerance
    RETURNING next_at
    """
)
_REFUSED_FOR = text("SELECT next_at - clock_timestamp() - :tolerance FROM rate_slots WHERE key = :key")
_FORGET_IDLE = text(
    "DELETE FROM rate_slots WHERE starts_with(key, :prefix) AND next_at < clock_timestamp() - CAST(:idle AS interval)"
)


async def admit(db: AsyncSession | AsyncConnection, key: str, rate: float, burst: int) -> timedelta | None:
    """Count one request against `key` (`rate` a second on average, `burst` at once): None when
    admitted, else how long until one would be. Run it in a short transaction of its own: the
    key's row stays locked until that commits."""
    interval = timedelta(seconds=1 / rate)
    tolerance = interval * (burst - 1)
    if await db.scalar(_ADMIT, {"key": key, "interval": interval, "tolerance": tolerance}) is not None:
        return None
    wait = await db.scalar(_REFUSED_FOR, {"key": key, "tolerance": tolerance})
    return max(wait, timedelta(milliseconds=1))


async def forget_idle(db: AsyncSession | AsyncConnection, prefix: str, idle: timedelta) -> int:
    """Drop the budgets under `prefix` that have been whole for `idle`: how many."""
    return (await db.execute(_FORGET_IDLE, {"prefix": prefix, "idle": idle})).rowcount
