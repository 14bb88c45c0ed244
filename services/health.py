"""The health page's answers (seed 003 item 22): is each part reachable and keeping up, measured
now, each judged against a stated threshold, the same data for the page and for monitoring:
the core checks, each inbox's connection, each outgoing webhook endpoint, and the outbox rows
parked for a supervisor's retry.

The worker stamps `worker_heartbeats` every HEARTBEAT_SECONDS (`heartbeat_forever`, started by
worker.py); no fresh stamp means nobody is running workflows, whatever else looks fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.enums import ChannelKind, DeliveryStatus, MessageDirection
from domain.wording import N_
from infra.models import Inbox, Message, OutboxEvent, WorkerHeartbeat
from services import webhooks

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
# thresholds: past `warn` a check is amber, past `bad` red (each says what it measures)
DB_LATENCY_MS = (50.0, 500.0)
TEMPORAL_LATENCY_MS = (200.0, 2000.0)
HEARTBEAT_AGE_S = (HEARTBEAT_SECONDS * 2, HEARTBEAT_SECONDS * 4)
OUTBOX_OLDEST_S = (10.0, 60.0)  # the relay drains within milliseconds when Temporal is up
OUTBOX_REFUSED = (1, 20)  # rows Temporal refused (not merely missed) that the relay still retries
# a parked row holds one conversation's change until a supervisor retries it: never fine, and
# red once so many pile up that Temporal itself is refusing us
OUTBOX_PARKED = (1, 10)
PARKED_SHOWN = 50  # the oldest parked rows listed with their error; the check counts them all
DEAD_LETTERS = (1, 50)
QUEUED_OLDEST_S = (60.0, 600.0)  # a reply waits for its rate slot, seconds at most
WEBHOOK_CHECK_AGE_S = (1800.0, 3600.0)  # the webhook check runs every 10 minutes
PROBE_TIMEOUT_S = 3.0


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    BAD = "bad"
    UNKNOWN = "unknown"


def judge(value: float | None, limits: tuple[float, float]) -> Level:
    if value is None:
        return Level.OK
    warn, bad = limits
    return Level.BAD if value >= bad else Level.WARN if value >= warn else Level.OK


@dataclass
class Check:
    key: str  # stable, for monitoring
    label: str  # msgid
    level: Level
    value: float | int | str | None = None
    unit: str = ""
    limits: tuple[float, float] | None = None
    detail: str | None = None  # what went wrong, as the part said it (not translated)


@dataclass
class InboxHealth:
    id: int
    name: str
    channel: str
    mode: str  # webhook | polling | widget | off
    level: Level
    error: str | None = None
    checked_at: datetime | None = None
    poller_running: bool | None = None


@dataclass
class ParkedRow:
    """An outbox row set aside after PARK_AFTER refusals (services/outbox.py)."""

    id: int
    conversation_id: int
    kind: str
    refusals: int
    parked_at: datetime
    error: str | None


@dataclass
class EndpointState:
    """An outgoing webhook endpoint: paused (after a day of failures) is red, failing or holding
    dead letters amber. Only the URL's host is shown: the rest of a receiver's URL is often its
    secret (Zapier's and n8n's hooks are)."""

    id: int
    name: str
    host: str
    level: Level
    paused: bool
    pause_reason: str | None
    failing_since: datetime | None
    last_error: str | None
    queued: int
    dead: int
    oldest_queued_at: datetime | None


@dataclass
class Report:
    checked_at: datetime
    checks: list[Check] = field(default_factory=list)
    inboxes: list[InboxHealth] = field(default_factory=list)
    endpoints: list[EndpointState] = field(default_factory=list)
    parked: list[ParkedRow] = field(default_factory=list)

    @property
    def level(self) -> Level:
        levels = [c.level for c in self.checks] + [i.level for i in self.inboxes] + [e.level for e in self.endpoints]
        for level in (Level.BAD, Level.UNKNOWN, Level.WARN):
            if level in levels:
                return level
        return Level.OK

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items() if k != "label"}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            return value

        return {
            "status": self.level.value,
            "checked_at": self.checked_at.isoformat(),
            "checks": {c.key: plain(asdict(c)) for c in self.checks},
            "inboxes": [plain(asdict(i)) for i in self.inboxes],
            "webhook_endpoints": [plain(asdict(e)) for e in self.endpoints],
            "parked_outbox": [plain(asdict(p)) for p in self.parked],
        }


async def _timed(probe: Awaitable[Any]) -> float:
    started = time.perf_counter()
    async with asyncio.timeout(PROBE_TIMEOUT_S):
        await probe
    return (time.perf_counter() - started) * 1000


def _age(now: datetime, then: datetime | None) -> float | None:
    return None if then is None else max((now - then).total_seconds(), 0.0)


async def report(
    factory: async_sessionmaker[AsyncSession],
    temporal_check: Callable[[], Awaitable[None]],
    poller_running: Callable[[int], Awaitable[bool]],
) -> Report:
    """Measure everything now. `temporal_check` raises when Temporal does not answer;
    `poller_running(inbox_id)` asks Temporal about one poller."""
    now = datetime.now(UTC)
    result = Report(checked_at=now)
    checks = result.checks
    try:
        async with factory() as db:
            latency = await _timed(db.execute(text("SELECT 1")))
    except Exception as exc:  # noqa: BLE001 - an unreachable database is the answer, not an error
        checks.append(Check("postgres", N_("PostgreSQL reachable"), Level.BAD, detail=type(exc).__name__))
        return result
    checks.append(
        Check(
            "postgres",
            N_("PostgreSQL reachable"),
            judge(latency, DB_LATENCY_MS),
            round(latency, 1),
            "ms",
            DB_LATENCY_MS,
        )
    )
    temporal_up = True
    try:
        latency = await _timed(temporal_check())
        checks.append(
            Check(
                "temporal",
                N_("Temporal reachable"),
                judge(latency, TEMPORAL_LATENCY_MS),
                round(latency, 1),
                "ms",
                TEMPORAL_LATENCY_MS,
            )
        )
    except Exception as exc:  # noqa: BLE001 - as above
        temporal_up = False
        checks.append(
            Check("temporal", N_("Temporal reachable"), Level.BAD, detail=type(exc).__name__ or "unreachable")
        )

    async with factory() as db:
        beat = await db.scalar(select(func.max(WorkerHeartbeat.beat_at)))
        workers = await db.scalar(
            select(func.count())
            .select_from(WorkerHeartbeat)
            .where(WorkerHeartbeat.beat_at > now - timedelta(seconds=HEARTBEAT_AGE_S[0]))
        )
        outbox = (await db.execute(select(func.count(), func.min(OutboxEvent.created_at)))).one()
        refused = await db.scalar(
            select(func.count())
            .select_from(OutboxEvent)
            .where(OutboxEvent.refusals > 0, OutboxEvent.parked_at.is_(None))
        )
        parked = await db.scalar(
            select(func.count()).select_from(OutboxEvent).where(OutboxEvent.parked_at.is_not(None))
        )
        result.parked = [
            ParkedRow(row.id, row.conversation_id, row.kind, row.refusals, row.parked_at, row.last_error)
            for row in await db.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.parked_at.is_not(None))
                .order_by(OutboxEvent.parked_at, OutboxEvent.id)
                .limit(PARKED_SHOWN)
            )
        ]
        result.endpoints = [_endpoint_state(e) for e in await webhooks.health(db)]
        dead = await db.scalar(
            select(func.count())
            .select_from(Message)
            .where(
                Message.delivery_status == DeliveryStatus.FAILED,
                Message.discarded_at.is_(None),
                Message.direction == MessageDirection.OUT,
            )
        )
        pending = dict(
            (
                await db.execute(
                    select(Message.delivery_status, func.count())
                    .where(
                        Message.direction == MessageDirection.OUT,
                        Message.delivery_status.in_((DeliveryStatus.QUEUED, DeliveryStatus.SENDING)),
                    )
                    .group_by(Message.delivery_status)
                )
            ).all()
        )
        oldest_pending = await db.scalar(
            select(func.min(Message.created_at)).where(
                Message.direction == MessageDirection.OUT,
                Message.delivery_status.in_((DeliveryStatus.QUEUED, DeliveryStatus.SENDING)),
            )
        )
        inboxes = (await db.scalars(select(Inbox).order_by(Inbox.id))).all()

    beat_age = _age(now, beat)
    checks.append(
        Check(
            "worker",
            N_("Worker heartbeat"),
            Level.BAD if beat_age is None else judge(beat_age, HEARTBEAT_AGE_S),
            None if beat_age is None else round(beat_age, 1),
            "s",
            HEARTBEAT_AGE_S,
            None if beat_age is not None else "no worker has ever reported",
        )
    )
    checks.append(Check("workers", N_("Workers reporting"), Level.OK if workers else Level.BAD, workers))
    checks.append(Check("outbox_depth", N_("Outbox rows waiting"), Level.OK, outbox[0]))
    oldest = _age(now, outbox[1])
    checks.append(
        Check(
            "outbox_oldest",
            N_("Oldest outbox row"),
            judge(oldest, OUTBOX_OLDEST_S),
            None if oldest is None else round(oldest, 1),
            "s",
            OUTBOX_OLDEST_S,
        )
    )
    checks.append(
        Check(
            "outbox_refused",
            N_("Outbox rows Temporal refused, retrying"),
            judge(refused, OUTBOX_REFUSED),
            refused,
            "",
            OUTBOX_REFUSED,
        )
    )
    checks.append(
        Check(
            "outbox_parked",
            N_("Outbox rows parked for a retry"),
            judge(parked, OUTBOX_PARKED),
            parked,
            "",
            OUTBOX_PARKED,
        )
    )
    checks.append(Check("dead_letters", N_("Dead letters"), judge(dead, DEAD_LETTERS), dead, "", DEAD_LETTERS))
    checks.append(Check("queued", N_("Messages queued"), Level.OK, pending.get(DeliveryStatus.QUEUED, 0)))
    checks.append(Check("sending", N_("Messages sending"), Level.OK, pending.get(DeliveryStatus.SENDING, 0)))
    waited = _age(now, oldest_pending)
    checks.append(
        Check(
            "queued_oldest",
            N_("Oldest message waiting to be sent"),
            judge(waited, QUEUED_OLDEST_S),
            None if waited is None else round(waited, 1),
            "s",
            QUEUED_OLDEST_S,
        )
    )

    for inbox in inboxes:
        result.inboxes.append(await _inbox_health(inbox, now, poller_running if temporal_up else None))
    return result


def _endpoint_state(endpoint: webhooks.EndpointHealth) -> EndpointState:
    if endpoint.paused:
        level = Level.BAD
    elif endpoint.failing_since is not None or endpoint.dead:
        level = Level.WARN
    else:
        level = Level.OK
    return EndpointState(
        endpoint.endpoint_id,
        endpoint.name,
        urlsplit(endpoint.url).hostname or "",
        level,
        endpoint.paused,
        endpoint.pause_reason,
        endpoint.failing_since,
        endpoint.last_error,
        endpoint.queued,
        endpoint.dead,
        endpoint.oldest_queued_at,
    )


async def _inbox_health(
    inbox: Inbox, now: datetime, poller_running: Callable[[int], Awaitable[bool]] | None
) -> InboxHealth:
    health = InboxHealth(
        inbox.id, inbox.name, inbox.channel.value, "off", Level.OK, inbox.webhook_error, inbox.webhook_checked_at
    )
    if not inbox.is_active:
        return health
    if inbox.channel == ChannelKind.WIDGET:
        health.mode = "widget"
        return health
    if inbox.webhook_url is not None:
        health.mode = "webhook"
        stale = (
            judge(_age(now, inbox.webhook_checked_at) or 0.0, WEBHOOK_CHECK_AGE_S)
            if inbox.webhook_checked_at
            else Level.WARN
        )
        health.level = Level.BAD if inbox.webhook_error else stale
        return health
    health.mode = "polling"
    if poller_running is None:
        health.level = Level.UNKNOWN
        return health
    try:
        health.poller_running = await poller_running(inbox.id)
    except Exception as exc:  # noqa: BLE001 - Temporal went away while we asked
        log.info("poller state of inbox %s unknown: %s", inbox.id, type(exc).__name__)
        health.level = Level.UNKNOWN
        return health
    health.level = Level.BAD if not health.poller_running or inbox.webhook_error else Level.OK
    return health


async def beat(
    factory: async_sessionmaker[AsyncSession], *, worker: str, task_queue: str, started_at: datetime
) -> None:
    """One heartbeat of this worker; rows of workers gone for a day are dropped."""
    now = datetime.now(UTC)
    async with factory() as db, db.begin():
        statement = insert(WorkerHeartbeat).values(
            worker=worker, task_queue=task_queue, started_at=started_at, beat_at=now
        )
        await db.execute(
            statement.on_conflict_do_update(
                index_elements=[WorkerHeartbeat.worker],
                set_={"beat_at": now, "task_queue": task_queue, "started_at": started_at},
            )
        )
        await db.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - timedelta(days=1)))


async def heartbeat_forever(
    factory: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    *,
    worker: str,
    task_queue: str,
    every: float = HEARTBEAT_SECONDS,
) -> None:
    started_at = datetime.now(UTC)
    while not stop.is_set():
        try:
            await beat(factory, worker=worker, task_queue=task_queue, started_at=started_at)
        except Exception as exc:  # noqa: BLE001 - the database may be away a moment; the page then shows it
            log.warning("worker heartbeat not written: %s", type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
