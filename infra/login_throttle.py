"""Sign-in throttling per account and per client address, in PostgreSQL so every api replica
counts the same failures.

An attempt is counted before its password is checked, under the keys' row locks, so a burst of
parallel guesses cannot all slip in before the first failure is written. After a few free
failures each further one makes the key wait, doubling from 1 s up to a cap: a stranger can make
a real user wait at most that long, and a success clears both keys. Keys are kept for accounts
that do not exist too, so the answers never tell whether one does.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class Backoff:
    free: int  # failures before the first wait
    cap: timedelta

    def wait_after(self, failures: int) -> timedelta:
        if failures <= self.free:
            return timedelta(0)
        return min(self.cap, timedelta(seconds=2 ** min(failures - self.free - 1, 20)))


ACCOUNT = Backoff(free=5, cap=timedelta(minutes=1))
# Offices share an address, and until trusted proxies are configured everyone behind a reverse
# proxy does: more free failures, and the same short cap.
ADDRESS = Backoff(free=20, cap=timedelta(minutes=1))
# A key without a failure for this long starts over.
FORGET_AFTER = timedelta(minutes=15)

# Lock each key's row, creating it on first use (no failures yet).
_LOCK = text(
    """
    INSERT INTO login_throttles (key, failures, last_failure_at, blocked_until)
    VALUES (:key, 0, clock_timestamp(), clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET failures = login_throttles.failures
    RETURNING failures, last_failure_at, blocked_until, clock_timestamp() AS now
    """
)
_COUNT = text(
    "UPDATE login_throttles SET failures = :failures, last_failure_at = :now, blocked_until = :until WHERE key = :key"
)
_CLEAR = text("DELETE FROM login_throttles WHERE key IN :keys").bindparams(bindparam("keys", expanding=True))
# Forgotten keys are dropped a few at a time, so strangers trying many addresses cannot grow the table.
_FORGET = text(
    """
    DELETE FROM login_throttles WHERE key IN (
        SELECT key FROM login_throttles
        WHERE last_failure_at < clock_timestamp() - CAST(:forget AS interval) AND blocked_until < clock_timestamp()
        LIMIT 100 FOR UPDATE SKIP LOCKED)
    """
)


def throttle_keys(email: str, address: str) -> dict[str, Backoff]:
    """The account as typed (normalised, hashed: no address book in this table) and the client
    address; an IPv6 client is its /64, which one subscriber usually holds whole."""
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    try:
        ip = ipaddress.ip_address(address)
        if ip.version == 6 and ip.ipv4_mapped is None:
            address = str(ipaddress.ip_network(f"{ip}/64", strict=False))
        elif ip.version == 6:
            address = str(ip.ipv4_mapped)
    except ValueError:
        address = address[:60]
    return {f"account:{account}": ACCOUNT, f"address:{address}": ADDRESS}


async def take_attempt(db: AsyncSession, keys: dict[str, Backoff]) -> tuple[timedelta, int]:
    """Count one sign-in attempt against every key, unless a key must still wait: then count
    nothing. Returns (the wait left, the account's failures counted so far, 0 without an
    account key). Commits."""
    rows = {key: (await db.execute(_LOCK, {"key": key})).one() for key in sorted(keys)}  # fixed order: no deadlocks
    now = max(row.now for row in rows.values())  # no later than a row's own creation
    wait = max(row.blocked_until - now for row in rows.values())
    failures = {key: row.failures for key, row in rows.items()}
    if wait <= timedelta(0):
        for key, row in rows.items():
            failures[key] = 1 if now - row.last_failure_at > FORGET_AFTER else row.failures + 1
            await db.execute(
                _COUNT,
                {"key": key, "failures": failures[key], "now": now, "until": now + keys[key].wait_after(failures[key])},
            )
        await db.execute(_FORGET, {"forget": FORGET_AFTER})
    await db.commit()
    account = next((key for key in keys if key.startswith("account:")), None)
    return max(wait, timedelta(0)), failures[account] if account else 0


async def clear(db: AsyncSession, keys: dict[str, Backoff]) -> None:
    """A successful sign-in: both keys start over. Part of the caller's transaction."""
    await db.execute(_CLEAR, {"keys": sorted(keys)})
