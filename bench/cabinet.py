"""The masters' workspace under load: 100,000 conversations and 1,000,000 messages (seeded with
COPY), 20 operators at once, request time p50/p99 of each inbox page the cabinet serves.

    .venv/bin/python -m bench.cabinet            # the full size
    .venv/bin/python -m bench.cabinet --quick    # 2,000 conversations: a smoke run

Measured per scenario with 20 signed-in operators at once, each asking for a page a second (open
loop: 20 requests a second, started on schedule), against the real api
(one uvicorn process): each tab's first page, filters (status, channel, unanswered, label), a deep
cursor page, the search (message text, contact name, phone), and the thread's first page of a
conversation of 5,000 messages. Times are taken at the client on loopback, so they hold the
server's whole work (session, visibility, the queries, the render) and little else. Beside them,
in the same run: `GET /healthz` at the same rate (the floor of a request on this machine), the
floor again while each scenario runs (a probe of `/healthz` five times a second: what waiting for
a busy server adds), and each scenario's page asked for by one client alone (what the page costs
by itself).
Goal on our 2-core machines: p99 <= 50 ms each. For any scenario above it the run prints the
EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of the page's own queries, as the services
run them.

    .venv/bin/python -m bench.cabinet --api-workers 2    # the api as uvicorn with 2 processes
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg

from bench.stack import BenchStack, percentile
from infra.db import asyncpg_dsn, asyncpg_url
from infra.security import hash_password, new_token, token_digest

OPERATORS = 20
BRANCHES = 2
THREAD_MESSAGES = 5_000
GOAL_MS = 50.0
FLOOR_PROBES = 5  # a second, while each scenario runs
WORDS = [
    "заказ",
    "доставка",
    "оплата",
    "возврат",
    "курьер",
    "склад",
    "аккумулятор",
    "телефон",
    "гарантия",
    "адрес",
    "скидка",
    "чек",
    "order",
    "delivery",
    "refund",
    "invoice",
    "battery",
    "warranty",
    "address",
    "discount",
]
NAMES = ["Ирина", "Пётр", "Ольга", "Сергей", "Анна", "Дмитрий", "Мария", "Алексей", "Елена", "Николай"]
SURNAMES = [
    "Смирнова",
    "Кузнецов",
    "Иванова",
    "Попов",
    "Петрова",
    "Соколов",
    "Лебедева",
    "Козлов",
    "Новикова",
    "Морозов",
]


async def seed(dsn: dict, conversations: int, messages: int) -> dict:
    """Everything with COPY: branches, operators with sessions, two inboxes, contacts with an
    identity and a chat each, conversations in every state and placement, their messages (one
    conversation holds THREAD_MESSAGES of them), a few labels."""
    rng = random.Random(7)
    conn = await asyncpg.connect(**dsn)
    began = time.perf_counter()
    try:
        now = datetime.now(UTC)
        branch_ids = [
            await conn.fetchval("INSERT INTO branches (name, is_default) VALUES ($1, $2) RETURNING id", f"B{i}", i == 0)
            for i in range(BRANCHES)
        ]
        password = hash_password("bench-password")
        operators, sessions = [], {}
        for i in range(OPERATORS):
            role = "supervisor" if i == 0 else "operator"
            operator_id = await conn.fetchval(
                "INSERT INTO operators (email, display_name, password_hash, role, branch_id, status)"
                " VALUES ($1, $2, $3, $4, $5, 'online') RETURNING id",
                f"op{i}@bench",
                f"Operator {i}",
                password,
                role,
                branch_ids[i % BRANCHES],
            )
            token = new_token()
            await conn.execute(
                "INSERT INTO web_sessions (token_hash, operator_id, csrf_token, expires_at) VALUES ($1, $2, $3, $4)",
                token_digest(token),
                operator_id,
                secrets.token_urlsafe(16),
                now + timedelta(days=1),
            )
            operators.append((operator_id, branch_ids[i % BRANCHES]))
            sessions[operator_id] = token
        inboxes = [
            await conn.fetchval(
                "INSERT INTO inboxes (name, channel, credentials_encrypted) VALUES ($1, $2, '') RETURNING id",
                name,
                kind,
            )
            for name, kind in (("Магазин", "telegram"), ("Склад", "max"))
        ]
        labels = [
            await conn.fetchval("INSERT INTO labels (name, colour) VALUES ($1, '#1d5cbf') RETURNING id", name)
            for name in ("VIP", "Опт", "Жалоба")
        ]
        first_id = await conn.fetchval("SELECT coalesce(max(id), 0) FROM contacts") + 1
        ids = range(first_id, first_id + conversations)
        await conn.copy_records_to_table(
            "contacts",
            columns=("id", "display_name", "phone"),
            records=((i, f"{rng.choice(NAMES)} {rng.choice(SURNAMES)} {i}", f"+7 9{i % 100:02d} {i:07d}") for i in ids),
        )
        await conn.copy_records_to_table(
            "contact_identities",
            columns=("id", "contact_id", "channel", "provider_user_id", "username"),
            records=((i, i, "telegram" if i % 3 else "max", f"u{i}", f"user{i}") for i in ids),
        )
        inbox_of = {i: inboxes[0] if i % 3 else inboxes[1] for i in ids}
        await conn.copy_records_to_table(
            "contact_chats",
            columns=("identity_id", "inbox_id", "provider_chat_id"),
            records=((i, inbox_of[i], f"c{i}") for i in ids),
        )
        # a year of history: most conversations are done; about 3,000 live ones, ~150 per operator
        statuses, weights = ("open", "pending", "resolved", "closed"), (2, 1, 27, 70)
        rows = []
        for i in ids:
            operator_id, branch_id = rng.choice(operators)
            (status,) = rng.choices(statuses, weights)
            assignee = None if rng.random() < 0.1 else operator_id
            activity = now - timedelta(seconds=rng.randrange(0, 90 * 86400))
            last_in = activity - timedelta(seconds=rng.randrange(0, 600))
            last_out = None if rng.random() < 0.3 else last_in + timedelta(seconds=rng.randrange(-300, 300))
            priority = rng.choice((0, 0, 0, 1, 2, 3, 4))
            rows.append(
                (i, inbox_of[i], i, i, branch_id, assignee, status, priority, activity, last_in, last_out, activity)
            )
        await conn.copy_records_to_table(
            "conversations",
            columns=(
                "id", "inbox_id", "contact_id", "identity_id", "branch_id", "assignee_id", "status", "priority",
                "last_activity_at", "last_in_at", "last_out_at", "created_at",
            ),
            records=rows,
        )  # fmt: skip
        await conn.execute("SELECT setval(pg_get_serial_sequence('contacts', 'id'), $1)", ids[-1])
        await conn.execute("SELECT setval(pg_get_serial_sequence('contact_identities', 'id'), $1)", ids[-1])
        await conn.execute("SELECT setval(pg_get_serial_sequence('conversations', 'id'), $1)", ids[-1])
        # the long thread: an open conversation of the first operator
        thread_id = ids[0]
        await conn.execute(
            "UPDATE conversations SET status = 'open', assignee_id = $1, branch_id = $2 WHERE id = $3",
            operators[1][0],
            operators[1][1],
            thread_id,
        )

        def message_rows():
            per, extra = divmod(max(0, messages - THREAD_MESSAGES), max(1, conversations - 1))
            for position, conversation_id in enumerate(ids):
                count = THREAD_MESSAGES if conversation_id == thread_id else per + (1 if position <= extra else 0)
                base = now - timedelta(days=30)
                for n in range(count):
                    inbound = n % 2 == 0
                    text = " ".join(rng.choices(WORDS, k=6)) + f" #{conversation_id}-{n}"
                    yield (
                        conversation_id, inbox_of[conversation_id], "in" if inbound else "out",
                        "contact" if inbound else "operator", text, "received" if inbound else "sent",
                        base + timedelta(seconds=n),
                    )  # fmt: skip

        await conn.copy_records_to_table(
            "messages",
            columns=(
                "conversation_id",
                "inbox_id",
                "direction",
                "sender_kind",
                "text",
                "delivery_status",
                "created_at",
            ),
            records=message_rows(),
        )
        await conn.copy_records_to_table(
            "conversation_labels",
            columns=("conversation_id", "label_id"),
            records=((i, rng.choice(labels)) for i in ids if i % 20 == 0),
        )
        await conn.execute("ANALYZE")
        counted = await conn.fetchval("SELECT count(*) FROM messages")
    finally:
        await conn.close()
    return {
        "seconds": time.perf_counter() - began,
        "messages": counted,
        "sessions": sessions,
        "operators": operators,
        "thread": thread_id,
        "thread_owner": operators[1][0],
        "label": labels[0],
        "inbox": inboxes[1],
    }


async def measure(
    api: str, tokens: list[str], paths: list[str], seconds: float, rate: float
) -> tuple[list[float], list[float]]:
    """The operators (one session each) working at once: together `rate` requests a second,
    started on schedule whether or not earlier ones have finished (open loop: a slow answer is
    not hidden by the next request waiting for it), for `seconds`; and meanwhile the floor:
    `/healthz` FLOOR_PROBES times a second. Both latency lists."""
    latencies: list[float] = []
    floor: list[float] = []
    errors = 0
    clients = [aiohttp.ClientSession(cookies={"sb_session": token}) for token in tokens]
    probe = aiohttp.ClientSession()

    async def probes() -> None:
        began = time.perf_counter()
        for i in range(int(seconds * FLOOR_PROBES)):
            delay = began + i / FLOOR_PROBES - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.perf_counter()
            async with probe.get(api + "/healthz") as answer:
                await answer.read()
            floor.append((time.perf_counter() - started) * 1000)

    async def one(i: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        async with clients[i % len(clients)].get(
            api + paths[i % len(paths)], headers={"accept": "text/html"}
        ) as answer:
            await answer.read()
            if answer.status != 200:
                errors += 1
        latencies.append((time.perf_counter() - started) * 1000)

    try:
        began = time.perf_counter()
        tasks = [asyncio.create_task(probes())]
        for i in range(int(seconds * rate)):
            delay = began + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(probe.close(), *(client.close() for client in clients))
    if errors:
        raise RuntimeError(f"{errors} requests did not answer 200")
    return latencies, floor


async def alone(api: str, token: str, path: str, n: int) -> float:
    """p50 of one client's requests one after another: what a page costs the server by itself."""
    times = []
    async with aiohttp.ClientSession(cookies={"sb_session": token}) as http:
        for _ in range(n):
            started = time.perf_counter()
            async with http.get(api + path, headers={"accept": "text/html"}) as answer:
                await answer.read()
            times.append((time.perf_counter() - started) * 1000)
    return percentile(times, 50)


async def deep_cursor(api: str, token: str, pages: int) -> str:
    """The path of the page `pages` deep in the supervisor's "All" tab, by following cursors."""
    path = "/?tab=all"
    async with aiohttp.ClientSession(cookies={"sb_session": token}) as http:
        for _ in range(pages):
            async with http.get(api + path, headers={"accept": "text/html"}) as response:
                html = await response.text()
            marker = html.find('class="rows-more"><a href="')
            if marker < 0:
                break
            start = marker + len('class="rows-more"><a href="')
            path = html[start : html.index('"', start)].replace("&amp;", "&")
    return path


async def explain_slowest(database_url: str, operator_id: int, path: str) -> str:
    """The page's own queries as the services run them for `operator_id` (the list with its tab
    counts and rows' extras, or the thread's history page), each run again under EXPLAIN
    (ANALYZE, BUFFERS); the plan of the slowest."""
    from urllib.parse import parse_qsl, urlsplit

    from sqlalchemy import event

    from infra.db import make_engine, make_sessionmaker
    from infra.models import Conversation, Operator
    from infra.settings import Settings
    from services.conversation_list import Cursor, list_conversations
    from services.inbox import row_extras, tab_counts, unread_conversations
    from services.messages import contact_history
    from services.visibility import staff
    from web.cabinet.inbox import PAGE_SIZE, ListQuery, is_supervisor

    engine = make_engine(Settings(database_url=database_url, db_pool_size=1))
    statements: list[tuple[str, tuple]] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, tuple(parameters or ())))

    event.listen(engine.sync_engine, "after_cursor_execute", record)
    try:
        async with make_sessionmaker(engine)() as db:
            operator = await db.get(Operator, operator_id)
            viewer = staff(operator)
            url = urlsplit(path)
            if url.path.startswith("/conversations/"):
                conversation = await db.get(Conversation, int(url.path.rsplit("/", 1)[1]))
                await contact_history(db, viewer, conversation)
                await row_extras(db, operator, [conversation.id])
            else:
                params = dict(parse_qsl(url.query))
                query = ListQuery.read(params, operator)
                after = Cursor.decode(params["cursor"], query.sort) if "cursor" in params else None
                wanted = query.conversation_filter(operator)
                rows, _ = await list_conversations(db, viewer, wanted, sort=query.sort, after=after, limit=PAGE_SIZE)
                await row_extras(db, operator, [row.id for row in rows])
                await tab_counts(db, operator, with_all=is_supervisor(operator))
            await unread_conversations(db, operator)
            raw = (await (await db.connection()).get_raw_connection()).driver_connection
            plans = []
            for statement, parameters in statements:
                lines = [r[0] for r in await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)]
                took = float(lines[-1].split(":")[1].split()[0])  # "Execution Time: 1.234 ms"
                plans.append((took, statement, lines))
            await db.rollback()
    finally:
        await engine.dispose()
    took, statement, lines = max(plans)
    shown = " ".join(statement.split())
    return f"{len(plans)} statements; the slowest, {took:.1f} ms: {shown[:300]}...\n" + "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 conversations, 1 s per scenario")
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="per scenario")
    parser.add_argument("--per-operator", type=float, default=1.0, help="pages a second each operator asks for")
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes of the api")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.messages, args.seconds = 2_000, 20_000, 1.0
    stack = BenchStack(api_workers=args.api_workers, temporal=False)
    stack.start()
    try:
        dsn = asyncpg_dsn(asyncpg_url(stack.env["DATABASE_URL"]))
        seeded = await seed(dsn, args.conversations, args.messages)
        counts = f"{args.conversations:,} conversations and {seeded['messages']:,} messages"
        print(f"seeded {counts} with COPY in {seeded['seconds']:.1f} s")
        stack.env.update(DB_POOL_SIZE="20")
        stack.start_api()
        api = stack.api_url
        sessions = seeded["sessions"]
        supervisor = sessions[seeded["operators"][0][0]]
        operators = [sessions[op] for op, _ in seeded["operators"]]
        deep = await deep_cursor(api, supervisor, 20)
        thread = f"/conversations/{seeded['thread']}"
        supervisor_id = seeded["operators"][0][0]
        owner = seeded["thread_owner"]
        everyone = [op for op, _ in seeded["operators"]]
        label = seeded["label"]
        scenarios = [  # name, paths, sessions, the operator whose queries EXPLAIN shows
            ("raw: GET /healthz", ["/healthz"], operators, None),
            ("inbox Mine", ["/"], operators, everyone[1]),
            ("inbox Unassigned", ["/?tab=unassigned"], operators, everyone[1]),
            ("inbox All (supervisor)", ["/?tab=all"], [supervisor] * OPERATORS, supervisor_id),
            ("filter status=resolved", ["/?status=resolved"], operators, everyone[1]),
            ("filter channel=max", ["/?tab=all&channel=max"], [supervisor] * OPERATORS, supervisor_id),
            ("filter unanswered", ["/?tab=all&unanswered=1"], [supervisor] * OPERATORS, supervisor_id),
            ("filter label", [f"/?tab=all&status=any&label={label}"], [supervisor] * OPERATORS, supervisor_id),
            ("deep cursor page (21st)", [deep], [supervisor] * OPERATORS, supervisor_id),
            ("search message text", ["/?tab=all&status=any&q=%231234-"], [supervisor] * OPERATORS, supervisor_id),
            ("search contact name", ["/?tab=all&status=any&q=Лебедева+77"], [supervisor] * OPERATORS, supervisor_id),
            ("search phone digits", ["/?tab=all&status=any&q=9012345"], [supervisor] * OPERATORS, supervisor_id),
            ("thread of 5,000 messages", [thread], [sessions[owner]] * OPERATORS, owner),
        ]  # fmt: skip
        load = os.getloadavg()
        rate = OPERATORS * args.per_operator
        print(
            f"{OPERATORS} operators at once, {args.per_operator:g} page/s each ({rate:g}/s, open loop), "
            f"{args.seconds:g} s per scenario; api: {args.api_workers} uvicorn process(es), {os.cpu_count()} cores; "
            f"load average {load[0]:.1f}"
        )
        print(
            f"  {'scenario':28} {'n':>6}  {'p50':>10}  {'p99':>10}  {'alone p50':>10}"
            f"  {'floor p50':>10}  {'floor p99':>10}"
        )
        slow = []
        for name, paths, tokens, explained in scenarios:
            latencies, floor = await measure(api, tokens, paths, args.seconds, rate)
            single = await alone(api, tokens[0], paths[0], 10)
            p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
            flag = "" if explained is None or p99 <= GOAL_MS else "  (over the goal)"
            print(
                f"  {name:28} {len(latencies):6}  {p50:7.1f} ms  {p99:7.1f} ms  {single:7.1f} ms"
                f"  {percentile(floor, 50):7.1f} ms  {percentile(floor, 99):7.1f} ms{flag}"
            )
            if flag:
                slow.append((name, explained, paths[0]))
        print(f"goal: p99 <= {GOAL_MS:g} ms each at {OPERATORS} concurrent operators on this machine")
        print("floor: /healthz five times a second while the scenario ran (what a busy server adds to any request)")
        for name, explained, path in slow:
            plan = await explain_slowest(stack.env["DATABASE_URL"], explained, path)
            print(f"EXPLAIN (ANALYZE, BUFFERS) for {name}: {plan}")
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
