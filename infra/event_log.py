"""The durable, ordered realtime event log: writing events, the same rows from hand-written SQL,
reading them back, pruning.

An event is a row of `realtime_events` written in the transaction of the change it announces.
At commit a deferred trigger (migration 0005) gives it the next id in commit order and NOTIFYs
`CHANNEL` with "<id> <name> <payload>", so listeners hear of a change exactly when it commits,
never of a rolled-back one, and a client that has seen id N has seen every event committed
before it. Live-only events (typing, presence) skip the table: id 0, never replayed.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from domain.events import ConversationIds, Event
from infra.models import Conversation, RealtimeEvent

log = logging.getLogger(__name__)

CHANNEL = "switchboard_events"
# The transaction-scoped lock the commit trigger takes (pg_advisory_xact_lock key).
COMMIT_LOCK = 7264653901


async def publish(db: AsyncSession | AsyncConnection, event: Event) -> None:
    """Announce `event` when the surrounding transaction commits (and never if it rolls back)."""
    if event.DURABLE:
        await db.execute(insert(RealtimeEvent).values(type=event.NAME, payload=event.payload()))
    else:
        payload = json.dumps(event.payload(), separators=(", ", ": "))
        await db.execute(select(func.pg_notify(CHANNEL, f"0 {event.NAME} {payload}")))


def conversation_ids(conversation: Conversation) -> ConversationIds:
    return ConversationIds(
        conversation_id=conversation.id,
        inbox_id=conversation.inbox_id,
        branch_id=conversation.branch_id,
        assignee_id=conversation.assignee_id,
    )


async def load_conversation_ids(db: AsyncSession, conversation_id: int) -> ConversationIds:
    """The conversation as events name it, read in the caller's transaction."""
    row = (
        await db.execute(
            select(Conversation.inbox_id, Conversation.branch_id, Conversation.assignee_id).where(
                Conversation.id == conversation_id
            )
        )
    ).one()
    return ConversationIds(conversation_id=conversation_id, inbox_id=row[0], branch_id=row[1], assignee_id=row[2])


def event_select(
    event: type[Event], source: str, *, columns: Mapping[str, str], constants: Mapping[str, Any] | None = None
) -> str:
    """`SELECT '<name>', <payload> <source>` for `events_insert_sql`: one event per row of
    `source` (a FROM clause, with WHERE if need be), for statements written by hand. `columns`
    maps payload fields to SQL expressions over `source`, `constants` fields to fixed values; the
    fields and defaults come from the event's model, so the JSON is the one `publish` writes."""
    constants = dict(constants or {})
    fields = event.model_fields
    unknown = (set(columns) | set(constants)) - set(fields)
    if unknown:
        raise ValueError(f"{event.NAME} has no field {sorted(unknown)}")
    parts = []
    for name, field in fields.items():
        if name in columns:
            parts.append(f"'{name}', {columns[name]}")
            continue
        if name in constants:
            value = constants[name]
        elif not field.is_required():
            value = field.get_default(call_default_factory=True)
        else:
            raise ValueError(f"{event.NAME}: no value for {name}")
        literal = json.dumps(getattr(value, "value", value)).replace("'", "''")
        parts.append(f"'{name}', '{literal}'::jsonb")
    return f"SELECT '{event.NAME}', jsonb_build_object({', '.join(parts)}) {source}"


def events_insert_sql(*selects: str) -> str:
    """One INSERT for the events of `selects`, numbered in the order given."""
    return "INSERT INTO realtime_events (type, payload) " + " UNION ALL ".join(selects)


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    id: int
    name: str
    payload: str  # JSON text, as NOTIFY carries it


def parse_notification(text: str) -> LoggedEvent:
    event_id, name, payload = text.split(" ", 2)
    return LoggedEvent(int(event_id), name, payload)


_SINCE = "SELECT id, type, payload::text FROM realtime_events WHERE id > $1 ORDER BY id LIMIT $2"
_NEWEST = "SELECT id, type, payload::text FROM realtime_events ORDER BY id DESC LIMIT $1"
_BOUNDS = (
    "SELECT min(id), max(id), (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM realtime_events_id) "
    "FROM realtime_events"
)


async def read_since(conn: Any, after_id: int, limit: int) -> list[LoggedEvent]:
    """Committed events after `after_id`, oldest first (`conn`: an asyncpg connection)."""
    return [LoggedEvent(*row) for row in await conn.fetch(_SINCE, after_id, limit)]


async def read_newest(conn: Any, limit: int) -> list[LoggedEvent]:
    return [LoggedEvent(*row) for row in reversed(await conn.fetch(_NEWEST, limit))]


@dataclass(frozen=True, slots=True)
class LogBounds:
    oldest: int | None  # the oldest event still kept
    newest: int | None  # the newest committed event
    issued: int  # the highest id ever handed out (possibly still committing)


async def bounds(conn: Any) -> LogBounds:
    return LogBounds(*await conn.fetchrow(_BOUNDS))


# The newest row is always kept: it proves that nothing after an older id was pruned.
_PRUNE = text("""
    DELETE FROM realtime_events
    WHERE id < LEAST(
        (SELECT max(id) FROM realtime_events),
        COALESCE((SELECT id FROM realtime_events WHERE created_at >= :cutoff ORDER BY id LIMIT 1),
                 9223372036854775807))
""")


async def prune(db: AsyncSession | AsyncConnection, older_than: datetime) -> int:
    """Delete events created before `older_than` (walking the ids from the oldest, no scan of
    the rest); how many."""
    return (await db.execute(_PRUNE, {"cutoff": older_than})).rowcount


class Wakeups:
    """One LISTEN connection for a process's waiters: `wait` returns once an event has committed
    after it was called, or at its timeout. For queues filled by the commit trigger (outgoing
    webhooks), so their drains learn of new rows at once without asking the table in a loop.
    While the connection is down, waits simply run to their timeout and it is opened again."""

    def __init__(self, dsn: dict[str, Any]) -> None:
        self._dsn = dsn
        self._conn: Any = None
        self._connecting = asyncio.Lock()
        self._waiters: set[asyncio.Event] = set()

    async def wait(self, timeout: float) -> bool:
        """True when woken by an event, False at the timeout."""
        waiter = asyncio.Event()
        self._waiters.add(waiter)
        try:
            await self._ensure_listening()
            async with asyncio.timeout(max(timeout, 0)):
                await waiter.wait()
            return True
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(waiter)

    def _heard(self, *_: object) -> None:
        for waiter in self._waiters:
            waiter.set()

    async def _ensure_listening(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        async with self._connecting:
            if self._conn is not None and not self._conn.is_closed():
                return
            try:
                conn = await asyncpg.connect(**self._dsn, timeout=5)
                await conn.add_listener(CHANNEL, self._heard)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                log.warning("event log LISTEN connection could not be opened; waits time out meanwhile")
                return
            self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
