"""Website widget benchmark: V concurrent visitors on ONE api process, each with a live stream
(GET /widget/v1/events), each writing every 30 s on average (POST /widget/v1/messages, now and
then sent twice with the same client id, as a widget does after a timeout), while operators
reply through the service (services.conversations.send_reply) at R/s.

    .venv/bin/python -m bench.widget            # 2,000 visitors, replies at 40/s for 60 s
    .venv/bin/python -m bench.widget --quick    # 200 visitors, 20/s for 10 s

The visitors live in a load generator process (asyncio + aiohttp); their tokens are minted with
the stack's key (a real widget asks POST /sessions, whose per-address budgets a single load
generator would exhaust), and each comes from an address of its own (X-Forwarded-For from
loopback, as behind a local proxy). Printed: visitor send -> stored (the POST's answer, which
comes after the commit) p50/p99; operator reply -> the frame in the visitor's stream p50/p99
(from the start of the replying transaction to the generator reading the frame, both on the
machine's monotonic clock; goal p99 <= 250 ms); replies lost or duplicated (goal 0) and
visitor messages stored twice (goal 0); the api's RSS; and, in the same run, the raw limit:
NOTIFY -> one asyncio listener at the reply rate (bench.realtime's raw figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import sys
import time
from datetime import timedelta
from pathlib import Path

from bench.realtime import Generator, cpu_seconds, machine_busy, raise_open_files, raw_notify_latency, rss_kb
from bench.stack import BenchStack, percentile
from infra.db import asyncpg_dsn

FRAME = re.compile(r'"message_id": (\d+)')
SEND_EVERY = 30.0  # seconds between a visitor's messages, on average
RESEND_SHARE = 0.05  # of sends tried twice with the same client id


async def seed(database_url: str, visitors: int, key_text: str) -> dict:
    """A widget inbox, an API token for the replying side, one signed token per visitor."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.enums import ChannelKind
    from infra.db import make_sessionmaker
    from infra.models import Branch, Inbox
    from infra.settings import Settings
    from services.api_tokens import create_token
    from services.widget_sessions import issue, new_visitor_id, signing_key

    engine = create_async_engine(database_url)
    factory = make_sessionmaker(engine)
    async with factory() as db, db.begin():
        db.add(Branch(name="Bench", timezone="UTC", is_default=True))
        inbox = Inbox(name="Bench site", channel=ChannelKind.WIDGET, settings={})
        db.add(inbox)
        await db.flush()
        token = await create_token(db, None, name="bench", branch_ids=None, can_write=True)
        inbox_id, token_id = inbox.id, token.token.id
    await engine.dispose()
    key = signing_key(Settings(credentials_key=key_text, _env_file=None))
    tokens = [issue(key, inbox_id, new_visitor_id(), timedelta(days=1))[0] for _ in range(visitors)]
    return {"inbox_id": inbox_id, "token_id": token_id, "tokens": tokens}


async def reply(database_url: str, token_id: int, conversations: list[int], rate: float, seconds: float) -> list:
    """Open loop at `rate`/s: an operator's reply into a random visitor's conversation through
    the service. Returns [message id, conversation id, began] per reply."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from infra.db import make_sessionmaker
    from infra.models import ApiToken
    from services.conversations import send_reply

    engine = create_async_engine(database_url, pool_size=20, max_overflow=0)
    factory = make_sessionmaker(engine)
    async with factory() as db:
        caller = await db.get(ApiToken, token_id)
    sent: list = []
    rng = random.Random(7)

    async def one(i: int) -> None:
        conversation_id = rng.choice(conversations)
        began = time.monotonic()
        async with factory() as db, db.begin():
            message_id, _ = await send_reply(db, caller, conversation_id, f"reply {i}", idempotency_key=f"b{i}")
        sent.append([message_id, conversation_id, began])

    tasks = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    await engine.dispose()
    return sent


async def stored_twice(database_url: str, inbox_id: int) -> tuple[int, int]:
    import asyncpg

    conn = await asyncpg.connect(**asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT provider_message_id) FROM messages"
            " WHERE inbox_id = $1 AND direction = 'in'",
            inbox_id,
        )
    finally:
        await conn.close()
    return row[0], row[0] - row[1]


async def run(args: argparse.Namespace) -> None:
    stack = BenchStack(temporal=False)
    stack.start()
    generator = None
    try:
        world = await seed(stack.env["DATABASE_URL"], args.visitors, stack.env["CREDENTIALS_KEY"])
        dsn = asyncpg_dsn(stack.env["DATABASE_URL"])
        raw_p50, raw_p99, raw_sent, raw_heard = await raw_notify_latency(dsn, args.rate, min(args.seconds, 10))
        api = stack.start_api(preexec_fn=raise_open_files)
        seed_file = stack.tmp / "visitors.json"
        seed_file.write_text(json.dumps(world["tokens"]))
        generator = Generator(
            "bench.widget", "visitors", "--port", str(stack.api_port), "--seed", str(seed_file), timeout=600
        )
        rss_before = rss_kb(api.pid)
        opened = await generator.ask({"cmd": "open"})
        await asyncio.sleep(2)
        rss_open = rss_kb(api.pid)
        await generator.ask({"cmd": "chat", "seconds": args.seconds + 3})
        await asyncio.sleep(1)
        cpu0, busy0 = cpu_seconds(api.pid), machine_busy()
        began = time.monotonic()
        sent = await reply(
            stack.env["DATABASE_URL"], world["token_id"], opened["conversations"], args.rate, args.seconds
        )
        took = time.monotonic() - began
        cpu1, busy1 = cpu_seconds(api.pid), machine_busy()
        sent_file = stack.tmp / "replies.json"
        sent_file.write_text(json.dumps(sent))
        report = await generator.ask({"cmd": "report", "sent": str(sent_file)})
        rss_after = rss_kb(api.pid)
        stored, twice = await stored_twice(stack.env["DATABASE_URL"], world["inbox_id"])

        n = args.visitors
        print(
            f"\nwidget benchmark: {n} visitors on one api process, each with a live stream and writing every "
            f"{SEND_EVERY:g} s on average ({RESEND_SHARE:.0%} sent twice), operators replying at {args.rate:g}/s "
            f"for {args.seconds:g} s; cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"  streams open             {opened['open']}/{n} in {opened['seconds']:.1f} s; "
            f"closed during the run {report['closed']}"
        )
        print(
            f"  api RSS                  {rss_before / 1024:.0f} MB -> {rss_open / 1024:.0f} MB with every visitor "
            f"connected; {rss_after / 1024:.0f} MB after the load"
        )
        print(
            f"  visitor send -> stored   p50 {report['send_p50']:7.1f} ms  p99 {report['send_p99']:7.1f} ms   "
            f"({report['sends']} sends, {report['send_errors']} errors)"
        )
        print(
            f"  reply -> visitor stream  p50 {report['p50']:7.1f} ms  p99 {report['p99']:7.1f} ms  "
            f"max {report['max']:7.1f} ms   (goal p99 <= 250 ms; {len(sent)} replies in {took:.1f} s)"
        )
        print(
            f"  replies                  lost {report['lost']}, duplicated {report['duplicated']}; visitor messages "
            f"stored {stored}, twice {twice}"
        )
        print(
            f"  api CPU during the load  {(cpu1 - cpu0) / took:.2f} cores; machine busy "
            f"{100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]):.0f}% of {os.cpu_count()} cores"
        )
        print("  raw limit, same run:")
        print(
            f"    NOTIFY -> one asyncio listener at {args.rate:g}/s   p50 {raw_p50:.2f} ms  p99 {raw_p99:.2f} ms  "
            f"({raw_heard}/{raw_sent} heard)"
        )
    except BaseException:
        stack.stop(show_log=True)
        raise
    else:
        stack.stop()
    finally:
        if generator is not None:
            generator.stop()


# --- the visitors (another process) ------------------------------------------------------------


async def visitors(port: int, seed_file: Path) -> None:
    import aiohttp

    base = f"http://127.0.0.1:{port}/widget/v1"
    tokens: list[str] = json.loads(seed_file.read_text())
    rng = random.Random(11)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30))
    heard: list[dict[int, list[float]]] = [{} for _ in tokens]  # per visitor: message id -> times seen
    conversations: list[int] = [0] * len(tokens)
    closed = [0]
    send_times: list[float] = []
    send_errors = [0]

    def headers(i: int) -> dict[str, str]:
        return {
            "authorization": f"Bearer {tokens[i]}",
            "origin": f"http://127.0.0.1:{port}",
            "x-forwarded-for": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}",
        }

    async def say(i: int, client_id: str, text: str) -> None:
        began = time.monotonic()
        try:
            async with http.post(
                f"{base}/messages", json={"client_id": client_id, "text": text}, headers=headers(i)
            ) as answer:
                await answer.read()
                if answer.status != 201:
                    send_errors[0] += 1
                    return
        except aiohttp.ClientError:
            send_errors[0] += 1
            return
        send_times.append((time.monotonic() - began) * 1000)

    async def follow(i: int, ready: asyncio.Event) -> None:
        url = f"{base}/events?token={tokens[i]}"
        try:
            async with http.get(url, headers=headers(i)) as response:
                ready.set()
                if response.status != 200:
                    closed[0] += 1
                    return
                async for line in response.content:
                    if line.startswith(b"data: ") and (m := FRAME.search(line.decode())):
                        heard[i].setdefault(int(m.group(1)), []).append(time.monotonic())
        except (aiohttp.ClientError, asyncio.CancelledError):
            pass
        closed[0] += 1

    async def first(i: int) -> None:
        await say(i, f"first{i:08d}", "hello")
        async with http.get(f"{base}/chat", headers=headers(i)) as answer:
            conversations[i] = (await answer.json())["conversation"]["id"]

    async def chatting(i: int, until: float) -> None:
        n = 0
        while True:
            await asyncio.sleep(rng.expovariate(1 / SEND_EVERY))
            if time.monotonic() > until:
                return
            n += 1
            client_id = f"v{i:06d}m{n:06d}"
            await say(i, client_id, f"message {n}")
            if rng.random() < RESEND_SHARE:
                await say(i, client_id, f"message {n}")  # the widget's resend after a timeout

    def answer(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    streams: list[asyncio.Task] = []
    talkers: list[asyncio.Task] = []
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "open":
            began = time.monotonic()

            async def start(i: int, sem: asyncio.Semaphore) -> None:
                async with sem:
                    await first(i)
                    ready = asyncio.Event()
                    streams.append(asyncio.create_task(follow(i, ready)))
                    await ready.wait()

            opening = asyncio.Semaphore(100)
            await asyncio.gather(*(start(i, opening) for i in range(len(tokens))))
            send_times.clear()
            answer(
                {
                    "open": len(streams) - closed[0],
                    "seconds": time.monotonic() - began,
                    "conversations": conversations,
                }
            )
        elif command["cmd"] == "chat":
            until = time.monotonic() + command["seconds"]
            talkers = [asyncio.create_task(chatting(i, until)) for i in range(len(tokens))]
            answer({"ok": True})
        elif command["cmd"] == "report":
            await asyncio.sleep(2)  # the tail of the fan-out
            owner = {conversation: i for i, conversation in enumerate(conversations)}
            latencies: list[float] = []
            lost = duplicated = 0
            for message_id, conversation_id, began in json.loads(Path(command["sent"]).read_text()):
                times = heard[owner[conversation_id]].get(message_id, [])
                if not times:
                    lost += 1
                    continue
                duplicated += len(times) - 1
                latencies.append((times[0] - began) * 1000)
            for task in talkers:
                task.cancel()
            answer(
                {
                    "p50": percentile(latencies, 50),
                    "p99": percentile(latencies, 99),
                    "max": max(latencies, default=float("nan")),
                    "lost": lost,
                    "duplicated": duplicated,
                    "closed": closed[0],
                    "sends": len(send_times),
                    "send_p50": percentile(send_times, 50),
                    "send_p99": percentile(send_times, 99),
                    "send_errors": send_errors[0],
                }
            )
            for task in streams:
                task.cancel()
            await http.close()
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--visitors", type=int, default=2_000)
    parser.add_argument("--rate", type=float, default=40, help="operator replies per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--quick", action="store_true", help="200 visitors, 20 replies/s for 10 s")
    parser.add_argument("--role", choices=["bench", "visitors"], default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "visitors":
        asyncio.run(visitors(args.port, args.seed))
        return
    if args.quick:
        args.visitors, args.rate, args.seconds = 200, 20, 10
    raise_open_files()
    asyncio.run(run(args))
    os._exit(0)


if __name__ == "__main__":
    main()
