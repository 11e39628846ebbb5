"""Shared fixtures: a migrated database on every backend, and the real-node fixtures.

`database` runs each test on SQLite and, when the service is reachable, on PostgreSQL. On a
machine without PostgreSQL those runs skip with the reason, unless CHAINGATE_REQUIRE_SERVICES=1
(CI) turns the missing service into a failure.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.adapters.db.tables import metadata
from chaingate.adapters.db.uow import Database
from tests.support.services import postgres_admin_url, require_or_skip

pytest_plugins = [
    "tests.support.anvil",
    "tests.support.browser",
    "tests.support.litecoind",
    "tests.support.redis_keys",
    "tests.support.signer",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--nightly",
        action="store_true",
        help="also collect the long sweeps marked `nightly` (make nightly); deselected otherwise",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the `nightly` sweeps out of a normal run (deselected, not skipped: a normal run
    never meant to run them)."""
    if config.getoption("--nightly"):
        return
    nightly = [item for item in items if item.get_closest_marker("nightly") is not None]
    if nightly:
        config.hook.pytest_deselected(items=nightly)
        items[:] = [item for item in items if item.get_closest_marker("nightly") is None]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the crash run's kill report (per-phase counts) in every run, not only with -s."""
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        if report.when != "call":
            continue
        texts = [str(value) for name, value in report.user_properties if name == "crash_report"]
        if texts:
            terminalreporter.write_sep("-", f"kill report: {report.nodeid}")
            terminalreporter.write_line("\n".join(texts))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    import asyncio

    import asyncpg

    admin = postgres_admin_url()
    name = f"chaingate_test_{os.getpid()}"

    async def _create() -> None:
        conn = await asyncpg.connect(admin, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def _drop() -> None:
        conn = await asyncpg.connect(admin, timeout=3)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    try:
        asyncio.run(_create())
    except (OSError, asyncpg.PostgresError) as exc:
        require_or_skip(f"PostgreSQL is not reachable at {admin}: {exc}")
    base = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(_drop())


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'chaingate.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def clean_database_url(database_url: str) -> str:
    """The URL of a migrated database with every table empty."""
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    if engine.dialect.name == "postgresql":
        async with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    await engine.dispose()
    return database_url


@pytest.fixture
async def database(clean_database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database (real migrations, real engine)."""
    db = Database(create_engine(clean_database_url))
    yield db
    await db.dispose()
