"""What a thread's first page costs the database does not grow with the thread: the page of a
conversation of 5,000 messages runs the same statements as one of 50 and reads about as many
rows (each statement of the request run again under EXPLAIN ANALYZE, rows read by every scan
summed). Timings are the benchmark's business (bench/cabinet.py); rows read are what scale."""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import event, text

from tests.integration.workspace_support import make_team

SHORT, LONG = 50, 5_000
FILLER = 100


@pytest.fixture
async def team(admin, clean_db, live_api):
    return await make_team(clean_db, live_api)


async def _add_messages(team, conversations: list[int], messages: int) -> None:
    """Each conversation filled up to `messages` messages, the customer's and ours by turns."""
    async with team.factory() as db, db.begin():
        await db.execute(
            text(
                "INSERT INTO messages (conversation_id, inbox_id, direction, sender_kind, text, delivery_status)"
                " SELECT c.id, c.inbox_id,"
                "  (CASE WHEN n % 2 = 0 THEN 'in' ELSE 'out' END)::message_direction,"
                "  (CASE WHEN n % 2 = 0 THEN 'contact' ELSE 'system' END)::sender_kind,"
                "  'сообщение ' || n,"
                "  (CASE WHEN n % 2 = 0 THEN 'received' ELSE 'sent' END)::delivery_status"
                " FROM conversations AS c, generate_series(2, :messages) AS n WHERE c.id = ANY(:conversations)"
                " ORDER BY c.id, n"
            ),
            {"conversations": conversations, "messages": messages},
        )


class Statements:
    """The SQL the live api runs while a block is open (its engine, in this process)."""

    def __init__(self, engine) -> None:
        self.engine = engine.sync_engine
        self.seen: list[tuple[str, tuple]] = []

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.seen.append((statement, tuple(parameters or ())))

    def __enter__(self) -> Statements:
        event.listen(self.engine, "after_cursor_execute", self._record)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "after_cursor_execute", self._record)


def _rows_scanned(plan: dict) -> float:
    """Rows every scan of the plan read: those it returned and those its filters dropped."""
    own = 0.0
    if "Scan" in plan["Node Type"]:
        dropped = plan.get("Rows Removed by Filter", 0) + plan.get("Rows Removed by Index Recheck", 0)
        own = (plan["Actual Rows"] + dropped) * plan["Actual Loops"]
    return own + sum(_rows_scanned(child) for child in plan.get("Plans", []))


async def _rows_read(factory, statements: list[tuple[str, tuple]]) -> float:
    """Each SELECT run again under EXPLAIN ANALYZE (in a transaction rolled back): rows read."""
    total = 0.0
    async with factory() as db:
        raw = (await (await db.connection()).get_raw_connection()).driver_connection
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            # SQLAlchemy's asyncpg dialect decodes json on its connections
            (plan,) = await raw.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", *parameters)
            total += _rows_scanned(plan["Plan"])
        await db.rollback()
    return total


async def test_a_long_threads_first_page_reads_what_a_short_ones_does(team, clean_db, live_api):
    # other branches' conversations of ten messages first, so the planner's statistics look like
    # a real table's (many short conversations), not two conversations splitting every message
    others = [await team.customer_writes(f"Клиент {n}", branch_id=team.other_branch_id) for n in range(FILLER)]
    await _add_messages(team, others, 10)
    long = await team.customer_writes("Пётр Кузнецов", "первое", assignee=team.ann)
    await _add_messages(team, [long], LONG)
    short = await team.customer_writes("Ирина Смирнова", "первое", assignee=team.ann)
    await _add_messages(team, [short], SHORT)
    async with clean_db() as db, db.begin():
        await db.execute(text("ANALYZE messages"))
    ann = await team.client("ann")
    for conversation in (short, long):  # opening reads it: both pages now draw read rows alike
        assert (await ann.get(f"/conversations/{conversation}")).status_code == 200
    engine = live_api._server.config.app.state.engine
    measured = {}
    for conversation in (short, long):
        with Statements(engine) as statements:
            page = await ann.get(f"/conversations/{conversation}")
        assert page.status_code == 200
        shown = re.findall(r'<li id="message-(\d+)"', page.text)
        assert len(shown) == SHORT  # both first pages show a page of 50
        measured[conversation] = (len(statements.seen), await _rows_read(clean_db, statements.seen))
    (short_statements, short_rows), (long_statements, long_rows) = measured[short], measured[long]
    assert long_statements == short_statements, measured
    # the same page from a thread 100 times longer: at most a page more (a backward scan by id
    # that passes the short thread's newest messages first), never the thread's length
    assert long_rows <= short_rows + SHORT + 10, measured


async def test_viewing_a_conversation_already_read_writes_and_locks_nothing(team, clean_db):
    conversation = await team.customer_writes("Ирина Смирнова", assignee=team.ann)
    ann = await team.client("ann")
    assert (await ann.get(f"/conversations/{conversation}")).status_code == 200  # reads it
    async with clean_db() as db, db.begin():
        # another view holds the read mark's row (an upsert locks it even when it changes nothing)
        await db.execute(
            text("SELECT 1 FROM read_states WHERE operator_id = :ann AND conversation_id = :c FOR UPDATE"),
            {"ann": team.ann, "c": conversation},
        )
        again = await asyncio.wait_for(ann.get(f"/conversations/{conversation}"), 10)
    assert again.status_code == 200
    await team.customer_writes("Ирина Смирнова", "ещё вопрос", assignee=team.ann)
    async with clean_db() as db:
        before = await db.scalar(
            text("SELECT last_read_message_id FROM read_states WHERE operator_id = :ann AND conversation_id = :c"),
            {"ann": team.ann, "c": conversation},
        )
    assert (await ann.get(f"/conversations/{conversation}")).status_code == 200  # a new message: read now
    async with clean_db() as db:
        after = await db.scalar(
            text("SELECT last_read_message_id FROM read_states WHERE operator_id = :ann AND conversation_id = :c"),
            {"ann": team.ann, "c": conversation},
        )
    assert after > before
