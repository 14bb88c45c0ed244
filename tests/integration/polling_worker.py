"""A worker process for the kill -9 test: polls like production, but hangs right before saving
a cursor at or past DIE_FROM and says STUCK, so the test can kill it at the worst moment.

    CREDENTIALS_KEY=... DATABASE_URL=... TEMPORAL_ADDRESS=... TASK_QUEUE=... TELEGRAM_API_BASE=... DIE_FROM=...
    python -m tests.integration.polling_worker

It imports nothing from the test suite's fixtures (the fakes pull in aiogram: seconds).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from typing import Any

import httpx
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from activities.channels import ChannelActivities
from channels.registry import build_adapters
from infra.db import make_engine, make_sessionmaker
from infra.security import CredentialBox
from infra.settings import Settings
from worker import WORKFLOWS


class HangsBeforeCursorSave(ChannelActivities):
    die_from = 0

    async def _save_cursor(self, inbox_id: int, old: str | None, new: Any) -> None:
        if new is not None and int(new) >= self.die_from:
            print("STUCK", flush=True)
            await asyncio.Event().wait()
        await super()._save_cursor(inbox_id, old, new)


async def main() -> None:
    key = os.environ["CREDENTIALS_KEY"]
    settings = Settings(
        database_url=os.environ["DATABASE_URL"],
        telegram_api_base=os.environ["TELEGRAM_API_BASE"],
        credentials_key=key,
        _env_file=None,
    )
    client = await Client.connect(os.environ["TEMPORAL_ADDRESS"], data_converter=pydantic_data_converter)
    engine = make_engine(settings)
    async with httpx.AsyncClient(timeout=10) as http:
        acts = HangsBeforeCursorSave(
            make_sessionmaker(engine), build_adapters(http, settings), CredentialBox(key), settings
        )
        acts.die_from = int(os.environ["DIE_FROM"])
        async with Worker(
            client,
            task_queue=os.environ["TASK_QUEUE"],
            workflows=WORKFLOWS,
            activities=acts.all(),
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        ):
            print("READY", flush=True)
            await asyncio.Event().wait()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
