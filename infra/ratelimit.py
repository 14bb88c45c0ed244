"""Rate limits held across every process, in PostgreSQL: provider send slots (`reserve`, the
caller waits for its slot) and request budgets (`admit`, the caller is refused past its burst).

A limit is what the provider counts: at most `count` sends in any `window` seconds (Telegram:
30 per second per bot, 1 per second per chat), in a strict sliding window over the moments our
requests *arrive*. We can only schedule when they *leave*, and a send reaches the provider a few
milliseconds after its slot, more or fewer depending on the load of the machine. Scheduled
exactly `count` per `window` (a GCRA clock at window/count), the sends of a window bunched
whenever an early one was held up more than a later one: 384 "429s" in the delivery benchmark's
clean 1,000-reply run at 30/s. So each key (a bot, a chat) keeps two things:

- its last `count` slots: a new slot comes at least `window + MARGIN` after the `count`-th slot
  before it, so no `count + 1` sends fall within a window even when the earlier of them was
  MARGIN later than scheduled and the later one on time;
- a clock `next_at`, the last slot plus window/count: sends never come faster than the rate
  itself (no burst of `count` at one instant).

A send takes the latest of its keys' earliest times (and now), and every one of its keys
records that slot, so a key's slots only increase and its oldest remembered slot is the one
that decides. Unlike a plain GCRA clock, a key catches up on slots the pipeline left unused, as
far as the window allows: saturated, a key sends `count` per `window + MARGIN` (Telegram's bot:
30 per 1.04 s, 96 % of the nominal rate).

Row locks in a fixed key order, so any number of workers agree without a coordinator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

# How much later than its slot a send may reach the provider, relative to the sends a window
# before it, without being counted in their window: the event loop, the HTTP client and the
# network on a busy 2-core machine (gaps of 0.96 s were measured between sends scheduled 1 s apart).
MARGIN = timedelta(milliseconds=40)


@dataclass(frozen=True, slots=True)
class Limit:
    count: int  # at most this many sends ...
    window: float  # ... in any window of this many seconds

    @classmethod
    def per_second(cls, rate: float) -> Limit:
        """`rate` sends a second as providers state it: 30 -> 30 per 1 s; 0.5 -> 1 per 2 s."""
        count = max(1, int(rate))
        return cls(count, count / rate)

    @property
    def spacing(self) -> timedelta:
        return timedelta(seconds=self.window / self.count)


# Lock each key's row (creating it on first use) and read when it is free again.
_LOCK = text(
    """
    INSERT INTO rate_slots (key, next_at) VALUES (:key, clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET next_at = rate_slots.next_at
    RETURNING GREATEST(rate_slots.next_at, clock_timestamp()) AS free_at, rate_slots.recent
    """
)
_ADVANCE = text("UPDATE rate_slots SET next_at = :next_at, recent = :recent WHERE key = :key")


async def reserve(db: AsyncSession, limits: dict[str, Limit]) -> datetime:
    """Reserve one send on every key; returns when it may happen.

    The send happens at the latest of the keys' free times, so every key's clock and log move on
    from that moment: advancing the chat's clock from its own earlier slot would let the next send
    to that chat follow less than an interval after this one whenever the bot's clock was behind."""
    keys = sorted(limits)  # fixed order: no deadlocks
    rows = {key: (await db.execute(_LOCK, {"key": key})).one() for key in keys}
    slot = max(_free_at(limits[key], row.free_at, row.recent) for key, row in rows.items())
    await db.execute(
        _ADVANCE,
        [
            {
                "key": key,
                "next_at": slot + limits[key].spacing,
                "recent": [*rows[key].recent, slot][-limits[key].count :],
            }
            for key in keys
        ],
    )
    return slot


def _free_at(limit: Limit, clock: datetime, recent: list[datetime]) -> datetime:
    """The earliest slot for this key: its clock, and a full window (with the margin) after the
    `count`-th slot before the new one."""
    if len(recent) < limit.count:
        return clock
    return max(clock, recent[-limit.count] + timedelta(seconds=limit.window) + MARGIN)


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
