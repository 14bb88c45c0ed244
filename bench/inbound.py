"""Inbound benchmark: N Telegram webhook updates through the real HTTP path, offered at a fixed
rate (open loop, at most C in flight) or as fast as C connections allow (--rate 0).

    .venv/bin/python -m bench.inbound                       # 6000 events at 300/s, 5% new conversations
    .venv/bin/python -m bench.inbound --contacts 600        # the 10% stress mix

Latencies are measured from each event's scheduled time, so a stall is not hidden by the load
generator slowing down (coordinated omission); the generator's own lateness is printed too. The
generator is aiohttp, lighter than httpx, because it shares the machine's two cores with
everything it measures. A few seconds of the same traffic run first, unmeasured, as on a server
that has been taking it.

Prints events/s, p50/p99 from request to committed-and-announced (the NOTIFY an operator's
cabinet would receive), the outbox lag into Temporal (conversation committed -> its workflow
started), and, measured in the same run on the same machine, the raw limits: plain single-row
INSERTs and plain signal-with-starts. Target on our 2-core machines: 300 events/s with
p99 <= 150 ms to the operator-visible moment.

The default mix, one new conversation per 20 customer messages, is what a support inbox sees;
each new conversation costs a workflow start and its routing on the same two cores, so the 10%
mix is the stress case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from datetime import timedelta

import aiohttp
import asyncpg
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter

from bench.stack import BenchStack, bounded, open_loop, percentile
from domain.enums import ChannelKind, OperatorRole, OperatorStatus
from infra.db import asyncpg_dsn, make_sessionmaker
from infra.event_log import CHANNEL as REALTIME_CHANNEL, parse_notification
from infra.models import Branch, Conversation, Inbox, Operator, OutboxEvent
from infra.security import CredentialBox, hash_password

SECRET = "bench-webhook-secret"


def telegram_update(update_id: int, user: int) -> dict:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user, "type": "private", "first_name": f"User{user}"},
            "from": {"id": user, "is_bot": False, "first_name": f"User{user}"},
            "text": f"message {update_id}",
        },
    }


def contact_sequence(events: int, contacts: int) -> list[int]:
    """Who writes each event: new contacts spread evenly over the run (as in real traffic, not
    all at the start); every other event comes from a random contact who already wrote."""
    rng = random.Random(7)
    every = max(1, events // contacts)
    sequence: list[int] = []
    for i in range(events):
        known = len(set(sequence))
        if (i % every == 0 and known < contacts) or known == 0:
            sequence.append(10_000 + known)
        else:
            sequence.append(10_000 + rng.randrange(known))
    return sequence


async def seed(stack: BenchStack) -> int:
    engine = create_async_engine(stack.env["DATABASE_URL"])
    factory = make_sessionmaker(engine)
    box = CredentialBox(stack.env["CREDENTIALS_KEY"])
    async with factory() as db, db.begin():
        branch = Branch(name="Bench", is_default=True)
        db.add(branch)
        await db.flush()
        for i in range(5):
            db.add(
                Operator(
                    email=f"op{i}@bench",
                    display_name=f"Op {i}",
                    password_hash=hash_password("x"),
                    role=OperatorRole.OPERATOR,
                    branch_id=branch.id,
                    status=OperatorStatus.ONLINE,
                )
            )
        inbox = Inbox(
            name="Bench bot",
            channel=ChannelKind.TELEGRAM,
            credentials_encrypted=box.seal({"token": "1:bench", "webhook_secret": SECRET}),
        )
        db.add(inbox)
        await db.flush()
        inbox_id = inbox.id
    await engine.dispose()
    return inbox_id


async def settle(stack: BenchStack) -> int:
    """Wait until the outbox is empty and every conversation has been routed; their count."""
    engine = create_async_engine(stack.env["DATABASE_URL"])
    factory = make_sessionmaker(engine)
    try:
        while True:
            async with factory() as db:
                pending = await db.scalar(select(func.count()).select_from(OutboxEvent))
                unrouted = await db.scalar(
                    select(func.count()).select_from(Conversation).where(Conversation.branch_id.is_(None))
                )
                total = await db.scalar(select(func.count()).select_from(Conversation))
            if pending == 0 and unrouted == 0:
                return total
            await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


# What one announced message costs the database, closed loop at the bench's concurrency: a
# plain row; a row and a NOTIFY (how messages were announced before the event log); a row and
# a realtime event row, whose commit trigger takes the ordering lock, numbers it and NOTIFYs.
RAW_WRITES = {
    "plain INSERT": "INSERT INTO bench_raw (body) VALUES ($1)",
    "INSERT + NOTIFY": "WITH r AS (INSERT INTO bench_raw (body) VALUES ($1) RETURNING id) "
    "SELECT pg_notify('bench_raw', id::text) FROM r",
    "INSERT + event row": "WITH r AS (INSERT INTO bench_raw (body) VALUES ($1) RETURNING id) "
    "INSERT INTO realtime_events (type, payload) SELECT 'bench.raw', jsonb_build_object('id', id) FROM r",
}


async def raw_write_rates(dsn: dict, n: int, concurrency: int) -> dict[str, tuple[float, float]]:
    """rows/s and p99 ms of each RAW_WRITES statement, one after the other in this run."""
    pool = await asyncpg.create_pool(**dsn, min_size=20, max_size=20)
    await pool.execute("CREATE TABLE IF NOT EXISTS bench_raw (id bigserial primary key, body text)")
    rates = {}
    for name, statement in RAW_WRITES.items():
        latencies: list[float] = []

        async def one(i: int, statement: str = statement, latencies: list[float] = latencies) -> None:
            began = time.perf_counter()
            await pool.execute(statement, f"row {i}")
            latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await bounded(concurrency, [one(i) for i in range(n)])
        rates[name] = (n / (time.perf_counter() - began), percentile(latencies, 99) * 1000)
    await pool.execute("DROP TABLE bench_raw")
    await pool.execute("DELETE FROM realtime_events WHERE type = 'bench.raw'")
    await pool.close()
    return rates


async def raw_signal_with_start_rate(client: Client, n: int, concurrency: int) -> float:
    # no worker polls this queue: this measures what the server accepts, as the relay sees it
    queue = f"bench-raw-{uuid.uuid4()}"

    async def one(i: int) -> None:
        await client.start_workflow(
            "BenchNoop",
            id=f"bench-raw-{queue}-{i}",
            task_queue=queue,
            start_signal="notify",
            start_signal_args=[{"n": i}],
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            execution_timeout=timedelta(minutes=5),
        )

    began = time.perf_counter()
    await bounded(concurrency, [one(i) for i in range(n)])
    return n / (time.perf_counter() - began)


async def run(args: argparse.Namespace) -> None:
    stack = BenchStack(api_workers=args.api_workers)
    stack.start()
    try:
        inbox_id = await seed(stack)
        dsn = asyncpg_dsn(stack.env["DATABASE_URL"])
        raw_writes = await raw_write_rates(dsn, args.events, args.concurrency)
        client = await Client.connect(stack.temporal.address, data_converter=pydantic_data_converter)
        sws_rate = await raw_signal_with_start_rate(client, min(args.events, 1000), args.concurrency)

        receiver = None
        if args.webhook_endpoints:
            from bench.webhooks import Receiver, add_endpoint

            receiver = Receiver()
            url = await receiver.start()
            for _ in range(args.webhook_endpoints):
                await add_endpoint(stack, url)
        stack.start_app()
        announced: dict[int, float] = {}  # message_id -> time the NOTIFY arrived

        def heard(_conn: object, _pid: int, _channel: str, text: str) -> None:
            event = parse_notification(text)
            if event.name == "message.created":
                payload = json.loads(event.payload)
                if payload["direction"] == "in":
                    announced[payload["message_id"]] = time.perf_counter()

        listener = await asyncpg.connect(**dsn)
        await listener.add_listener(REALTIME_CHANNEL, heard)
        sent_at: dict[int, float] = {}
        request_ms: list[float] = []
        client_lag: dict[int, float] = {}
        url = f"{stack.api_url}/webhooks/telegram/{inbox_id}"
        users = contact_sequence(args.events, args.contacts)

        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
            transport_retries = 0

            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

            # Warm-up, not measured: the same traffic for a few seconds (new contacts included),
            # then until the outbox has drained, as on a server that has been taking it: pools
            # grown, statements prepared, workflow code loaded.
            warm_events = int(args.rate * args.warmup) if args.rate else 600
            warm_users = contact_sequence(warm_events, max(20, warm_events * args.contacts // args.events))

            async def warm(i: int, _scheduled: float | None = None) -> None:
                async with http.post(
                    url, json=telegram_update(10_000_000 + i, 900_000 + warm_users[i]), headers=headers
                ) as resp:
                    assert resp.status == 200, resp.status

            if args.rate:
                await open_loop(args.rate, warm_events, warm, time.perf_counter())
            else:
                await bounded(args.concurrency, [warm(i) for i in range(warm_events)])
            warm_conversations = await settle(stack)
            await asyncio.sleep(1)
            began = time.perf_counter()

            async def send(i: int, scheduled: float | None = None) -> None:
                nonlocal transport_retries
                update_id = i + 1
                scheduled = scheduled or time.perf_counter()
                sent_at[update_id] = scheduled
                client_lag[update_id] = (time.perf_counter() - scheduled) * 1000  # the generator's own delay
                for attempt in range(3):
                    try:
                        async with http.post(url, json=telegram_update(update_id, users[i]), headers=headers) as resp:
                            assert resp.status == 200, resp.status
                            break
                    except aiohttp.ClientConnectionError:
                        # a keep-alive connection closed under us; providers retry too, and
                        # the webhook is idempotent on update ids
                        transport_retries += 1
                        if attempt == 2:
                            raise
                request_ms.append((time.perf_counter() - scheduled) * 1000)

            if args.rate:
                await open_loop(args.rate, args.events, send, began)  # the connector caps in-flight
            else:
                await bounded(args.concurrency, [send(i) for i in range(args.events)])
            elapsed = time.perf_counter() - began
            await asyncio.sleep(0.5)
        await listener.close()

        # message ids map to update ids through provider_message_id ("chat:message")
        engine = create_async_engine(stack.env["DATABASE_URL"])
        async with engine.connect() as conn:
            rows = (
                await conn.exec_driver_sql(
                    "SELECT id, provider_message_id FROM messages WHERE split_part(provider_message_id, ':', 2)::bigint"
                    " < 10000000"
                )
            ).all()
        visible_ms = [
            (announced[mid] - sent_at[int(pmid.split(":")[1])]) * 1000 for mid, pmid in rows if mid in announced
        ]

        # outbox lag: time until everything the workflows must hear has reached Temporal
        lag_began = time.perf_counter()
        factory = make_sessionmaker(engine)
        while True:
            async with factory() as db:
                pending = await db.scalar(select(func.count()).select_from(OutboxEvent))
                conversations = await db.scalar(select(func.count()).select_from(Conversation)) - warm_conversations
            if pending == 0:
                break
            await asyncio.sleep(0.1)
        drain_s = time.perf_counter() - lag_began
        deadline = time.monotonic() + 15  # visibility is eventually consistent
        while True:
            started: dict[int, object] = {}  # conversation id -> workflow start time
            async for wf in client.list_workflows("WorkflowType = 'ConversationWorkflow'"):
                started[int(wf.id.rsplit("-", 1)[1])] = wf.start_time
            workflows = len(started) - warm_conversations
            if workflows >= conversations or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        # outbox lag: the conversation's commit in PostgreSQL -> its workflow started in Temporal
        async with engine.connect() as conn:
            created = (
                await conn.exec_driver_sql(
                    f"SELECT id, created_at FROM conversations ORDER BY id OFFSET {int(warm_conversations)}"
                )
            ).all()
        outbox_lag_ms = [(started[cid] - at).total_seconds() * 1000 for cid, at in created if cid in started]
        await engine.dispose()

        offered = f"offered at {args.rate}/s" if args.rate else "closed loop"
        print(
            f"\ninbound benchmark: {args.events} webhook updates {offered}, at most {args.concurrency} in flight, "
            f"{args.contacts} contacts ({args.contacts / args.events:.0%} new conversations), "
            f"api workers {args.api_workers}, cores {os.cpu_count()}, "
            f"outgoing-webhook endpoints {args.webhook_endpoints}; "
            f"after {args.warmup:g} s of unmeasured warm-up traffic"
        )
        print(f"  throughput               {args.events / elapsed:8.0f} events/s   (target 300)")
        print(
            f"  request latency          p50 {percentile(request_ms, 50):6.1f} ms  "
            f"p99 {percentile(request_ms, 99):6.1f} ms"
        )
        print(
            f"  request -> announced     p50 {percentile(visible_ms, 50):6.1f} ms  "
            f"p99 {percentile(visible_ms, 99):6.1f} ms"
            f"   (target p99 <= 150 ms; {len(visible_ms)}/{len(rows)} seen)"
        )
        firsts, seen_users = set(), set()
        for i, u in enumerate(users):
            if u not in seen_users:
                firsts.add(i + 1)
                seen_users.add(u)
        by_kind = {True: [], False: []}
        for mid, pmid in rows:
            if mid in announced:
                update_id = int(pmid.split(":")[1])
                by_kind[update_id in firsts].append((announced[mid] - sent_at[update_id]) * 1000)
        print(
            f"    first message of a contact  p50 {percentile(by_kind[True], 50):6.1f} ms  "
            f"p99 {percentile(by_kind[True], 99):6.1f} ms"
        )
        print(
            f"    into an open conversation   p50 {percentile(by_kind[False], 50):6.1f} ms  "
            f"p99 {percentile(by_kind[False], 99):6.1f} ms"
        )
        timeline = sorted(
            (sent_at[int(p.split(":")[1])], (announced[m] - sent_at[int(p.split(":")[1])]) * 1000)
            for m, p in rows
            if m in announced
        )
        per_second: dict[int, list[float]] = {}
        for at, ms in timeline:
            per_second.setdefault(int(at - began), []).append(ms)
        print(
            "    p99 per second of the run: "
            + " ".join(f"{percentile(v, 99):.0f}" for _, v in sorted(per_second.items()))
        )
        lag_per_second: dict[int, list[float]] = {}
        for update_id, ms in client_lag.items():
            lag_per_second.setdefault(int(sent_at[update_id] - began), []).append(ms)
        print(
            "    load generator's own lag, p99 per second (sending late is counted as latency above): "
            + " ".join(f"{percentile(v, 99):.0f}" for _, v in sorted(lag_per_second.items()))
        )
        print(
            f"  messages stored          {len(rows)} (expected {args.events}); conversations {conversations}; "
            f"client-side transport retries {transport_retries}"
        )
        print(
            f"  outbox lag to Temporal   p50 {percentile(outbox_lag_ms, 50):6.1f} ms  p99 "
            f"{percentile(outbox_lag_ms, 99):6.1f} ms   (conversation committed -> its workflow started)"
        )
        print(
            f"  outbox drained           {drain_s:6.1f} s after the last request; "
            f"{workflows} conversation workflows started (expected {conversations})"
        )
        print("  raw limits, same run:")
        for name, (rate, p99) in raw_writes.items():
            print(f"    {name + ' (asyncpg pool 20)':34} {rate:8.0f} rows/s, p99 {p99:.1f} ms")
        print(f"    plain signal-with-start         {sws_rate:8.0f} /s")
        if receiver is not None:
            print(f"  webhook events received  {len(receiver.arrivals)} by the end of the run")
            await receiver.stop()
    except BaseException:
        stack.stop(show_log=True)
        raise
    else:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=300, help="events/s offered; 0 = as fast as possible")
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--contacts", type=int, default=300)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured traffic first")
    parser.add_argument(
        "--webhook-endpoints",
        type=int,
        default=0,
        help="outgoing-webhook endpoints subscribed to every event (each event is queued for each, and "
        "delivered to a receiver in this process while the run goes on)",
    )
    asyncio.run(run(parser.parse_args()))
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)


if __name__ == "__main__":
    main()
