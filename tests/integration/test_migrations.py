"""Migrations apply to an empty database, round-trip, and match the models exactly."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from infra.models import Base
from tests.conftest import run_migrations


def _downgrade(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    from infra.settings import ROOT

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.downgrade(cfg, "base")


async def _diff(url: str) -> list:
    engine = create_async_engine(url)

    def compare(conn):
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        return compare_metadata(ctx, Base.metadata)

    async with engine.connect() as conn:
        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        names = {r[0] for r in rows}
    await engine.dispose()
    return names


async def test_empty_database_upgrades_downgrades_and_matches_models(postgres):
    url = postgres.create_database("migration_check")
    await asyncio.to_thread(run_migrations, url)
    assert set(Base.metadata.tables) <= await _tables(url)
    assert await _diff(url) == []

    await asyncio.to_thread(_downgrade, url)
    assert await _tables(url) == {"alembic_version"}
    await asyncio.to_thread(run_migrations, url)  # enums were dropped too, or this fails
    assert await _diff(url) == []


async def test_a_model_change_without_migration_is_detected(database_url):
    from sqlalchemy import Column, Integer, MetaData, Table

    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    Table("not_migrated", drifted, Column("id", Integer, primary_key=True))
    engine = create_async_engine(database_url)

    def compare(conn):
        return compare_metadata(MigrationContext.configure(conn), drifted)

    async with engine.connect() as conn:
        diff = await conn.run_sync(compare)
    await engine.dispose()
    assert any(op[0] == "add_table" and op[1].name == "not_migrated" for op in diff)


async def test_app_engine_connects_before_and_after_migrations(postgres):
    """The app's engine primes the enum types on connect; an unmigrated database must not make
    that fail (the api answers /readyz, the launcher migrates), and a migrated one has them."""
    from infra.db import _ENUMS, make_engine
    from infra.settings import Settings

    url = postgres.create_database("prime_check")
    engine = make_engine(Settings(database_url=url, _env_file=None))
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar() == 1
    await engine.dispose()

    await asyncio.to_thread(run_migrations, url)
    engine = make_engine(Settings(database_url=url, _env_file=None))
    async with engine.connect() as conn:
        enums = set((await conn.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'"))).scalars())
    await engine.dispose()
    assert set(_ENUMS) == enums, "every enum of the schema is primed, and only those"
