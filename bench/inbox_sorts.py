"""The inbox's sorts on bench.cabinet's seeded table: for each sort, the plan and time of its
first page and of a deep (21st) cursor page, as the service builds the query, for a supervisor's
All (open and pending; any status) and an operator's Mine; and the tab counts.

    .venv/bin/python -m bench.inbox_sorts            # 100,000 conversations, 1,000,000 messages
    .venv/bin/python -m bench.inbox_sorts --quick    # 2,000 conversations: a smoke run

Each plan must use the sort's index (services.conversation_list: no sort over the whole table);
times are EXPLAIN ANALYZE's execution time beside a primary-key lookup in the same run (the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import os

import asyncpg
from sqlalchemy import Select, and_, func, literal_column, select
from sqlalchemy.dialects import postgresql

from bench.cabinet import seed
from bench.stack import BenchStack
from domain.enums import ConversationStatus, OperatorRole
from domain.visibility import Staff
from infra.db import asyncpg_dsn, asyncpg_url
from infra.models import Conversation
from services.conversation_list import ConversationFilter, Cursor, Sort, list_query
from services.visibility import visible_to

PAGE = 50
DEEP = 20  # pages skipped for the deep page
LIVE = [ConversationStatus.OPEN, ConversationStatus.PENDING]


def _sql(query: Select) -> str:
    compiled = query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled).replace("%%", "%")


async def _plan(conn: asyncpg.Connection, query: Select) -> list[str]:
    return [row[0] for row in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {_sql(query)}")]


async def _deep_cursor(conn: asyncpg.Connection, viewer, wanted, sort: Sort) -> Cursor | None:
    """The cursor a client holds after DEEP pages (found by walking them, as a client would)."""
    after = None
    for _ in range(DEEP):
        rows = await conn.fetch(_sql(list_query(viewer, wanted, sort=sort, after=after).limit(PAGE)))
        if len(rows) < PAGE:
            return None
        after = Cursor(sort, tuple(v for k, v in rows[-1].items() if k.startswith("sort_key_")))
    return after


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 conversations")
    args = parser.parse_args()
    conversations, messages = (2_000, 20_000) if args.quick else (100_000, 1_000_000)
    stack = BenchStack(temporal=False)
    stack.start()
    try:
        dsn = asyncpg_dsn(asyncpg_url(stack.env["DATABASE_URL"]))
        seeded = await seed(dsn, conversations, messages)
        print(
            f"seeded {conversations:,} conversations and {seeded['messages']:,} messages in {seeded['seconds']:.1f} s"
        )
        conn = await asyncpg.connect(**dsn)
        try:
            await conn.execute("ANALYZE")
            floor = await _plan(conn, select(Conversation.id).where(Conversation.id == 1))
            print(f"floor (primary-key lookup): {floor[-1].strip()}")
            (supervisor, _), (operator, branch) = seeded["operators"][0], seeded["operators"][1]
            cases = [
                ("All, open and pending", Staff(supervisor, OperatorRole.SUPERVISOR), ConversationFilter(status=LIVE)),
                ("All, any status", Staff(supervisor, OperatorRole.SUPERVISOR), ConversationFilter()),
                (
                    "Mine, open and pending",
                    Staff(operator, OperatorRole.OPERATOR, branch),
                    ConversationFilter(status=LIVE, snoozed=False, assignee_id=operator),
                ),
            ]
            for sort in Sort:
                for name, viewer, wanted in cases:
                    for deep in (False, True):
                        after = await _deep_cursor(conn, viewer, wanted, sort) if deep else None
                        if deep and after is None:
                            continue  # fewer pages than that
                        plan = await _plan(conn, list_query(viewer, wanted, sort=sort, after=after).limit(PAGE + 1))
                        page = f"page {DEEP + 1}" if deep else "first page"
                        print(f"\n=== sort={sort.value} | {name} | {page} | {plan[-1].strip()}")
                        print("\n".join(plan))
            viewer = Staff(operator, OperatorRole.OPERATOR, branch)
            live = and_(Conversation.status.in_(LIVE), Conversation.snoozed_at.is_(None), visible_to(viewer))
            pool = and_(Conversation.assignee_id.is_(None), Conversation.branch_id == branch)
            counts = select(
                func.count().filter(Conversation.assignee_id == operator),
                func.count().filter(pool),
                literal_column("1"),
            ).where(live)
            plan = await _plan(conn, counts)
            print(f"\n=== tab counts (services.inbox.tab_counts, an operator) | {plan[-1].strip()}")
            print("\n".join(plan))
        finally:
            await conn.close()
    finally:
        stack.stop()


if __name__ == "__main__":
    asyncio.run(main())
    os._exit(0)  # the SDK can abort at interpreter shutdown (STACK-NOTES)
