"""The hub against the real database: a lost LISTEN connection, a replay from the table when
memory no longer has the events, resync when the log no longer has them either, pruning."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from domain.enums import OperatorRole
from domain.visibility import Staff
from infra import event_log
from infra.db import asyncpg_dsn
from infra.realtime import Hub, Subscriber
from tests.integration.realtime_support import commit, parse_frames, status_event

NAME = "realtime-hub-test"
SUPERVISOR = Staff(1, OperatorRole.SUPERVISOR)


@pytest.fixture
async def hub(engine, database_url, clean_db):
    dsn = asyncpg_dsn(database_url) | {"server_settings": {"application_name": NAME}}
    hub = Hub(engine, dsn, recent=3)
    await hub.start()
    await asyncio.wait_for(hub.connected.wait(), 10)
    yield hub
    await hub.stop()


async def _frames(sub: Subscriber, count: int, timeout: float = 10) -> list:
    got, buffer = [], ""
    while len(got) < count:
        body = await asyncio.wait_for(sub.next_frames(), timeout)
        assert body is not None, "the stream ended"
        frames, buffer = parse_frames(buffer + body.decode())
        got += frames
    return got


async def test_after_the_listen_connection_drops_nothing_is_lost_or_repeated(hub, clean_db, engine):
    sub = hub.subscribe(SUPERVISOR)
    await commit(clean_db, status_event(1, None, None, message_id=1))
    assert [f.data["message_id"] for f in await _frames(sub, 1)] == [1]

    async with engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = :n"), {"n": NAME}
        )
    deadline = asyncio.get_running_loop().time() + 15
    while hub.connected.is_set():
        assert asyncio.get_running_loop().time() < deadline, "the hub did not notice"
        await asyncio.sleep(0.01)
    for n in range(2, 6):  # committed while nobody listens (the hub waits before reconnecting)
        await commit(clean_db, status_event(1, None, None, message_id=n))
    await asyncio.wait_for(hub.connected.wait(), 10)
    await commit(clean_db, status_event(1, None, None, message_id=6))
    got = await _frames(sub, 5)
    assert [f.data["message_id"] for f in got] == [2, 3, 4, 5, 6]
    assert [f.id for f in got] == sorted({f.id for f in got})


async def test_a_reconnect_older_than_memory_is_replayed_from_the_table(hub, clean_db):
    sub = hub.subscribe(SUPERVISOR)
    for n in range(1, 11):
        await commit(clean_db, status_event(1, None, None, message_id=n))
    got = await _frames(sub, 10)
    hub.unsubscribe(sub)
    resumed = hub.subscribe(SUPERVISOR, last_event_id=got[1].id)  # memory keeps only 3
    assert resumed.replaying
    await commit(clean_db, status_event(1, None, None, message_id=11))  # live, during the replay
    await hub.replay(resumed)
    again = await _frames(resumed, 9)
    assert [f.data["message_id"] for f in again] == list(range(3, 12))


async def test_a_reconnect_older_than_the_log_or_from_nowhere_is_told_to_resync(hub, clean_db, engine):
    sub = hub.subscribe(SUPERVISOR)
    for n in range(1, 6):
        await commit(clean_db, status_event(1, None, None, message_id=n))
    got = await _frames(sub, 5)
    async with engine.begin() as conn:
        assert await event_log.prune(conn, datetime.now(UTC) + timedelta(hours=1)) == 4  # the newest stays

    old = hub.subscribe(SUPERVISOR, last_event_id=got[0].id)
    await hub.replay(old)
    resync = (await _frames(old, 1))[0]
    assert (resync.event, resync.data, resync.id) == ("resync", {"reason": "gap_too_old"}, got[-1].id)

    unknown = hub.subscribe(SUPERVISOR, last_event_id=got[-1].id + 10_000)
    await hub.replay(unknown)
    assert (await _frames(unknown, 1))[0].data == {"reason": "unknown_id"}

    current = hub.subscribe(SUPERVISOR, last_event_id=got[-1].id)  # up to date: nothing to say
    await commit(clean_db, status_event(1, None, None, message_id=6))
    assert [f.data.get("message_id") for f in await _frames(current, 1)] == [6]


async def test_sql_written_rows_carry_the_same_json_as_publish(clean_db, engine):
    event = status_event(7, 3, None, message_id=9)
    sql = event_log.events_insert_sql(
        event_log.event_select(
            type(event),
            "FROM (SELECT 7 AS c, 3 AS b) AS src",
            columns={
                "conversation_id": "src.c",
                "branch_id": "src.b",
                "assignee_id": "NULL::bigint",
                "inbox_id": "1",
                "message_id": "9",
            },
            constants={"status": event.status},
        )
    )
    async with engine.begin() as conn:
        await conn.exec_driver_sql(sql)
    await commit(clean_db, event)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT type, payload FROM realtime_events ORDER BY id DESC LIMIT 2"))).all()
    assert rows[0] == rows[1] == (event.NAME, json.loads(json.dumps(event.payload())))


async def test_housekeeping_prunes_events_past_their_retention_and_keeps_the_newest(clean_db, engine, settings):
    from activities.housekeeping import HousekeepingActivities

    await commit(clean_db, *[status_event(1, None, None, message_id=n) for n in range(4)])
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE realtime_events SET created_at = now() - interval '7 hours'"))
    await commit(clean_db, status_event(1, None, None, message_id=4))  # recent
    purged = await HousekeepingActivities(clean_db, settings).purge_expired()
    async with engine.connect() as conn:
        left = (await conn.execute(text("SELECT payload->>'message_id' FROM realtime_events ORDER BY id"))).scalars()
        assert list(left) == ["4"]
    assert purged["realtime_events"] == 4

    await commit(clean_db, status_event(1, None, None, message_id=5))
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE realtime_events SET created_at = now() - interval '7 hours'"))
    await HousekeepingActivities(clean_db, settings).purge_expired()
    async with engine.connect() as conn:  # all of it is old: the newest still stays
        left = (await conn.execute(text("SELECT payload->>'message_id' FROM realtime_events"))).scalars()
        assert list(left) == ["5"]
