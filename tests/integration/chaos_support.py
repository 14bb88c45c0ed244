"""Helpers for the delivery chaos tests (test_delivery_chaos.py): open conversations, queue
operator replies through the real path, run `worker.py` as a process that can be killed, and
judge the outcome at the fake provider: every message exactly once, in order per chat, every
row `sent`, the per-chat limit held.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.enums import DeliveryStatus, OperatorRole, OperatorStatus
from domain.ids import delivery_workflow_id
from infra.models import Message, Operator, OutboxEvent
from infra.settings import ROOT, Settings
from services import conversations
from services.ingest import ingest
from tests.conftest import TEST_CREDENTIALS_KEY
from tests.fakes.telegram import FakeTelegram

Factory = async_sessionmaker[AsyncSession]


@dataclass(frozen=True)
class Chat:
    conversation_id: int
    chat_id: str


@dataclass
class Queued:
    """The replies a test queued, per chat in the order they were written."""

    by_chat: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # chat -> [(message id, text)]

    def add(self, chat_id: str, message_id: int, text: str) -> None:
        self.by_chat.setdefault(chat_id, []).append((message_id, text))

    @property
    def ids(self) -> list[int]:
        return [mid for items in self.by_chat.values() for mid, _ in items]

    @property
    def texts(self) -> set[str]:
        return {t for items in self.by_chat.values() for _, t in items}


async def open_chats(world, count: int, first_chat_id: int) -> list[Chat]:
    """`count` customers write in: one conversation each (numeric Telegram chat ids)."""
    chats = []
    for i in range(count):
        chat_id = str(first_chat_id + i)
        result = await ingest(world.factory, world.event(chat_id, "hello"))
        assert result.conversation_id is not None
        chats.append(Chat(result.conversation_id, chat_id))
    return chats


async def replier(world) -> int:
    """A supervisor answers: takes each conversation over (at once, without waiting for the
    conversation workflow to route and assign it; offline, so the workflow assigns it nobody)."""
    return await world.operator(role=OperatorRole.SUPERVISOR, status=OperatorStatus.OFFLINE)


async def queue_replies(
    factory: Factory,
    operator_id: int,
    chats: list[Chat],
    per_chat: int,
    tag: str,
    queued: Queued,
    *,
    first: int = 0,
) -> list[float]:
    """Round robin over the chats, one transaction and Idempotency-Key per reply, as the
    cabinet does. Returns how long each send_reply took (it must never wait for Temporal)."""
    for chat in chats:  # a supervisor only watches a conversation until they take it
        async with factory() as db, db.begin():
            await conversations.take(db, await db.get(Operator, operator_id), chat.conversation_id)
    took = []
    for k in range(first, first + per_chat):
        for chat in chats:
            text = f"{tag} chat {chat.chat_id} reply {k}"
            began = time.monotonic()
            async with factory() as db, db.begin():
                operator = await db.get(Operator, operator_id)
                message_id, created = await conversations.send_reply(
                    db, operator, chat.conversation_id, text, idempotency_key=f"{tag}-{chat.chat_id}-{k}"
                )
            took.append(time.monotonic() - began)
            assert created
            queued.add(chat.chat_id, message_id, text)
    return took


async def statuses(factory: Factory, ids: Iterable[int]) -> dict[int, DeliveryStatus]:
    async with factory() as db:
        rows = (await db.execute(select(Message.id, Message.delivery_status).where(Message.id.in_(list(ids))))).all()
    return dict(rows)


async def outbox_pending(factory: Factory) -> int:
    async with factory() as db:
        return await db.scalar(select(func.count()).select_from(OutboxEvent))


async def wait_all_sent(factory: Factory, ids: list[int], timeout: float, *, what: str = "") -> float:
    """Until every row is `sent`; fails at once on a `failed` row (these faults are retryable).
    Returns the seconds it took."""
    began = time.monotonic()
    while True:
        current = await statuses(factory, ids)
        failed = {i: s for i, s in current.items() if s == DeliveryStatus.FAILED}
        if failed:
            async with factory() as db:
                errors = (await db.execute(select(Message.id, Message.error).where(Message.id.in_(failed)))).all()
            raise AssertionError(f"{what}: messages failed for good on retryable faults: {errors}")
        if all(s == DeliveryStatus.SENT for s in current.values()) and len(current) == len(ids):
            return time.monotonic() - began
        if time.monotonic() - began > timeout:
            pending = Counter(s.value for s in current.values() if s != DeliveryStatus.SENT)
            raise AssertionError(f"{what}: not all sent after {timeout:.0f} s: {dict(pending)} still pending")
        await asyncio.sleep(0.25)


async def wait_deliveries_ended(client: Client, fake: FakeTelegram, ids: list[int], timeout: float = 60) -> list[str]:
    """Until every delivery-{id} has ended and the fake answers no request: nothing can reach it
    for these replies any more (a late duplicate has arrived by then). Returns their results."""
    results = await asyncio.wait_for(
        asyncio.gather(*(client.get_workflow_handle(delivery_workflow_id(i)).result() for i in ids)), timeout
    )
    began = time.monotonic()
    while fake.in_flight("sendMessage"):
        if time.monotonic() - began > timeout:
            raise AssertionError(f"the fake still answers {fake.in_flight('sendMessage')} sends")
        await asyncio.sleep(0.05)
    return results


def accepted_texts(fake: FakeTelegram) -> list[str]:
    return [m.text or "" for m in fake.sent_messages()]


async def assert_delivered_exactly_once_in_order(
    factory: Factory, fake: FakeTelegram, queued: Queued, *, may_repeat: frozenset[str] = frozenset()
) -> None:
    """At the fake: each queued text accepted exactly once (`may_repeat`: at most twice, see
    the worker-kill test), nothing else accepted, and per chat in the order written. In the
    database: every row `sent` with exactly one provider id."""
    counts = Counter(accepted_texts(fake))
    missing = sorted(t for t in queued.texts if counts[t] == 0)
    unexpected = sorted(t for t in counts if t not in queued.texts)
    duplicated = {t: n for t, n in counts.items() if n > 1 and not (t in may_repeat and n == 2)}
    assert not missing, f"{len(missing)} messages never reached the provider: {missing[:10]}"
    assert not unexpected, f"the provider got messages nobody queued: {unexpected[:10]}"
    assert not duplicated, f"{len(duplicated)} messages reached the provider more than once: {duplicated}"

    for chat_id, items in queued.by_chat.items():
        seen: list[str] = []
        for m in fake.sent_messages(chat_id):
            if m.text not in seen:
                seen.append(m.text or "")
        written = [t for _, t in items]
        assert seen == written, f"chat {chat_id}: order broken\n written  {written}\n received {seen}"
        # a repeat (may_repeat) must come right after its original, never after a later message
        arrivals = [m.text for m in fake.sent_messages(chat_id)]
        positions = [written.index(t) for t in arrivals]
        assert positions == sorted(positions), f"chat {chat_id}: a repeat arrived after a later message: {arrivals}"

    async with factory() as db:
        rows = (
            await db.execute(
                select(Message.id, Message.delivery_status, Message.sent_provider_ids, Message.sent_at).where(
                    Message.id.in_(queued.ids)
                )
            )
        ).all()
    assert len(rows) == len(queued.ids)
    wrong = [
        (r.id, r.delivery_status.value, r.sent_provider_ids)
        for r in rows
        if r.delivery_status != DeliveryStatus.SENT or len(r.sent_provider_ids) != 1 or r.sent_at is None
    ]
    assert not wrong, f"rows not cleanly sent (id, status, provider ids): {wrong}"


def min_gap_per_chat(fake: FakeTelegram, chat_ids: Iterable[str]) -> tuple[float, str | None]:
    """The smallest time between two sendMessage requests (any outcome) to the same chat, as
    the fake received them: each attempt takes a per-chat slot, so it should be ~1 s."""
    smallest, where = float("inf"), None
    for chat_id in chat_ids:
        times = sorted(r.at for r in fake.requests("sendMessage", chat_id))
        for a, b in itertools.pairwise(times):
            if b - a < smallest:
                smallest, where = b - a, chat_id
    return smallest, where


def assert_per_chat_spacing(fake: FakeTelegram, chat_ids: Iterable[str], *, at_least: float) -> float:
    """Returns the smallest gap between two requests to one chat; fails below `at_least`."""
    gap, chat = min_gap_per_chat(fake, chat_ids)
    assert gap >= at_least, f"chat {chat}: two sends {gap:.3f} s apart (the per-chat limit is 1/s)\n" + chat_timeline(
        fake, chat or ""
    )
    return gap


def chat_timeline(fake: FakeTelegram, chat_id: str, since: float | None = None) -> str:
    """One chat's sendMessage requests as the fake saw them (seconds since `since`, a
    time.monotonic(), or since the first request), for failure messages."""
    rows = fake.requests("sendMessage", chat_id)
    t0 = since if since is not None else rows[0].at if rows else 0.0
    return "\n".join(f"  {r.at - t0:+8.3f} s  {r.status:3d} {r.fault or '':12s} {r.params.get('text')}" for r in rows)


def fault_breakdown(fake: FakeTelegram) -> Counter:
    return Counter((r.fault.value if r.fault else str(r.status)) for r in fake.requests("sendMessage"))


class WorkerProcess:
    """`python worker.py` (Temporal worker and outbox relay) as deployed, against the test's
    PostgreSQL, Temporal and fake providers."""

    def __init__(self, settings: Settings, log_file: Path, **extra_env: str) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEMPORAL_", "TELEGRAM_"))}
        self.env.update(
            DATABASE_URL=settings.database_url or "",
            TEMPORAL_ADDRESS=settings.temporal_address or "",
            TEMPORAL_TASK_QUEUE=settings.temporal_task_queue,
            CREDENTIALS_KEY=TEST_CREDENTIALS_KEY,
            TELEGRAM_API_BASE=settings.telegram_api_base,
            MAX_API_BASE=settings.max_api_base,
            DATA_DIR=str(settings.data_dir),
            LOG_LEVEL="INFO",
            PYTHONUNBUFFERED="1",
            **extra_env,
        )
        self.log_file = log_file
        self.proc: subprocess.Popen | None = None
        self._offset = 0

    def start(self, timeout: float = 30) -> None:
        self._offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "worker.py"],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + timeout
        while "worker running on task queue" not in self.output():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"worker.py did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def output(self) -> str:
        if not self.log_file.exists():
            return ""
        with open(self.log_file, "rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, in-flight activities and DB transactions cut off."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
