"""The migrations build exactly the schema tables.py describes, and can be walked back.

Runs the real Alembic scripts on SQLite and PostgreSQL (a database of its own, so the downgrade
never disturbs other tests), then compares the live schema to the metadata with Alembic's own
autogenerate comparison: any column, nullability, index or constraint that differs is a diff.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.migrate import alembic_config
from chaingate.adapters.db.tables import metadata
from tests.support.services import postgres_admin_url, require_or_skip


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    admin = postgres_admin_url()
    name = f"chaingate_migrations_{os.getpid()}"

    async def _run(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(_run(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_run(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        require_or_skip(f"PostgreSQL is not reachable at {admin}: {exc}")
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"
    url: str = request.getfixturevalue("own_postgres_url")
    return url


async def _on(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def _migrate(target: str, *, down: bool = False) -> Any:
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        if down:
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)

    return run


def _schema_diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    diff: list[Any] = compare_metadata(context, metadata)
    return diff


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


async def test_head_schema_matches_the_tables_module(fresh_url: str) -> None:
    await _on(fresh_url, _migrate("head"))

    assert await _on(fresh_url, _schema_diff) == []


async def test_payments_allow_mempool_sightings_after_upgrade(fresh_url: str) -> None:
    await _on(fresh_url, _migrate("head"))

    def columns(connection: Connection) -> dict[str, Any]:
        return {c["name"]: dict(c) for c in inspect(connection).get_columns("payments")}

    found = await _on(fresh_url, columns)
    assert found["block_number"]["nullable"] is True
    assert found["block_hash"]["nullable"] is True
    assert found["coinbase"]["nullable"] is False


async def test_downgrade_to_base_and_back_round_trips(fresh_url: str) -> None:
    await _on(fresh_url, _migrate("head"))
    await _on(fresh_url, _migrate("0001", down=True))

    def payment_columns(connection: Connection) -> set[str]:
        return {c["name"] for c in inspect(connection).get_columns("payments")}

    assert "coinbase" not in await _on(fresh_url, payment_columns)
    await _on(fresh_url, _migrate("base", down=True))
    assert await _on(fresh_url, _tables) == set()

    await _on(fresh_url, _migrate("head"))
    assert await _on(fresh_url, _schema_diff) == []
    assert await _on(fresh_url, _tables) == {t.name for t in metadata.sorted_tables}
