"""REST API benchmark: list-conversations and send-message through the real api and worker
processes, offered at a fixed rate (open loop), with p50/p95/p99 from each request's scheduled
time (a stall is not hidden by the generator slowing down).

    .venv/bin/python -m bench.api            # 100 req/s for 20 s each, then 50 req/s with bursts of 100
    .venv/bin/python -m bench.api --quick    # a short smoke run

Goal on our 2-core machines: p99 <= 100 ms at 100 req/s; the floor (seed 002) p95 <= 400 ms at
50 req/s with bursts of 100 req/s. Beside it, measured in the same run on the same machine: a bare
FastAPI app whose POST does one INSERT (uvicorn, one process, asyncpg pool), at the same rate.

The api runs with its real middleware, token check and request budget (raised so the offered
load is not refused); the worker relays each reply to a delivery workflow and the fake Telegram
(tests/fakes) on loopback, so the machine carries what a reply costs. Every reply must exist
once: the run counts the messages per Idempotency-Key.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.stack import BenchStack, percentile
from domain.enums import ChannelKind, DeliveryStatus, MessageDirection, OperatorRole, OperatorStatus, SenderKind
from infra.db import asyncpg_dsn, asyncpg_url, make_sessionmaker
from infra.models import Branch, Contact, ContactChat, ContactIdentity, Conversation, Inbox, Message, Operator
from infra.security import CredentialBox
from infra.settings import ROOT
from services.api_tokens import create_token
from setup.devstack import free_port
from tests.fakes.telegram import TOKEN, FakeTelegram


async def seed(database_url: str, credentials_key: str, conversations: int) -> tuple[str, list[int]]:
    """A branch, five operators, a Telegram inbox (the fake's token), `conversations` open
    conversations with a customer message each, and a read-write token of every branch."""
    engine = create_async_engine(database_url)
    factory = make_sessionmaker(engine)
    async with factory() as db, db.begin():
        branch = Branch(name="Bench", is_default=True)
        inbox = Inbox(
            name="Bench bot",
            channel=ChannelKind.TELEGRAM,
            credentials_encrypted=CredentialBox(credentials_key).seal({"token": TOKEN, "webhook_secret": "bench"}),
        )
        db.add_all([branch, inbox])
        await db.flush()
        operators = [
            Operator(
                email=f"op{i}@bench",
                display_name=f"Op {i}",
                password_hash="x",
                role=OperatorRole.OPERATOR,
                branch_id=branch.id,
                status=OperatorStatus.ONLINE,
            )
            for i in range(5)
        ]
        db.add_all(operators)
        await db.flush()
        contacts = [Contact(display_name=f"Customer {i}", phone=f"+7900{i:07d}") for i in range(conversations)]
        db.add_all(contacts)
        await db.flush()
        identities = [
            ContactIdentity(
                contact_id=c.id,
                channel=ChannelKind.TELEGRAM,
                provider_user_id=str(500_000 + i),
            )
            for i, c in enumerate(contacts)
        ]
        db.add_all(identities)
        await db.flush()
        db.add_all(
            ContactChat(identity_id=identity.id, inbox_id=inbox.id, provider_chat_id=str(600_000 + i))
            for i, identity in enumerate(identities)
        )
        await db.flush()
        now = datetime.now(UTC)
        rows = [
            Conversation(
                inbox_id=inbox.id,
                contact_id=c.id,
                identity_id=identity.id,
                branch_id=branch.id,
                assignee_id=operators[i % 5].id if i % 3 else None,
                last_in_at=now - timedelta(seconds=i),
                last_activity_at=now - timedelta(seconds=i),
            )
            for i, (c, identity) in enumerate(zip(contacts, identities, strict=True))
        ]
        db.add_all(rows)
        await db.flush()
        db.add_all(
            Message(
                conversation_id=row.id,
                inbox_id=inbox.id,
                direction=MessageDirection.IN,
                sender_kind=SenderKind.CONTACT,
                text="where is my order?",
                provider_message_id=f"seed-{row.id}",
                delivery_status=DeliveryStatus.RECEIVED,
            )
            for row in rows
        )
        secret = (await create_token(db, None, name="bench", branch_ids=None, can_write=True)).secret
        ids = [row.id for row in rows]
    await engine.dispose()
    return secret, ids


@dataclass
class Phase:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    lateness_ms: list[float] = field(default_factory=list)  # the generator's own delay

    def line(self, goal: str) -> str:
        failed = {status: n for status, n in self.statuses.items() if status >= 400 or status == 0}
        errors = sum(failed.values()) if not failed else f"{sum(failed.values())} {dict(sorted(failed.items()))}"
        return (
            f"  {self.name:<40} p50 {percentile(self.latencies_ms, 50):6.1f} ms  "
            f"p95 {percentile(self.latencies_ms, 95):6.1f} ms  p99 {percentile(self.latencies_ms, 99):6.1f} ms  "
            f"errors {errors}  ({goal}; generator late p99 {percentile(self.lateness_ms, 99):.1f} ms)"
        )


async def offer(http: aiohttp.ClientSession, phase: Phase, schedule: list[float], request) -> None:
    """request(i) at each of `schedule`'s offsets (seconds), whether or not earlier ones ended."""
    began = time.perf_counter()

    async def one(i: int, scheduled: float) -> None:
        phase.lateness_ms.append((time.perf_counter() - scheduled) * 1000)
        try:
            async with request(http, i) as response:
                await response.read()
                phase.statuses[response.status] += 1
        except aiohttp.ClientError:
            phase.statuses[0] += 1
        phase.latencies_ms.append((time.perf_counter() - scheduled) * 1000)

    tasks = []
    for i, offset in enumerate(schedule):
        delay = began + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, began + offset)))
    await asyncio.gather(*tasks)


def steady(rate: float, seconds: float) -> list[float]:
    return [i / rate for i in range(int(rate * seconds))]


def bursty(base: float, burst: float, seconds: float, burst_seconds: float, period: float) -> list[float]:
    """`base` req/s, and `burst` req/s for `burst_seconds` of every `period`."""
    offsets, t = [], 0.0
    while t < seconds:
        offsets.append(t)
        t += 1 / (burst if t % period < burst_seconds else base)
    return offsets


# The raw limit: a bare FastAPI app whose POST is one INSERT, started by this module as its own
# uvicorn process (`uvicorn bench.api:raw_app --factory`).
class RawRow(BaseModel):
    text: str


def raw_app() -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pool = await asyncpg.create_pool(**asyncpg_dsn(asyncpg_url(os.environ["DATABASE_URL"])), max_size=20)
        await app.state.pool.execute("CREATE TABLE IF NOT EXISTS bench_raw_api (id bigserial PRIMARY KEY, text text)")
        yield
        await app.state.pool.close()

    app = FastAPI(lifespan=lifespan)

    @app.post("/rows", status_code=201)
    async def insert(row: RawRow) -> dict:
        return {
            "id": await app.state.pool.fetchval("INSERT INTO bench_raw_api (text) VALUES ($1) RETURNING id", row.text)
        }

    return app


def start_raw(stack: BenchStack) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(stack.tmp / "raw.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.api:raw_app",
            "--factory",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stack.procs.append(proc)
    return proc, f"http://127.0.0.1:{port}"


async def wait_ready(http: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            async with http.post(url, json={"text": "ready?"}) as response:
                if response.status == 201:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


async def run(args: argparse.Namespace) -> None:
    stack = BenchStack(api_workers=args.api_workers)
    fake = FakeTelegram()
    stack.start()
    try:
        fake.start()
        stack.env.update(TELEGRAM_API_BASE=fake.base_url, API_RATE_PER_SECOND="100000", API_RATE_BURST="100000")
        secret, conversations = await seed(stack.env["DATABASE_URL"], stack.env["CREDENTIALS_KEY"], args.conversations)
        stack.start_app()
        _, raw_url = start_raw(stack)
        load = os.getloadavg()  # the machine may carry other work: say how much
        auth = {"Authorization": f"Bearer {secret}"}
        api = stack.api_url
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
            await wait_ready(http, f"{raw_url}/rows")
            keys: list[str] = []

            def listing(http, i):
                return http.get(f"{api}/api/v1/conversations", params={"limit": 50}, headers=auth)

            def sending(http, i, tag="send"):
                key = f"{tag}-{i}"
                keys.append(key)
                return http.post(
                    f"{api}/api/v1/conversations/{conversations[i % len(conversations)]}/messages",
                    json={"text": f"Your order {i} ships today"},
                    headers={**auth, "Idempotency-Key": key},
                )

            def mixed(http, i):
                return listing(http, i) if i % 2 else sending(http, i, tag="mixed")

            def raw(http, i):
                return http.post(f"{raw_url}/rows", json={"text": f"row {i}"})

            # warm-up, not measured: pools grown, statements prepared, workflow code loaded
            await offer(http, Phase("warm-up"), steady(args.rate, args.warmup), lambda h, i: sending(h, i, "warm"))
            await offer(http, Phase("warm-up"), steady(args.rate, args.warmup), listing)
            await offer(http, Phase("warm-up"), steady(args.rate, args.warmup), raw)

            phases = [
                (
                    Phase(f"raw: FastAPI POST + one INSERT at {args.rate:g}/s"),
                    steady(args.rate, args.seconds),
                    raw,
                    "same machine, same run",
                ),
                (
                    Phase(f"list conversations at {args.rate:g}/s"),
                    steady(args.rate, args.seconds),
                    listing,
                    "goal p99 <= 100 ms",
                ),
                (
                    Phase(f"mixed {args.rate / 2:g}/s, bursts of {args.rate:g}/s"),
                    bursty(args.rate / 2, args.rate, args.seconds, args.seconds / 8, args.seconds / 4),
                    mixed,
                    "floor p95 <= 400 ms",
                ),
                (
                    Phase(f"send message at {args.rate:g}/s"),
                    steady(args.rate, args.seconds),
                    sending,
                    "goal p99 <= 100 ms",
                ),
            ]
            # the send phase last: the worker delivers its replies for minutes after it
            for phase, schedule, request, _ in phases:
                await offer(http, phase, schedule, request)
                await asyncio.sleep(1)

        created = await message_counts(stack.env["DATABASE_URL"], keys)
        print(
            f"\nload average (1 min) before / after: {load[0]:.1f} / {os.getloadavg()[0]:.1f}"
            f"\napi benchmark: {len(conversations)} conversations, one token of every branch, open loop, "
            f"{args.seconds:g} s per phase after {args.warmup:g} s of unmeasured warm-up; "
            f"api ({args.api_workers} uvicorn worker(s)) and worker processes, cores {os.cpu_count()}"
        )
        for phase, _, _, goal in phases:
            print(phase.line(goal))
        sent = sum(1 for k in keys if not k.startswith("warm"))
        print(f"  replies created          {created['measured']} (expected {sent}); duplicates {created['duplicates']}")
    except BaseException:
        fake.stop()
        stack.stop(show_log=True)
        raise
    else:
        fake.stop()
        stack.stop()


async def message_counts(database_url: str, keys: list[str]) -> dict[str, int]:
    """Replies per Idempotency-Key (each must be one message)."""
    engine = create_async_engine(database_url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT k.key, count(m.id) FROM api_idempotency_keys k "
                    "JOIN messages m ON m.id = (k.response::jsonb ->> 'id')::bigint GROUP BY k.key"
                )
            )
        ).all()
        total = await conn.scalar(text("SELECT count(*) FROM messages WHERE sender_kind = 'integration'"))
    await engine.dispose()
    measured = sum(1 for key, _ in rows if not key.startswith("warm"))
    return {"measured": measured, "duplicates": total - len(rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s offered in the steady phases")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes of the api")
    parser.add_argument("--quick", action="store_true", help="20 req/s, 2 s per phase, 200 conversations")
    args = parser.parse_args()
    if args.quick:
        args.rate, args.seconds, args.warmup, args.conversations = 20.0, 2.0, 0.5, 200
    asyncio.run(run(args))
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)


if __name__ == "__main__":
    main()
