"""Temporal stops during inbound traffic: every message is stored and visible at once, no
webhook-side call fails, and the workflows catch up when Temporal is back."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import pytest
from sqlalchemy import func, select

from api import create_app
from infra.models import Conversation, OutboxEvent
from services.ingest import ingest
from services.outbox import OutboxRelay, listen_for_wakeups
from setup.devstack import TemporalDevServer, free_port
from tests.conftest import TMP, LiveServer
from tests.integration.conftest import wait_until
from worker import build_activities, build_worker, connect_with_retry


async def _count(factory, *where) -> int:
    async with factory() as db:
        return await db.scalar(select(func.count()).select_from(Conversation).where(*where))


@pytest.mark.slow
async def test_inbound_survives_a_temporal_outage(world, app_settings, admin, task_queue):
    await world.operator()
    db_file = TMP / f"outage-{task_queue}.db"
    server = TemporalDevServer(db_file, port=free_port(), ui_port=None)
    await asyncio.to_thread(server.start)
    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue, "temporal_address": server.address})
    # the port opens before the frontend is healthy: connect as worker.py does, retrying
    client = await asyncio.wait_for(connect_with_retry(settings), timeout=60)
    stop = asyncio.Event()
    relay = OutboxRelay(world.factory, client, task_queue, idle_poll=0.2)
    tasks = [
        asyncio.create_task(relay.run_forever(stop)),
        asyncio.create_task(listen_for_wakeups(settings.database_url, relay, stop)),
    ]
    cabinet = LiveServer(create_app(settings)).start()
    try:
        async with httpx.AsyncClient() as http:
            worker = build_worker(client, settings, build_activities(world.factory, settings, http))
            async with worker:
                await ingest(world.factory, world.event("before"))
                await wait_until(lambda: _count(world.factory, Conversation.assignee_id.is_not(None)), timeout=30)

                await asyncio.to_thread(server.stop)
                timings = []
                for i in range(10):
                    began = time.monotonic()
                    result = await ingest(world.factory, world.event(f"during-{i}", f"message {i}"))
                    timings.append(time.monotonic() - began)
                    assert result.message_id is not None
                assert max(timings) < 1.0, timings  # the inbound path never waits for Temporal

                # every message is in the cabinet at once
                async with httpx.AsyncClient(base_url=cabinet.url, headers={"accept": "text/html"}) as web:
                    token = re.search(r'name="csrf_token" value="([^"]+)"', (await web.get("/login")).text)[1]
                    await web.post("/login", data={**admin, "csrf_token": token})
                    page = (await web.get("/?tab=all")).text
                assert all(f"Customer during-{i}" in page for i in range(10))
                assert (await httpx.AsyncClient().get(f"{cabinet.url}/readyz")).status_code == 503

                await asyncio.sleep(2)  # the relay keeps failing meanwhile, keeping every row
                async with world.factory() as db:
                    pending = await db.scalar(select(func.count()).select_from(OutboxEvent))
                assert pending == 10

                await asyncio.to_thread(server.start)
                back = time.monotonic()
                await wait_until(lambda: _all_assigned(world.factory, 11), timeout=90, interval=0.5)
                print(f"\n[temporal outage] caught up {time.monotonic() - back:.1f} s after the restart")
                async with world.factory() as db:
                    assert await db.scalar(select(func.count()).select_from(OutboxEvent)) == 0
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        cabinet.stop()
        await asyncio.to_thread(server.stop)
        for suffix in ("", "-wal", "-shm"):
            (TMP / f"outage-{task_queue}.db{suffix}").unlink(missing_ok=True)


async def _all_assigned(factory, n: int) -> bool:
    return await _count(factory, Conversation.assignee_id.is_not(None)) == n
