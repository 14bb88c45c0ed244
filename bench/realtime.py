"""Realtime benchmark: N concurrent SSE subscribers (GET /events) on ONE api process, events
published at R/s through the real path, each visible to one branch's operators (a tenth of the
subscribers with the default 10 branches).

    .venv/bin/python -m bench.realtime            # 10,000 subscribers, 100 events/s for 20 s
    .venv/bin/python -m bench.realtime --quick    # 1,000 subscribers, 50 events/s for 5 s

The path: a customer writes into their open conversation in a branch's pool (services.ingest,
whose one hand-written statement stores the message and the `message.created` row; at commit
the trigger gives it its id and NOTIFYs) -> the api's hub (its one LISTEN connection) -> the visibility filter (a dict
lookup by branch) -> each subscriber's SSE stream. The subscribers are signed-in operators
spread over the branches, held by a load generator in another process (asyncio + uvloop, raw
sockets); it counts, per subscriber, every event it receives, so lost and duplicated deliveries
and out-of-order ids are exact, not sampled.

Printed: the api's RSS per idle connection (RSS with all subscribers connected and idle minus
RSS before, over N), publish -> receive p50/p99 (from the moment the publishing transaction
began to the moment the generator read the frame, both on the machine's monotonic clock),
deliveries expected / received / lost / duplicated / out of order, the api's CPU and the whole
machine's during the load, the generator's own event-loop lag (a late generator inflates the
latencies it reports), and, measured in the same run, the raw figure: NOTIFY -> one asyncio
listener at the same rate. Goal on our 2-core machines: 10,000 subscribers, p99 <= 250 ms at
100 events/s, 0 lost, <= 25 KB per idle connection.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from bench.stack import BenchStack, percentile
from infra.db import asyncpg_dsn
from infra.security import new_token, token_digest

FRAME = re.compile(rb'id: (\d+)\nevent: message\.created\ndata: [^\n]*?"message_id": (\d+)')


def raise_open_files() -> int:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# --- the publishing side (this process) ------------------------------------------------------


@dataclass
class World:
    inbox_id: int
    conversations: list[tuple[int, int, int, str]]  # (conversation id, branch id, branch index, user)
    sessions: list[tuple[str, int]]  # (cookie, branch index) per subscriber


async def seed(dsn: dict, subscribers: int, branches: int, conversations_per_branch: int = 5) -> World:
    conn = await asyncpg.connect(**dsn)
    try:
        branch_ids = [
            await conn.fetchval("INSERT INTO branches (name) VALUES ($1) RETURNING id", f"Branch {b}")
            for b in range(branches)
        ]
        emails = [f"op{i}@bench" for i in range(subscribers)]
        homes = [i % branches for i in range(subscribers)]
        operator_ids = [
            r[0]
            for r in await conn.fetch(
                "INSERT INTO operators (email, display_name, password_hash, role, branch_id) "
                "SELECT e, e, 'x', 'operator', b FROM unnest($1::text[], $2::bigint[]) AS t(e, b) RETURNING id",
                emails,
                [branch_ids[h] for h in homes],
            )
        ]
        tokens = [new_token() for _ in operator_ids]
        await conn.execute(
            "INSERT INTO web_sessions (token_hash, operator_id, csrf_token, expires_at) "
            "SELECT h, o, 'c', $3 FROM unnest($1::bytea[], $2::bigint[]) AS t(h, o)",
            [token_digest(t) for t in tokens],
            operator_ids,
            datetime.now(UTC) + timedelta(days=1),
        )
        inbox_id = await conn.fetchval(
            "INSERT INTO inboxes (name, channel) VALUES ('Bench bot', 'telegram') RETURNING id"
        )
        conversations = []
        for b, branch_id in enumerate(branch_ids):
            for c in range(conversations_per_branch):
                contact = await conn.fetchval(
                    "INSERT INTO contacts (display_name) VALUES ($1) RETURNING id", f"Customer {b}-{c}"
                )
                identity = await conn.fetchval(
                    "INSERT INTO contact_identities (contact_id, channel, provider_user_id) "
                    "VALUES ($1, 'telegram', $2) RETURNING id",
                    contact,
                    f"{b}-{c}",
                )
                await conn.execute(
                    "INSERT INTO contact_chats (identity_id, inbox_id, provider_chat_id) VALUES ($1, $2, $3)",
                    identity,
                    inbox_id,
                    f"{b}-{c}",
                )
                conversation = await conn.fetchval(
                    "INSERT INTO conversations (inbox_id, contact_id, identity_id, branch_id, status) "
                    "VALUES ($1, $2, $3, $4, 'open') RETURNING id",
                    inbox_id,
                    contact,
                    identity,
                    branch_id,
                )
                conversations.append((conversation, branch_id, b, f"{b}-{c}"))
        return World(inbox_id, conversations, list(zip(tokens, homes, strict=True)))
    finally:
        await conn.close()


async def publish_messages(
    database_url: str, world: World, rate: float, seconds: float, *, tag: str = "bench"
) -> list[list]:
    """Open loop at `rate`/s: each event is a customer message into its open conversation,
    through services.ingest (its hand-written statement stores the message and the event row).
    Returns [message id, branch index, began, took] per event."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from domain.contracts import InboundEvent, InboundKind
    from domain.enums import ChannelKind
    from infra.db import make_sessionmaker
    from services.ingest import ingest

    engine = create_async_engine(database_url, pool_size=20, max_overflow=0)
    factory = make_sessionmaker(engine)
    published: list[list] = []

    async def one(i: int) -> None:
        conversation_id, _branch_id, b, user = world.conversations[i % len(world.conversations)]
        event = InboundEvent(
            inbox_id=world.inbox_id,
            channel=ChannelKind.TELEGRAM,
            kind=InboundKind.MESSAGE,
            provider_user_id=user,
            provider_chat_id=user,
            provider_message_id=f"{tag}-{i}",
            provider_time=datetime.now(UTC),
            text=f"message {i}",
        )
        began = time.monotonic()
        result = await ingest(factory, event)
        assert result.conversation_id == conversation_id and result.message_id is not None, result
        published.append([result.message_id, b, began, time.monotonic() - began])

    tasks = []
    start = time.monotonic()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    await engine.dispose()
    return published


async def raw_notify_latency(dsn: dict, rate: float, seconds: float) -> tuple[float, float, int, int]:
    """NOTIFY -> one asyncio listener at `rate`/s: p50, p99 ms, sent, received."""
    listener = await asyncpg.connect(**dsn)
    pool = await asyncpg.create_pool(**dsn, min_size=4, max_size=4)
    latencies: list[float] = []
    listener_ready = asyncio.Event()

    def heard(_c, _p, _ch, payload: str) -> None:
        latencies.append(time.monotonic() - float(payload))

    await listener.add_listener("bench_raw", heard)
    listener_ready.set()
    n = int(rate * seconds)
    start = time.monotonic()
    tasks = []
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(pool.execute("SELECT pg_notify('bench_raw', $1)", repr(time.monotonic()))))
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.5)
    await listener.close()
    await pool.close()
    return percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000, n, len(latencies)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy() -> tuple[int, int]:
    values = list(map(int, Path("/proc/stat").read_text().splitlines()[0].split()[1:]))
    return sum(values) - values[3] - values[4], sum(values)


class Generator:
    """A load generator in its own process (`python -m <module> --role <role> ...`), driven by
    JSON lines on its stdin: one command, one answer line (bench.widget's visitors too)."""

    def __init__(self, module: str, role: str, *args: str, timeout: float = 300) -> None:
        self.role, self.timeout = role, timeout
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--role", role, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=raise_open_files,
        )

    async def ask(self, command: dict) -> dict:
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), self.timeout)
        if not line:
            raise RuntimeError(f"the {self.role} process died")
        return json.loads(line)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def run(args: argparse.Namespace) -> None:
    stack = BenchStack(temporal=False)
    stack.start()
    generator = None
    try:
        dsn = asyncpg_dsn(stack.env["DATABASE_URL"])
        world = await seed(dsn, args.subscribers, args.branches)
        raw_p50, raw_p99, raw_sent, raw_heard = await raw_notify_latency(dsn, args.rate, min(args.seconds, 10))

        api = stack.start_api(preexec_fn=raise_open_files)
        sessions_file = stack.tmp / "sessions.json"
        sessions_file.write_text(json.dumps(world.sessions))
        generator = Generator(
            "bench.realtime", "subscribers", "--port", str(stack.api_port), "--sessions", str(sessions_file)
        )
        await generator.ask({"cmd": "warm"})  # a few streams first: code paths loaded, pools grown
        await asyncio.sleep(1)
        rss_before = rss_kb(api.pid)
        connected = await generator.ask({"cmd": "connect"})
        await asyncio.sleep(3)
        rss_idle = rss_kb(api.pid)

        # unmeasured first: statements prepared, schedules cached, pools grown
        await publish_messages(stack.env["DATABASE_URL"], world, args.rate, 1, tag="warm")
        await asyncio.sleep(1)
        await generator.ask({"cmd": "record"})
        cpu0, busy0 = cpu_seconds(api.pid), machine_busy()
        began = time.monotonic()
        published = await publish_messages(stack.env["DATABASE_URL"], world, args.rate, args.seconds)
        took = time.monotonic() - began
        cpu1, busy1 = cpu_seconds(api.pid), machine_busy()
        await asyncio.sleep(2)  # the tail of the fan-out
        report = await generator.ask({"cmd": "report", "published": published})
        rss_after = rss_kb(api.pid)

        n = args.subscribers
        print(
            f"\nrealtime benchmark: {n} SSE subscribers on one api process, {args.rate:g} events/s for "
            f"{args.seconds:g} s, each event visible to the operators of 1 of {args.branches} branches "
            f"(~{n // args.branches} subscribers); cores {os.cpu_count()}"
        )
        print(
            f"  connected                {connected['connected']}/{n} in {connected['seconds']:.1f} s; "
            f"streams closed during the run {report['closed']}"
        )
        print(
            f"  api RSS                  {rss_before / 1024:.0f} MB -> {rss_idle / 1024:.0f} MB with every stream "
            f"idle: {(rss_idle - rss_before) / n:.1f} KB per idle connection   (target <= 25 KB); "
            f"{rss_after / 1024:.0f} MB after the load"
        )
        print(f"  published                {len(published)} events in {took:.1f} s ({len(published) / took:.0f}/s)")
        print(
            f"  publish -> receive       p50 {report['p50']:7.1f} ms  p99 {report['p99']:7.1f} ms  max "
            f"{report['max']:7.1f} ms   (target p99 <= 250 ms)"
        )
        print("    p99 per second of the run: " + " ".join(map(str, report["per_second"])))
        commits = [c * 1000 for *_rest, c in published]
        print(
            f"    of which ingest (the publishing statement): p50 {percentile(commits, 50):.1f} ms  "
            f"p99 {percentile(commits, 99):.1f} ms"
        )
        print(
            f"  deliveries               expected {report['expected']}, received {report['received']}, "
            f"lost {report['lost']}, duplicated {report['duplicated']}, out of order {report['out_of_order']}"
        )
        print(
            f"  api CPU during the load  {(cpu1 - cpu0) / took:.2f} cores; machine busy "
            f"{100 * (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]):.0f}% of {os.cpu_count()} cores"
        )
        print(f"  generator's loop lag     p99 {report['lag_p99']:.1f} ms (late reading is counted as latency above)")
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


# --- the subscribing side (another process) ----------------------------------------------------


class Stream(asyncio.Protocol):
    """One subscriber: a raw HTTP/1.1 GET /events, frames matched in place (cheap enough for
    100,000 frames/s on the generator's share of two cores)."""

    def __init__(self, request: bytes, opened: asyncio.Future, streams: list[Stream]) -> None:
        self.request = request
        self.opened = opened
        self.head = b""
        self.tail = b""
        self.recording = False
        self.ids = array.array("q")
        self.messages = array.array("q")
        self.times = array.array("d")
        self.closed = False
        streams.append(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if not self.opened.done():
            self.head += data
            if b"retry:" in self.head:
                self.opened.set_result(self.head.startswith(b"HTTP/1.1 200"))
            return
        if not self.recording:
            return
        now = time.monotonic()
        buffer = self.tail + data
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self.tail = buffer
            return
        self.tail = buffer[cut + 2 :]
        for event_id, message_id in FRAME.findall(buffer, 0, cut + 2):
            self.ids.append(int(event_id))
            self.messages.append(int(message_id))
            self.times.append(now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.opened.done():
            self.opened.set_result(False)


async def subscribers(port: int, sessions_file: Path) -> None:
    sessions = json.loads(sessions_file.read_text())
    loop = asyncio.get_running_loop()
    streams: list[Stream] = []
    homes: list[int] = []
    lags: list[float] = []

    async def open_stream(cookie: str) -> bool:
        request = (
            f"GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\nCookie: sb_session={cookie}\r\n\r\n"
        ).encode()
        opened = loop.create_future()
        await loop.create_connection(lambda: Stream(request, opened, streams), "127.0.0.1", port)
        return await asyncio.wait_for(opened, 60)

    gate = asyncio.Semaphore(200)  # connections being opened at once

    async def open_gated(cookie: str) -> bool:
        async with gate:
            return await open_stream(cookie)

    async def watch_lag() -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.02)
            lags.append((time.monotonic() - before - 0.02) * 1000)

    reader = asyncio.StreamReader(limit=2**26)  # the report command carries every published event
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def answer(obj: dict) -> None:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()

    warm: list[Stream] = []
    while line := await reader.readline():
        command = json.loads(line)
        if command["cmd"] == "warm":
            for cookie, _home in sessions[:20]:
                await open_stream(cookie)
            warm = streams[:]
            answer({"ok": True})
        elif command["cmd"] == "connect":
            began = time.monotonic()
            opened = await asyncio.gather(*(open_gated(cookie) for cookie, _home in sessions))
            homes = [home for _cookie, home in sessions]
            answer({"connected": sum(opened), "seconds": time.monotonic() - began})
        elif command["cmd"] == "record":
            lag_task = asyncio.create_task(watch_lag())
            for stream in streams:
                stream.recording = True
            answer({"ok": True})
        elif command["cmd"] == "report":
            lag_task.cancel()
            answer(summarise(streams[len(warm) :], homes, command["published"], lags))


def summarise(streams: list[Stream], homes: list[int], published: list[list], lags: list[float]) -> dict:
    by_message = {message_id: (home, began) for message_id, home, began, _commit in published}
    first = min((began for _m, _h, began, _c in published), default=0.0)
    per_second: dict[int, list[float]] = {}
    audience = Counter(homes)
    expected = sum(audience[home] for home, _ in by_message.values())
    received = duplicated = out_of_order = 0
    latencies: list[float] = []
    lost = expected
    for stream, home in zip(streams, homes, strict=True):
        seen: set[int] = set()
        previous = 0
        for event_id, message_id, at in zip(stream.ids, stream.messages, stream.times, strict=True):
            received += 1
            if event_id <= previous:
                out_of_order += 1
            previous = max(previous, event_id)
            if message_id in seen:
                duplicated += 1
                continue
            seen.add(message_id)
            origin = by_message.get(message_id)
            if origin is not None and origin[0] == home:
                lost -= 1
                latencies.append((at - origin[1]) * 1000)
                per_second.setdefault(int(origin[1] - first), []).append(latencies[-1])
    return {
        "expected": expected,
        "received": received,
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "max": max(latencies, default=float("nan")),
        "lag_p99": percentile(lags, 99),
        "closed": sum(stream.closed for stream in streams),
        "per_second": [round(percentile(v, 99)) for _, v in sorted(per_second.items())],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=100, help="events published per second")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--branches", type=int, default=10, help="each event is visible to one branch's operators")
    parser.add_argument("--quick", action="store_true", help="1,000 subscribers, 50 events/s for 5 s")
    parser.add_argument("--role", choices=["bench", "subscribers"], default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "subscribers":
        import uvloop

        uvloop.run(subscribers(args.port, args.sessions))
        return
    if args.quick:
        args.subscribers, args.rate, args.seconds = 1_000, 50, 5
    raise_open_files()
    asyncio.run(run(args))
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)


if __name__ == "__main__":
    main()
