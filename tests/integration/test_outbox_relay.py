"""The outbox relay's behaviour when Temporal cannot be reached (the dev-server outage test shows
the end-to-end catch-up; this pins how rows are kept meanwhile)."""

import asyncio

from sqlalchemy import func, select, update
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RetryConfig

from infra.models import OutboxEvent
from services.ingest import ingest
from services.outbox import OutboxRelay
from setup.devstack import TemporalDevServer, free_port
from tests.conftest import TMP


async def test_rows_stay_due_while_temporal_is_unreachable_so_catching_up_starts_at_once(world):
    for user in ("relay-1", "relay-2", "relay-3"):
        await ingest(world.factory, world.event(user))  # three conversations: three STARTED rows
    db_file = TMP / f"relay-{free_port()}.db"
    server = TemporalDevServer(db_file, port=free_port(), ui_port=None)
    await asyncio.to_thread(server.start)
    try:
        # no client-side retries: a pass fails as soon as the gone server does not answer
        client = await Client.connect(
            server.address, data_converter=pydantic_data_converter, retry_config=RetryConfig(max_retries=0)
        )
    finally:
        await asyncio.to_thread(server.stop)
        for suffix in ("", "-wal", "-shm"):
            db_file.with_name(db_file.name + suffix).unlink(missing_ok=True)
    relay = OutboxRelay(world.factory, client, "nowhere")
    async with world.factory() as db, db.begin():
        # as after a long outage: per-row backoff would now put each row a minute out
        await db.execute(update(OutboxEvent).values(attempts=6))

    assert await relay.drain_once() == 3
    assert relay.temporal_unreachable
    # straight after the failed pass every row is due again, its attempt and error recorded
    async with world.factory() as db:
        rows = (
            await db.execute(
                select(OutboxEvent.attempts, OutboxEvent.last_error, OutboxEvent.available_at <= func.now())
            )
        ).all()
    assert len(rows) == 3
    assert all(attempts == 7 and error and due for attempts, error, due in rows), rows
