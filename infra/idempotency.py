"""Idempotency-Key for the REST API's POSTs, in PostgreSQL (seed 002: 72 hours).

The request that claims a key inserts its row inside its own transaction and commits the row
with its effect and its answer. A second request with the same key blocks on that uncommitted
row (the unique key makes PostgreSQL wait), and once the first commits it reads the answer and
replays it; if the first rolls back, the second claims the key and runs. So two requests that
arrive at once have one effect, a crash leaves nothing pending, and no lease or timer is needed.
Expired keys are taken over by the next request with them and purged by housekeeping.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from infra.models import IdempotencyKey

TTL = timedelta(hours=72)


class KeyReused(Exception):
    """The key was used for another request (method, path or body) by the same token."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str  # the JSON text, exactly as it was sent


_CLAIM = text(
    """
    INSERT INTO api_idempotency_keys (token_id, key, fingerprint, expires_at)
    VALUES (:token_id, :key, :fingerprint, now() + :ttl)
    ON CONFLICT (token_id, key) DO UPDATE
        SET fingerprint = EXCLUDED.fingerprint, expires_at = EXCLUDED.expires_at,
            status = NULL, response = NULL, created_at = now()
        WHERE api_idempotency_keys.expires_at <= now()
    RETURNING 1
    """
)
_FIRST = text(
    "SELECT fingerprint, status, response FROM api_idempotency_keys WHERE token_id = :token_id AND key = :key"
)
_ANSWER = text(
    "UPDATE api_idempotency_keys SET status = :status, response = :response WHERE token_id = :token_id AND key = :key"
)


async def claim(db: AsyncSession, token_id: int, key: str, fingerprint: bytes) -> Answer | None:
    """None: the key is this request's until its transaction ends (then `answer` it before the
    commit). Otherwise the answer the first request with this key got; KeyReused if that
    request was another."""
    params = {"token_id": token_id, "key": key}
    if await db.scalar(_CLAIM, {**params, "fingerprint": fingerprint, "ttl": TTL}) is not None:
        return None
    first = (await db.execute(_FIRST, params)).one()
    if first.fingerprint != fingerprint:
        raise KeyReused()
    if first.status is None:  # a claim committed without its answer: a bug, not a retry
        raise RuntimeError(f"idempotency key of token {token_id} was committed without an answer")
    return Answer(first.status, first.response)


async def answer(db: AsyncSession, token_id: int, key: str, status: int, body: str) -> None:
    await db.execute(_ANSWER, {"token_id": token_id, "key": key, "status": status, "response": body})


async def purge_expired(db: AsyncSession | AsyncConnection, now: datetime) -> int:
    return (await db.execute(delete(IdempotencyKey).where(IdempotencyKey.expires_at < now))).rowcount
