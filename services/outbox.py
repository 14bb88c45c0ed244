"""Transactional outbox: what the workflows must learn is written in the same transaction as
the change itself, then a relay drains it into Temporal, in order per conversation.

Why: the dev server does ~200 signal-with-starts/s on our machines while PostgreSQL commits
thousands of rows/s; webhooks are acknowledged at commit, and a Temporal outage only delays.

A row Temporal keeps refusing (not merely unreachable) is parked after PARK_AFTER refusals:
supervisors are alerted, its conversation's later rows go on, and `retry_parked` hands it over
again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.conversation import ConversationNotice
from domain.enums import OperatorRole
from domain.events import TEXT_LIMIT, OutboxParked
from domain.wording import N_
from infra.event_log import publish
from infra.models import Conversation, Operator, OutboxEvent
from infra.temporal import WorkflowStarter
from services import audit
from services.errors import Forbidden, Invalid

log = logging.getLogger(__name__)

WAKE_CHANNEL = "switchboard_outbox"
# fail fast while Temporal is down: the row stays and is retried with backoff
RPC_TIMEOUT = timedelta(seconds=5)
OUTAGE_MAX_PAUSE = 5.0  # the longest the relay waits between passes while Temporal is away
_UNREACHABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.RESOURCE_EXHAUSTED,  # overloaded: it will take the row once it catches up
}
# Refusals before a row is parked: with the backoff below (1 s doubling to 60 s) about four
# minutes, long enough to ride out a server hiccup, short enough not to hold a conversation.
PARK_AFTER = 10


def _unreachable(exc: BaseException) -> bool:
    """Temporal did not answer (down, restarting, overloaded): not this row's fault."""
    if isinstance(exc, RPCError):
        return exc.status in _UNREACHABLE
    return isinstance(exc, (TimeoutError, ConnectionError))


NOTICE = "notice"  # payload: a ConversationNotice for conversation-{id}
DELIVER = "deliver"  # payload {"message_id": ...}: start delivery-{message_id}
FETCH_FILES = "fetch_files"  # payload {"message_id": ...}: start files-{message_id}


async def add_notice(db: AsyncSession, conversation_id: int, notice: ConversationNotice) -> None:
    await _add(db, conversation_id, NOTICE, notice_payload(notice))


def notice_payload(notice: ConversationNotice) -> dict[str, Any]:
    return notice.model_dump(mode="json", exclude={"outbox_id"})


async def add_delivery(db: AsyncSession, conversation_id: int, message_id: int, *, retry: bool = False) -> None:
    """Start delivery-{message_id}; `retry` (a supervisor's, from the dead-letter list) runs it again."""
    await _add(db, conversation_id, DELIVER, {"message_id": message_id, "retry": retry})


async def add_fetch(db: AsyncSession, conversation_id: int, message_id: int) -> None:
    """Fetch an inbound message's attachments from the provider into our file store."""
    await _add(db, conversation_id, FETCH_FILES, {"message_id": message_id})


async def _add(db: AsyncSession, conversation_id: int, kind: str, payload: dict[str, Any]) -> int:
    # The relay takes a conversation's oldest visible row and the workflow ignores a notice at or
    # below the last id it applied, so one conversation's rows must commit in id order: a writer
    # locks the conversation before its row takes an id and holds it until commit, and the next
    # writer's id comes after. (Most writers hold the lock already; the hand-written inbound
    # statements in services/ingest.py lock, or create, the conversation in the same statement.)
    # NO KEY UPDATE: writers exclude each other, not rows that merely reference the conversation.
    await db.execute(select(Conversation.id).where(Conversation.id == conversation_id).with_for_update(key_share=True))
    row = OutboxEvent(conversation_id=conversation_id, kind=kind, payload=payload)
    db.add(row)
    # wakes the relay at commit instead of at its next poll
    await db.execute(select(func.pg_notify(WAKE_CHANNEL, "")))
    return row.id


async def retry_parked(db: AsyncSession, operator: Operator, outbox_id: int) -> int:
    """A supervisor hands a parked row to the relay again; returns its new id. It joins the back
    of its conversation's queue under a new id: the workflow has applied later notices
    meanwhile and would take the old id for one it has seen."""
    if operator.role not in (OperatorRole.SUPERVISOR, OperatorRole.ADMIN):
        raise Forbidden()
    row = await db.scalar(
        select(OutboxEvent).where(OutboxEvent.id == outbox_id, OutboxEvent.parked_at.is_not(None)).with_for_update()
    )
    if row is None:
        raise Invalid(N_("This change is not set aside (any more): nothing to retry."))
    await db.delete(row)
    new_id = await _add(db, row.conversation_id, row.kind, row.payload)
    audit.record(
        db,
        "outbox.retried",
        operator_id=operator.id,
        conversation_id=row.conversation_id,
        details={"outbox_id": outbox_id, "new_outbox_id": new_id, "kind": row.kind},
    )
    return new_id


# The head of each conversation's queue: nothing older of the same conversation is pending,
# so even several relays (one per worker replica) never reorder a conversation's events.
# Parked rows are out of the queue.
_CLAIM = text(
    """
    SELECT o.id, o.conversation_id, o.kind, o.payload, o.refusals
    FROM outbox_events o
    WHERE o.available_at <= now() AND o.parked_at IS NULL
      AND NOT EXISTS (
        SELECT 1 FROM outbox_events p
        WHERE p.conversation_id = o.conversation_id AND p.id < o.id AND p.parked_at IS NULL)
    ORDER BY o.id
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
    """
)


# Every try counts in `attempts`; only Temporal's refusals (not its absence) in `refusals`, which
# set the row's backoff and, at PARK_AFTER, park it.
_TRIED = text(
    "UPDATE outbox_events SET attempts = attempts + 1, refusals = refusals + :refused, last_error = :err, "
    "available_at = now() + make_interval(secs => :delay) WHERE id = :id"
)


class OutboxRelay:
    def __init__(
        self,
        factory: async_sessionmaker[AsyncSession],
        client: Client,
        task_queue: str,
        *,
        batch: int = 200,
        concurrency: int = 32,
        idle_poll: float = 1.0,
    ) -> None:
        self._factory = factory
        self._starter = WorkflowStarter(client, task_queue, rpc_timeout=RPC_TIMEOUT)
        self._batch = batch
        self._sem = asyncio.Semaphore(concurrency)
        self._idle_poll = idle_poll
        self._wake = asyncio.Event()
        self.temporal_unreachable = False  # the last pass could not reach Temporal

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self, stop: asyncio.Event) -> None:
        pause = 0.0  # while Temporal is unreachable: 0.5 s doubling to OUTAGE_MAX_PAUSE
        while not stop.is_set():
            try:
                drained = await self.drain_once()
            except Exception:
                log.exception("outbox relay pass failed")
                drained = 0
            if self.temporal_unreachable:
                pause = min(max(pause * 2, 0.5), OUTAGE_MAX_PAUSE)
                await self._sleep(stop, pause)
                continue
            pause = 0.0
            if drained < self._batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._idle_poll)

    @staticmethod
    async def _sleep(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)

    async def drain_once(self) -> int:
        """One pass: claim queue heads, hand them to Temporal, delete what was accepted.

        A row Temporal refused waits with its own backoff (1 s doubling to 60 s), and is parked
        at its PARK_AFTER-th refusal. A row that failed only because Temporal is unreachable
        stays due and counts no refusal: the relay as a whole pauses a few seconds instead, so
        everything moves within seconds of Temporal coming back (after an outage of minutes,
        per-row backoff had put every row up to a minute out)."""
        self.temporal_unreachable = False
        async with self._factory() as db, db.begin():
            rows = (await db.execute(_CLAIM, {"limit": self._batch})).all()
            if not rows:
                return 0
            results = await asyncio.gather(*(self._dispatch(row) for row in rows), return_exceptions=True)
            done = [row.id for row, res in zip(rows, results, strict=True) if res is None]
            for row, res in zip(rows, results, strict=True):
                if res is None:
                    continue
                unreachable = _unreachable(res)
                self.temporal_unreachable |= unreachable
                error = f"{type(res).__name__}: {res}"[:TEXT_LIMIT]
                if unreachable:
                    await db.execute(_TRIED, {"err": error, "refused": 0, "delay": 0, "id": row.id})
                    continue
                if row.refusals + 1 >= PARK_AFTER:
                    await self._park(db, row, error)
                    continue
                delay = min(2 ** min(row.refusals, 6), 60)
                log.warning(
                    "outbox %s for conversation %s refused (%s); retry in %s s",
                    row.id,
                    row.conversation_id,
                    error,
                    delay,
                )
                await db.execute(_TRIED, {"err": error, "refused": 1, "delay": delay, "id": row.id})
            if self.temporal_unreachable:
                log.warning("Temporal unreachable: %d outbox rows wait", len(rows) - len(done))
            if done:
                await db.execute(text("DELETE FROM outbox_events WHERE id = ANY(:ids)"), {"ids": done})
            return len(rows)

    @staticmethod
    async def _park(db: AsyncSession, row: Any, error: str) -> None:
        refusals = row.refusals + 1
        log.error(
            "outbox %s for conversation %s parked after %d refusals: %s", row.id, row.conversation_id, refusals, error
        )
        await db.execute(
            text(
                "UPDATE outbox_events SET attempts = attempts + 1, refusals = :refusals, last_error = :err, "
                "parked_at = now() WHERE id = :id"
            ),
            {"refusals": refusals, "err": error, "id": row.id},
        )
        audit.record(
            db,
            "outbox.parked",
            conversation_id=row.conversation_id,
            details={"outbox_id": row.id, "kind": row.kind, "refusals": refusals, "error": error},
        )
        await publish(
            db, OutboxParked(outbox_id=row.id, conversation_id=row.conversation_id, kind=row.kind, error=error)
        )

    async def _dispatch(self, row: Any) -> None:
        async with self._sem:
            if row.kind == DELIVER:
                await self._starter.start_delivery(row.payload["message_id"], retry=row.payload.get("retry", False))
            elif row.kind == FETCH_FILES:
                await self._starter.start_fetch_attachments(row.payload["message_id"])
            else:
                notice = ConversationNotice.model_validate({**row.payload, "outbox_id": row.id})
                await self._starter.notify_conversation(row.conversation_id, notice)


async def listen_for_wakeups(database_url: str, relay: OutboxRelay, stop: asyncio.Event) -> None:
    """LISTEN on the outbox channel so new rows are relayed within milliseconds."""
    import asyncpg

    from infra.db import asyncpg_dsn

    while not stop.is_set():
        try:
            conn = await asyncpg.connect(**asyncpg_dsn(database_url))
            try:
                await conn.add_listener(WAKE_CHANNEL, lambda *_: relay.wake())
                relay.wake()
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), 30)
                    except TimeoutError:
                        await conn.execute("SELECT 1")  # a dead connection raises here
            finally:
                await conn.close()
        except Exception:
            log.exception("outbox LISTEN connection lost")
            await asyncio.sleep(2)
