"""Delivery benchmark: operator replies through the real path to a fake Telegram, once without
faults and once with a share of retryable provider faults.

    .venv/bin/python -m bench.delivery --quick          # 1,000 replies over 100 chats: ~2.5 min
    .venv/bin/python -m bench.delivery                  # 10,000 over 1,000 chats: ~27 min
    .venv/bin/python -m bench.delivery --bot-rate 200   # what the pipeline does past Telegram's limit

The path: a customer writes in (services.ingest, which opens the conversation), a supervisor
takes it over (services.conversations.take) and answers (services.conversations.send_reply, one
Idempotency-Key per reply, one transaction each), the
outbox relay in `worker.py` starts delivery-{message_id}, DeliveryWorkflow waits for the chat's
previous reply, takes a rate slot (per bot and per chat, in PostgreSQL) and sends through the
Telegram adapter to the fake (tests/fakes/telegram.py, served in this process on loopback).
The stack is bench/stack.py's: embedded PostgreSQL, the tuned Temporal dev server, and
`worker.py` as a process.

Real Telegram allows ~30 msg/s per bot and 1 msg/s per chat (the Telegram adapter's defaults,
which --bot-rate and --chat-rate override for the worker through RATE_OVERRIDES): 10,000 replies
need at least 333 s per run however fast the rest is. Measured on our 2-core machines the
pipeline does not reach that limit (~20 msgs/s clean, ~12 with 20 % faults, Temporal bound),
so the default run (two runs plus setup) took 26.5 minutes; --quick (1,000 over 100 chats,
>= 33 s per run by the limit) about 2.5. Replies are queued as fast as send_reply allows (or at
--rate per second), so queued->sent mostly measures the wait for a turn: compare it with the
printed lower bound (the last reply's wait under a perfect bot/chat limiter).

Known trap: when more chats wait for one bot than MAX_SLOT_WAIT (20 s) x bot rate, delivery
livelocks (a reservation beyond 20 s is returned unused and never released, so the bot's clock
runs ahead as fast as time passes). `--conversations 200 --bot-rate 5` shows it: ~120 replies
go out, then none, and the run aborts at its timeout. At 30/s it takes > 600 waiting chats and a
pipeline faster than this machine's.

Printed per run: msgs/s (replies / (last sent_at - first created_at)), p50/p99 queued->sent
(messages.created_at -> sent_at), duplicates and lost replies at the fake (counted by text),
per-chat order violations (a reply that arrived after a later one of its chat), the 429s the
real Telegram would have answered (fake.rate_violations(): per chat 1/s, per bot 30/s, a strict
sliding window), and the faults injected. Faults are the retryable ones the provider does not
carry out (429, 500, 502, 503, dropped connection); SLOW is left out because an answer slower
than the client timeout legitimately duplicates (the provider did the work, we never heard).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.raw_temporal import signal_to_activity_rate
from bench.stack import BenchStack, bounded, percentile
from domain.contracts import ContactProfile, InboundEvent, InboundKind
from domain.enums import ChannelKind, DeliveryStatus, MessageDirection, OperatorRole, OperatorStatus
from infra.db import make_sessionmaker
from infra.models import Branch, DeliveryAttempt, Inbox, Message, Operator, OutboxEvent
from infra.security import CredentialBox, hash_password
from infra.settings import ROOT
from services.conversations import send_reply, take
from services.ingest import ingest
from tests.fakes.faults import Fault
from tests.fakes.telegram import TOKEN, FakeTelegram

FAULTS = (Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.BAD_GATEWAY, Fault.UNAVAILABLE, Fault.DROP)
CONCURRENCY = 16  # ingest / send_reply calls in flight, like a busy cabinet


async def seed(factory: async_sessionmaker[AsyncSession]) -> tuple[int, int]:
    """A branch and an offline supervisor (takes every conversation; the workflow never assigns one)."""
    async with factory() as db, db.begin():
        branch = Branch(name="Bench", is_default=True)
        db.add(branch)
        await db.flush()
        supervisor = Operator(
            email="sup@bench",
            display_name="Supervisor",
            password_hash=hash_password("x"),
            role=OperatorRole.SUPERVISOR,
            branch_id=branch.id,
            status=OperatorStatus.OFFLINE,
        )
        db.add(supervisor)
        await db.flush()
        return branch.id, supervisor.id


async def new_inbox(factory: async_sessionmaker[AsyncSession], key: str, name: str) -> int:
    async with factory() as db, db.begin():
        inbox = Inbox(
            name=name,
            channel=ChannelKind.TELEGRAM,
            credentials_encrypted=CredentialBox(key).seal({"token": TOKEN, "webhook_secret": "bench-secret"}),
        )
        db.add(inbox)
        await db.flush()
        return inbox.id


async def wait_outbox_empty(factory, timeout: float, worker) -> float:
    began = time.monotonic()
    while True:
        async with factory() as db:
            pending = await db.scalar(select(func.count()).select_from(OutboxEvent))
        if pending == 0:
            return time.monotonic() - began
        if worker.poll() is not None:
            raise RuntimeError("worker.py exited")
        if time.monotonic() - began > timeout:
            raise RuntimeError(f"outbox still holds {pending} rows after {timeout:.0f} s")
        await asyncio.sleep(0.2)


async def open_conversations(factory, inbox_id: int, chat_ids: list[str]) -> dict[str, int]:
    async def one(chat_id: str) -> tuple[str, int]:
        event = InboundEvent(
            inbox_id=inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=InboundKind.MESSAGE,
            provider_user_id=chat_id,
            provider_chat_id=chat_id,
            provider_message_id=f"{chat_id}:1",
            provider_time=datetime.now(UTC),
            text="hello",
            profile=ContactProfile(display_name=f"Customer {chat_id}"),
        )
        result = await ingest(factory, event)
        return chat_id, result.conversation_id

    return dict(await bounded(CONCURRENCY, [one(c) for c in chat_ids]))


async def queue_replies(
    factory, operator_id: int, conversations: dict[str, int], messages: int, tag: str, rate: float
) -> dict[str, list[str]]:
    """Round robin over the chats; a chat's k-th reply only after its (k-1)-th is committed."""
    chats = list(conversations)
    written: dict[str, list[str]] = {c: [] for c in chats}
    began = time.perf_counter()

    async def one(index: int, k: int, chat_id: str) -> None:
        if rate:
            await asyncio.sleep(max(0.0, began + index / rate - time.perf_counter()))
        body = f"{tag} chat {chat_id} reply {k}"
        async with factory() as db, db.begin():
            operator = await db.get(Operator, operator_id)
            await send_reply(db, operator, conversations[chat_id], body, idempotency_key=f"{tag}-{chat_id}-{k}")
        written[chat_id].append(body)

    async def take_over(chat_id: str) -> None:  # a supervisor only watches until they take it
        async with factory() as db, db.begin():
            await take(db, await db.get(Operator, operator_id), conversations[chat_id])

    await bounded(CONCURRENCY, [take_over(c) for c in chats])
    rounds: dict[int, list[tuple[int, str]]] = {}
    for index in range(messages):
        rounds.setdefault(index // len(chats), []).append((index, chats[index % len(chats)]))
    for k in sorted(rounds):
        await bounded(CONCURRENCY, [one(index, k, chat_id) for index, chat_id in rounds[k]])
    return written


async def progress(factory, inbox_id: int, total: int, timeout: float, worker) -> None:
    began = last_print = time.monotonic()
    while True:
        async with factory() as db:
            rows = dict(
                (
                    await db.execute(
                        select(Message.delivery_status, func.count())
                        .where(Message.inbox_id == inbox_id, Message.direction == MessageDirection.OUT)
                        .group_by(Message.delivery_status)
                    )
                ).all()
            )
        done = rows.get(DeliveryStatus.SENT, 0) + rows.get(DeliveryStatus.FAILED, 0)
        if done >= total:
            return
        if worker.poll() is not None:
            raise RuntimeError("worker.py exited")
        now = time.monotonic()
        if now - last_print >= 10:
            last_print = now
            print(
                f"    {now - began:5.0f} s: " + ", ".join(f"{s.value} {n}" for s, n in sorted(rows.items())), flush=True
            )
        if now - began > timeout:
            raise RuntimeError(f"not delivered after {timeout:.0f} s: {rows}")
        await asyncio.sleep(1)


def order_violations(fake: FakeTelegram, written: dict[str, list[str]]) -> tuple[int, int]:
    """(replies that arrived after a later reply of their chat, chats affected)."""
    late = chats = 0
    for chat_id, texts in written.items():
        rank = {t: i for i, t in enumerate(texts)}
        highest, broken = -1, 0
        for m in fake.sent_messages(chat_id):
            r = rank.get(m.text or "", -1)
            if r < highest:
                broken += 1
            highest = max(highest, r)
        late += broken
        chats += broken > 0
    return late, chats


async def run_once(
    stack: BenchStack, factory, worker, fake: FakeTelegram, operator_id: int, args, run: int, fault_ratio: float
) -> None:
    fake.reset()
    inbox_id = await new_inbox(factory, stack.env["CREDENTIALS_KEY"], f"Bench bot {run}")
    chat_ids = [str(1_000_000 * (run + 1) + i) for i in range(args.conversations)]
    began = time.perf_counter()
    conversations = await open_conversations(factory, inbox_id, chat_ids)
    opened_s = time.perf_counter() - began
    await wait_outbox_empty(factory, 300, worker)  # the conversation workflows are started
    conv_s = time.perf_counter() - began
    fake.reset()
    if fault_ratio:
        fake.fail_randomly(fault_ratio, seed=run, faults=FAULTS, method="sendMessage")

    print(
        f"\n  run {run}: {args.messages} replies over {args.conversations} chats, faults {fault_ratio:.0%} "
        f"(conversations opened in {opened_s:.1f} s, their workflows started after {conv_s:.1f} s)",
        flush=True,
    )
    began = time.perf_counter()
    written = await queue_replies(factory, operator_id, conversations, args.messages, f"b{run}", args.rate)
    queued_s = time.perf_counter() - began
    print(f"    queued {args.messages} replies in {queued_s:.1f} s ({args.messages / queued_s:.0f}/s)", flush=True)
    per_chat = -(-args.messages // args.conversations)
    bound = max(args.messages / args.bot_rate, (per_chat - 1) / args.chat_rate)
    await progress(factory, inbox_id, args.messages, timeout=max(300.0, 5 * bound + 120), worker=worker)
    await asyncio.sleep(1.0)  # a late duplicate would arrive now

    async with factory() as db:
        rows = (
            await db.execute(
                select(Message.id, Message.delivery_status, Message.created_at, Message.sent_at).where(
                    Message.inbox_id == inbox_id, Message.direction == MessageDirection.OUT
                )
            )
        ).all()
    sent = [r for r in rows if r.delivery_status == DeliveryStatus.SENT]
    failed = len(rows) - len(sent)
    latencies = [(r.sent_at - r.created_at).total_seconds() for r in sent]
    span = (max(r.sent_at for r in sent) - min(r.created_at for r in rows)).total_seconds() if sent else float("nan")
    times = sorted(r.sent_at for r in sent)
    middle = (times[len(times) * 9 // 10 - 1] - times[len(times) // 10]).total_seconds() if len(times) >= 10 else 0
    slowest = max(sent, key=lambda r: r.sent_at - r.created_at, default=None)
    history = ""
    if slowest is not None:
        async with factory() as db:
            attempts = (
                await db.execute(
                    select(
                        DeliveryAttempt.attempt,
                        DeliveryAttempt.outcome,
                        DeliveryAttempt.provider_code,
                        DeliveryAttempt.created_at,
                    )
                    .where(DeliveryAttempt.message_id == slowest.id)
                    .order_by(DeliveryAttempt.id)
                )
            ).all()
        history = ", ".join(
            f"+{(a.created_at - slowest.created_at).total_seconds():.1f} s {a.outcome}"
            f"{'/' + a.provider_code if a.provider_code else ''}"
            for a in attempts
        )

    expected = {t for texts in written.values() for t in texts}
    counts = Counter(m.text for m in fake.sent_messages())
    duplicates = sum(n - 1 for t, n in counts.items() if n > 1)
    lost = len(expected - set(counts))
    late, late_chats = order_violations(fake, written)
    requests = fake.requests("sendMessage")
    outcomes = Counter(r.fault.value if r.fault else str(r.status) for r in requests)
    violations = fake.rate_violations()

    arrivals = sorted(r.at for r in requests if r.status == 200)
    at_provider = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0]) if len(arrivals) > 1 else float("nan")
    print(
        f"    throughput            {args.messages / span:8.1f} msgs/s = {args.messages / span / args.bot_rate:6.1%}"
        f" of the bot rate {args.bot_rate:g}/s   ({span:.1f} s from the first queued to the last sent)"
    )
    print(
        f"      at the provider     {at_provider:8.1f} msgs/s = {at_provider / args.bot_rate:6.1%}"
        f"   (first to last accepted request, as the provider saw them)"
    )
    if middle:
        print(f"      middle 80 % of sends {0.8 * len(times) / middle:8.1f} msgs/s")
    print(
        f"    queued -> sent        p50 {percentile(latencies, 50):7.2f} s   p99 {percentile(latencies, 99):7.2f} s"
        f"   max {max(latencies, default=float('nan')):7.2f} s   (lower bound for the last: {bound:.1f} s)"
    )
    print(f"    sent / failed         {len(sent)} / {failed}   lost at the fake {lost}")
    print(f"    duplicates            {duplicates}")
    print(f"    order violations      {late} replies in {late_chats} chats")
    print(
        f"    rate windows broken   per bot {violations.get('per_bot', 0)}, per chat {violations.get('per_chat', 0)}"
        f"   (429s the real Telegram could answer: the fake's strict 30 and 1 per second windows, not enforced)"
    )
    print(
        f"    provider requests     {len(requests)} for {args.messages} replies: "
        + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
    )
    if slowest is not None:
        print(
            f"    slowest reply         {(slowest.sent_at - slowest.created_at).total_seconds():.1f} s; "
            f"its attempts: {history}"
        )


async def run(args: argparse.Namespace) -> None:
    stack = BenchStack()
    fake = FakeTelegram()
    stack.start()
    try:
        fake.start()
        env = dict(
            stack.env,
            TELEGRAM_API_BASE=fake.base_url,
            RATE_OVERRIDES=f"telegram.per_bot={args.bot_rate},telegram.per_chat={args.chat_rate}",
        )
        engine = create_async_engine(stack.env["DATABASE_URL"], pool_size=CONCURRENCY + 4)
        factory = make_sessionmaker(engine)
        _, operator_id = await seed(factory)
        log = open(stack.tmp / "app.log", "w")
        worker = subprocess.Popen(
            [sys.executable, "worker.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        stack.procs.append(worker)
        async with engine.connect() as conn:
            pg = (await conn.execute(text("SHOW server_version"))).scalar()
        client = await Client.connect(stack.temporal.address, data_converter=pydantic_data_converter)
        raw = await signal_to_activity_rate(client)
        print(
            f"delivery benchmark: {args.messages} replies over {args.conversations} conversations per run, "
            f"bot rate {args.bot_rate:g}/s, chat rate {args.chat_rate:g}/s, "
            f"offered {'as fast as possible' if not args.rate else f'at {args.rate:g}/s'}; "
            f"cores {os.cpu_count()}, PostgreSQL {pg}, one worker.py",
            flush=True,
        )
        print(f"  raw limit, same run: signal -> one activity done, saturated   {raw:6.0f} workflows/s", flush=True)
        # The fake is a thread of this process: a full collection here would stamp the requests
        # that arrive meanwhile late, in a bunch, as if we had sent them so.
        gc.freeze()
        ratios = [0.0] + ([args.faults] if args.faults else [])
        for i, ratio in enumerate(ratios):
            await run_once(stack, factory, worker, fake, operator_id, args, i, ratio)
        await engine.dispose()
    except BaseException:
        fake.stop()
        stack.stop(show_log=True)
        raise
    else:
        fake.stop()
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=1_000)
    parser.add_argument("--bot-rate", type=float, default=30.0, help="Telegram messages/s per bot for the worker")
    parser.add_argument("--chat-rate", type=float, default=1.0, help="Telegram messages/s per chat for the worker")
    parser.add_argument(
        "--faults",
        type=float,
        default=0.2,
        help="share of sendMessage requests failing in the second run (0: one clean run only)",
    )
    parser.add_argument("--rate", type=float, default=0, help="replies queued per second; 0 = as fast as possible")
    parser.add_argument("--quick", action="store_true", help="1,000 replies over 100 conversations")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.conversations = 1_000, 100
    asyncio.run(run(args))
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)


if __name__ == "__main__":
    main()
