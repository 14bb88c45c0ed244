"""The realtime hub of one api process: one LISTEN connection, fan-out to its subscribers.

- Every event is parsed and serialised once, then handed to the subscribers whose keys it
  shares (domain.visibility): a dict lookup per key, never a test of every subscriber.
- Ordered and gapless: ids come in commit order (infra.event_log). After the LISTEN connection
  drops, the hub reconnects and reads what it missed from the table before going on. A client
  that reconnects with Last-Event-ID gets what it missed from memory (the newest `recent`
  events) or from the table, each event once, in order; when that is gone it is told to resync.
- A subscriber has a bounded queue: one that falls behind is cut off with a resync hint; the
  hub never waits for it. Heartbeats are spread over the interval so no second sends them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.events import BY_NAME, Resync, ResyncReason
from domain.visibility import Key, Viewer, event_keys, viewer_keys
from infra import event_log
from infra.event_log import CHANNEL, LoggedEvent

log = logging.getLogger(__name__)

HEARTBEAT = b": \n\n"
HEARTBEAT_SECONDS = 15
QUEUE_LIMIT = 500  # frames waiting for one subscriber before it is cut off
RECENT = 10_000  # events kept in memory for reconnecting clients
REPLAY_LIMIT = 10_000  # more than this missed: a reload is cheaper than a replay
CATCH_UP_BATCH = 1_000
WATCH_SECONDS = 10  # how often the LISTEN connection is checked


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event as the hub hands it out: parsed and serialised once."""

    id: int  # 0: live only
    keys: frozenset[Key]
    frame: bytes


def sse_frame(event_id: int, name: str, data: str) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {name}\ndata: {data}\n\n".encode()


def outgoing(logged: LoggedEvent) -> Outgoing | None:
    """None for an event this process does not know (a newer writer) or cannot read."""
    model = BY_NAME.get(logged.name)
    if model is None:
        log.warning("realtime event %s of unknown type %r skipped", logged.id, logged.name)
        return None
    try:
        scope = model.model_validate_json(logged.payload).scope()
    except ValidationError:
        log.warning("realtime event %s (%s) does not match its model: skipped", logged.id, logged.name)
        return None
    return Outgoing(logged.id, event_keys(scope), sse_frame(logged.id, logged.name, logged.payload))


def resync_frame(position: int, reason: ResyncReason) -> bytes:
    return sse_frame(position, Resync.NAME, json.dumps(Resync(reason=reason).model_dump(mode="json")))


class Subscriber:
    """One SSE stream. `offer` is called by the hub; the stream's task awaits `frames()`."""

    __slots__ = (
        "_frames",
        "_held",
        "_limit",
        "_on_overflow",
        "_waiter",
        "closed",
        "keys",
        "last_id",
        "sending",
        "task",
        "viewer",
    )

    def __init__(self, viewer: Viewer, last_id: int, limit: int, on_overflow: Callable[[Subscriber], None]) -> None:
        self.viewer = viewer
        self.keys = viewer_keys(viewer)
        self.last_id = last_id
        self.closed = False
        self.sending = False  # the stream is inside a write (a stalled client blocks there)
        self.task: asyncio.Task | None = None
        self._frames: deque[bytes] = deque()
        self._held: list[Outgoing] | None = None  # live events kept back while a replay runs
        self._limit = limit
        self._on_overflow = on_overflow
        self._waiter: asyncio.Future[None] | None = None

    def offer(self, event: Outgoing) -> None:
        if self._held is not None:
            self._held.append(event)  # last_id stays where the replay must start
            if len(self._held) > self._limit:
                self._on_overflow(self)
            return
        if event.id:
            if event.id <= self.last_id:
                return  # already sent (a replay and the live stream overlap)
            self.last_id = event.id
        self.push(event.frame)

    def push(self, frame: bytes) -> None:
        if self.closed:
            return
        if len(self._frames) >= self._limit:
            self._on_overflow(self)
            return
        self._frames.append(frame)
        self._wake()

    def hold(self) -> None:
        self._held = []

    @property
    def replaying(self) -> bool:
        """Live events are kept back until `Hub.replay` has sent what came before them."""
        return self._held is not None

    def release(self, replayed: list[Outgoing], through: int) -> None:
        """End a replay: the replayed events, then the live ones that came after them."""
        held, self._held = self._held or [], None
        for event in replayed:
            self.push(event.frame)
        self.last_id = max(self.last_id, through)
        for event in held:
            self.offer(event)

    def resync(self, position: int, reason: ResyncReason) -> None:
        """Skip to `position`: the client reloads what it shows instead of replaying."""
        self._held = None
        self.last_id = position
        self.push(resync_frame(position, reason))

    def close(self, final: bytes | None = None) -> None:
        self._frames.clear()
        self._held = None
        if final is not None:
            self._frames.append(final)
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def next_frames(self) -> bytes | None:
        """Everything waiting, as one write; None once closed and drained."""
        while not self._frames:
            if self.closed:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        body = self._frames[0] if len(self._frames) == 1 else b"".join(self._frames)
        self._frames.clear()
        return body


class Hub:
    def __init__(
        self,
        engine: AsyncEngine,
        dsn: dict[str, Any],
        *,
        recent: int = RECENT,
        queue_limit: int = QUEUE_LIMIT,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self._engine = engine
        self._dsn = dsn
        self._queue_limit = queue_limit
        self._heartbeat_seconds = heartbeat_seconds
        self._index: dict[Key, set[Subscriber]] = {}
        self._buckets: list[set[Subscriber]] = [set() for _ in range(max(1, int(heartbeat_seconds)))]
        self._joined = 0
        self._recent: deque[Outgoing] = deque(maxlen=recent)
        self.last_id: int | None = None  # the newest durable event handed out; None before the first connect
        self._floor = 0  # every event in (_floor, last_id] is in _recent
        self._held: list[str] | None = None  # notifications that came during a catch-up
        self._tasks: list[asyncio.Task] = []
        self.connected = asyncio.Event()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="realtime-listen"),
            asyncio.create_task(self._heartbeats(), name="realtime-heartbeats"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for sub in list(self.subscribers()):
            sub.close()

    def subscribers(self) -> set[Subscriber]:
        return set().union(*self._buckets)

    # --- listening -------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        pause = 0.5
        while True:
            try:
                conn = await asyncpg.connect(**self._dsn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("realtime: cannot connect to listen (%s); retrying in %.1f s", type(exc).__name__, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            try:
                self._held = []
                await conn.add_listener(CHANNEL, self._on_notify)
                await self._catch_up(conn)
                held, self._held = self._held, None
                for text in held:
                    self._dispatch_text(text)
                self.connected.set()
                pause = 0.5
                await self._watch(conn)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("realtime: listen connection lost (%s); reconnecting", type(exc).__name__)
            except Exception:  # a bug here must not silence every stream of the process
                log.exception("realtime: listener failed; reconnecting")
            finally:
                self.connected.clear()
                self._held = None
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            await asyncio.sleep(pause)  # a restarting database is not hammered; the table keeps what comes meanwhile

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        """What committed while we were not listening, in order (on the first connect: the
        newest events, to serve reconnecting clients from memory)."""
        if self.last_id is None:
            newest = await event_log.read_newest(conn, self._recent.maxlen or 0)
            self.last_id = newest[-1].id if newest else 0
            self._floor = newest[0].id - 1 if newest else 0
            for logged in newest:
                if (event := outgoing(logged)) is not None:
                    self._recent.append(event)
            return
        while rows := await event_log.read_since(conn, self.last_id, CATCH_UP_BATCH):
            for logged in rows:
                self._dispatch_logged(logged)

    async def _watch(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.get_running_loop().create_future()
        conn.add_termination_listener(lambda _c: lost.done() or lost.set_result(None))
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(lost), WATCH_SECONDS)
            if lost.done():
                return
            await asyncio.wait_for(conn.fetchval("SELECT 1"), WATCH_SECONDS)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, text: str) -> None:
        if self._held is not None:
            self._held.append(text)
        else:
            self._dispatch_text(text)

    def _dispatch_text(self, text: str) -> None:
        try:
            logged = event_log.parse_notification(text)
        except ValueError:
            log.warning("realtime: unreadable notification skipped")
            return
        self._dispatch_logged(logged)

    def _dispatch_logged(self, logged: LoggedEvent) -> None:
        if logged.id:
            if logged.id <= (self.last_id or 0):
                return  # caught up from the table already
            # a gap in ids is an id taken by a commit that failed: nothing will ever fill it
            self.last_id = logged.id
        event = outgoing(logged)
        if event is None:
            return
        if event.id:
            if len(self._recent) == self._recent.maxlen:
                self._floor = self._recent[0].id
            self._recent.append(event)
        self.dispatch(event)

    def dispatch(self, event: Outgoing) -> None:
        found = [subs for key in event.keys if (subs := self._index.get(key))]
        if not found:
            return
        recipients = found[0] if len(found) == 1 else set().union(*found)
        for sub in tuple(recipients):
            sub.offer(event)

    # --- subscribers -----------------------------------------------------------------------

    def subscribe(self, viewer: Viewer, last_event_id: int | None = None) -> Subscriber:
        """Register a stream. Events it missed are queued at once when memory has them; when
        `sub.replaying`, the stream must `await replay(sub)` first."""
        position = self.last_id or 0
        sub = Subscriber(viewer, position, self._queue_limit, self._cut_off)
        for key in sub.keys:
            self._index.setdefault(key, set()).add(sub)
        self._buckets[self._joined % len(self._buckets)].add(sub)
        self._joined += 1
        if last_event_id is None:
            return sub
        if self._floor <= last_event_id <= position:
            sub.last_id = last_event_id
            missed = [event for event in reversed(self._recent) if event.id > last_event_id]
            for event in reversed(missed):
                if not sub.keys.isdisjoint(event.keys):
                    sub.offer(event)
            sub.last_id = position
        else:
            sub.last_id = last_event_id
            sub.hold()
        return sub

    async def replay(self, sub: Subscriber) -> None:
        """Replay from the table what memory no longer has (or resync when that is gone too)."""
        after = sub.last_id
        async with self._engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            bounds = await event_log.bounds(raw)
            rows = [] if after > bounds.issued else await event_log.read_since(raw, after, REPLAY_LIMIT + 1)
        if after > bounds.issued:
            sub.resync(self.last_id or 0, ResyncReason.UNKNOWN_ID)
        elif (
            (bounds.oldest is not None and after < bounds.oldest - 1)
            or len(rows) > REPLAY_LIMIT
            or (bounds.oldest is None and after < bounds.issued)
        ):
            sub.resync(max(self.last_id or 0, rows[-1].id if rows else 0), ResyncReason.GAP_TOO_OLD)
        else:
            events = [e for logged in rows if (e := outgoing(logged)) is not None]
            sub.release([e for e in events if not sub.keys.isdisjoint(e.keys)], rows[-1].id if rows else after)

    def unsubscribe(self, sub: Subscriber) -> None:
        for key in sub.keys:
            subs = self._index.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._index[key]
        for bucket in self._buckets:
            bucket.discard(sub)

    def _cut_off(self, sub: Subscriber) -> None:
        """Fell behind: out of the hub at once, a resync hint, and the stream ends. A stream
        stuck in a write (the client stopped reading) is cancelled, which closes its socket."""
        self.unsubscribe(sub)
        sub.close(final=resync_frame(sub.last_id, ResyncReason.TOO_SLOW))
        log.info("realtime: a subscriber fell %d frames behind and was cut off", self._queue_limit)
        if sub.sending and sub.task is not None:
            sub.task.cancel()

    async def _heartbeats(self) -> None:
        """One bucket per second, so 10,000 streams do not all write in the same tick."""
        tick = 0
        step = self._heartbeat_seconds / len(self._buckets)
        while True:
            await asyncio.sleep(step)
            for sub in tuple(self._buckets[tick % len(self._buckets)]):
                sub.push(HEARTBEAT)
            tick += 1
