"""The log at its default level (INFO) says what happened, not every HTTP request: httpx writes a
line per request at INFO, and a long-polling worker makes one every poll."""

from __future__ import annotations

import itertools
import logging
import time
from contextlib import suppress

import httpx
from temporalio.service import RPCError

from domain.ids import poller_workflow_id
from tests.conftest import TMP
from tests.fakes.telegram import FakeTelegram
from tests.integration.chaos_support import WorkerProcess
from tests.integration.conftest import TELEGRAM_CREDENTIALS, wait_until

_update_ids = itertools.count(900_000)


async def test_the_api_keeps_httpx_request_lines_out_of_an_info_log(
    world, live_api, fake_telegram: FakeTelegram, caplog
):
    caplog.set_level(logging.INFO)
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
    # a button press makes the api call the provider (answerCallbackQuery)
    pressed = fake_telegram.make_callback(4242, "yes") | {"update_id": next(_update_ids)}
    secret = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_CREDENTIALS["webhook_secret"]}
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{live_api.url}/webhooks/telegram/{world.inbox_id}", json=pressed, headers=secret)
    assert resp.status_code == 200
    await wait_until(lambda: fake_telegram.requests("answerCallbackQuery"), timeout=10)
    assert [r.getMessage() for r in caplog.records if r.name.startswith("httpx")] == []


async def test_a_polling_worker_against_a_server_that_answers_at_once_neither_spins_nor_floods_its_log(
    world, app_settings, temporal_client, task_queue, fake_telegram: FakeTelegram
):
    """`python worker.py` as deployed (LOG_LEVEL=INFO) long-polls the test's Telegram inbox."""
    fake_telegram.max_long_poll = 0  # every getUpdates answers [] at once
    since = time.monotonic()  # not a poll an earlier test's worker still had on the wire

    def polls() -> list[float]:
        return [r.at for r in fake_telegram.requests("getUpdates") if r.at >= since]

    settings = app_settings.model_copy(update={"temporal_task_queue": task_queue})
    worker = WorkerProcess(settings, TMP / f"logging-worker-{task_queue}.log")
    try:
        worker.start()
        await wait_until(lambda: len(polls()) >= 5, timeout=30)
    finally:
        worker.stop()
        with suppress(RPCError):
            await temporal_client.get_workflow_handle(poller_workflow_id(world.inbox_id)).terminate()
    gaps = [b - a for a, b in itertools.pairwise(polls())]
    assert min(gaps) >= 0.95, gaps
    assert "getUpdates" not in worker.output() and "HTTP Request" not in worker.output()
