"""Fixtures every layer reuses: one embedded PostgreSQL per session with migrations applied,
per-test isolation, and Temporal through the pip-shipped binaries (nothing is downloaded).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from infra.models import Base
from infra.settings import ROOT, Settings
from setup.devstack import EmbeddedPostgres, TemporalDevServer, free_port, venv_binary
from tests.fakes.fixtures import fake_max, fake_max_server, fake_telegram, fake_telegram_server  # noqa: F401

TMP = ROOT / ".pytest-tmp"
TEST_CREDENTIALS_KEY = "3q2-7wO7Df1kGbK1r0dOf-0lM7rmMyOgo9cI5QxyGvs="


def run_migrations(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, "head")


@pytest.fixture(scope="session")
def postgres() -> Iterator[EmbeddedPostgres]:
    TMP.mkdir(exist_ok=True)
    folder = TMP / f"pg-{os.getpid()}"
    server = EmbeddedPostgres(folder, delete_on_stop=True)
    server.start("postgres")
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def database_url(postgres: EmbeddedPostgres) -> str:
    url = postgres.create_database("switchboard_test")
    run_migrations(url)
    return url


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        temporal_address=None,
        credentials_key=TEST_CREDENTIALS_KEY,
        admin_password="admin-password",
        data_dir=TMP / "data",
        _env_file=None,
    )


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(database_url, pool_size=20, max_overflow=20)
    yield eng
    await eng.dispose()


@pytest.fixture(scope="session")
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back: commits in the test become savepoints."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(bind=conn, expire_on_commit=False, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            await session.close()
            await outer.rollback()


@pytest.fixture
async def clean_db(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """For tests whose writes must be visible to other connections (api, worker): truncate after.

    Identities are not restarted: workflow ids (`conversation-{id}`) stay unique per session.
    """
    yield async_sessionmaker(engine, expire_on_commit=False)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    for attempt in range(3):
        try:
            async with engine.begin() as conn:
                await conn.execute(text(f"TRUNCATE {tables} CASCADE"))
            return
        except DBAPIError as error:
            # a browser page closing at the test's end may still have a request running (its
            # presence beacon); PostgreSQL breaks the deadlock by failing one side: try again
            if "deadlock detected" not in str(error) or attempt == 2:
                raise


@pytest.fixture(scope="module")
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """One per module: a workflow another module left running (its worker gone) holds the test
    server's time skipping once one of its timers fires, and every later `sleep` would wait in
    real time (seen as a test hanging until its timeout, then the next)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(venv_binary("temporal-test-server")),
        data_converter=pydantic_data_converter,
    )
    await register_search_attributes(env.client)
    yield env
    await env.shutdown()


async def register_search_attributes(client: Client) -> None:
    """The dev server gets them on its command line; the time-skipping server through the API."""
    from temporalio.api.enums.v1 import IndexedValueType
    from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest

    from domain import search_attributes

    kinds = {"Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT}
    await client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=client.namespace,
            search_attributes={name: kinds[kind] for name, kind in search_attributes.ALL.items()},
        )
    )


@pytest.fixture(scope="session")
async def temporal_dev() -> AsyncIterator[TemporalDevServer]:
    """The same dev server `make run` starts (tuned, our search attributes), headless."""
    TMP.mkdir(exist_ok=True)
    db_file = TMP / f"temporal-{os.getpid()}.db"
    server = TemporalDevServer(db_file, port=free_port(), ui_port=None, log_file=TMP / "temporal.log")
    await asyncio.to_thread(server.start)
    yield server
    await asyncio.to_thread(server.stop)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file}{suffix}").unlink(missing_ok=True)


@pytest.fixture(scope="session")
async def temporal_client(temporal_dev: TemporalDevServer) -> Client:
    for _ in range(50):
        try:
            return await Client.connect(temporal_dev.address, data_converter=pydantic_data_converter)
        except RuntimeError:
            await asyncio.sleep(0.2)
    raise RuntimeError("the Temporal dev server did not accept a client")


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4()}"


class LiveServer:
    """uvicorn serving an app on a loopback port in a thread of the test process."""

    def __init__(self, app) -> None:
        import threading

        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
            )
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> LiveServer:
        import time

        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


@pytest.fixture(scope="session")
def app_settings(
    settings: Settings, temporal_dev: TemporalDevServer, fake_telegram_server, fake_max_server
) -> Settings:
    """The app as deployed, but talking to the session's dev server and fake providers."""
    return settings.model_copy(
        update={
            "temporal_address": temporal_dev.address,
            "telegram_api_base": fake_telegram_server.base_url,
            "max_api_base": fake_max_server.base_url,
        }
    )


@pytest.fixture(scope="session")
def live_api(app_settings: Settings) -> Iterator[LiveServer]:
    from api import create_app

    server = LiveServer(create_app(app_settings)).start()
    yield server
    server.stop()


@pytest.fixture
async def admin(clean_db, app_settings: Settings) -> dict[str, str]:
    """The seeded default branch, widget inbox and admin (password from settings)."""
    from setup.seed import seed

    await seed(clean_db, app_settings)
    return {"email": app_settings.admin_email, "password": app_settings.admin_password.get_secret_value()}
