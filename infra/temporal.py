"""The one place a Temporal client is built: always with the pydantic data converter."""

from __future__ import annotations

import asyncio

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.settings import Settings


async def connect_temporal(settings: Settings) -> Client:
    if not settings.temporal_address:
        raise RuntimeError("TEMPORAL_ADDRESS is not set (make run sets it for the dev server)")
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


class TemporalGateway:
    """A lazily connected client: the api must start, and take webhooks, while Temporal is down."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    self._client = await asyncio.wait_for(connect_temporal(self._settings), timeout=5)
        return self._client

    async def check(self) -> None:
        """Raises when the server does not answer a health check within 2 s."""
        client = await self.client()
        await asyncio.wait_for(client.service_client.check_health(), timeout=2)
