"""The pull feed (`GET /v1/events`) never lets a reader's cursor pass an event that commits late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from chaingate.adapters.db.engine import create_engine
from chaingate.adapters.db.migrate import upgrade_to_head
from chaingate.adapters.db.tables import metadata
from chaingate.adapters.db.uow import Database
from chaingate.domain.events import EventType
from chaingate.domain.models import Event, Merchant
from chaingate.services.events import emit


async def _merchant(database: Database) -> str:
    async with database.uow() as uow:
        await uow.merchants.add(Merchant(id="mer_feed", name="Feed", created_at=datetime.now(UTC)))
        await uow.commit()
    return "mer_feed"


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[Database]:
    """PostgreSQL only: SQLite serializes writers (BEGIN IMMEDIATE), so there commit order is
    seq order by construction and the race below cannot even be staged."""
    engine = create_engine(postgres_url)
    await upgrade_to_head(engine)
    async with engine.begin() as conn:
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        await conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    db = Database(engine)
    yield db
    await db.dispose()


async def test_an_event_committed_late_is_not_skipped(postgres_database: Database) -> None:
    database = postgres_database
    merchant_id = await _merchant(database)
    now = datetime.now(UTC)

    async def write(n: int, locked: asyncio.Event | None = None) -> Event:
        async with database.uow() as uow:
            event = await emit(
                uow,
                merchant_id=merchant_id,
                event_type=EventType.INVOICE_CREATED,
                data={"n": n},
                at=now,
            )
            if locked is None:
                await uow.commit()
            else:
                # Write the staged rows (taking the stream lock) but do not commit yet.
                await uow.merchants.lock([merchant_id])
                await uow.events.add(event)
                uow.staged_events.clear()
                locked.set()
                await release.wait()
                await uow.commit()
            return event

    release, slow_holds_the_lock = asyncio.Event(), asyncio.Event()
    slow = asyncio.ensure_future(write(1, slow_holds_the_lock))
    await asyncio.wait_for(slow_holds_the_lock.wait(), 30)
    fast = asyncio.ensure_future(write(2))
    # The second writer waits for the first: PostgreSQL itself says it is blocked on a lock
    # held by the first one's session. It cannot commit a higher seq ahead of it.
    await _wait_until_blocked_by_a_lock(database)
    assert not fast.done()
    async with database.uow() as reader:
        assert await reader.events.after(merchant_id, 0, 100) == []
    release.set()
    early, late = await asyncio.wait_for(asyncio.gather(slow, fast), 10)
    async with database.uow() as reader:
        visible = await reader.events.after(merchant_id, 0, 100)
    assert [e.id for e in visible] == [early.id, late.id]
    assert visible[0].seq < visible[1].seq


async def _wait_until_blocked_by_a_lock(database: Database, timeout: float = 30.0) -> None:  # noqa: ASYNC109
    """Until another session of this database waits on a lock that a session holds
    (pg_blocking_pids), as PostgreSQL reports it; fails after `timeout` seconds."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND cardinality(pg_blocking_pids(pid)) > 0"
    )
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with database.engine.connect() as conn:
            if (await conn.execute(query)).scalar_one() > 0:
                return
        assert asyncio.get_running_loop().time() < deadline, "the second writer never blocked"
        await asyncio.sleep(0.01)  # PostgreSQL offers nothing to await


async def test_paging_with_the_cursor_sees_every_event_once(database: Database) -> None:
    merchant_id = await _merchant(database)
    now = datetime.now(UTC)
    emitted = []
    for n in range(7):
        async with database.uow() as uow:
            emitted.append(
                await emit(
                    uow,
                    merchant_id=merchant_id,
                    event_type=EventType.INVOICE_SETTLED,
                    data={"n": n},
                    at=now,
                )
            )
            await uow.commit()
    seen: list[str] = []
    cursor = 0
    while True:
        async with database.uow() as reader:
            page = await reader.events.after(merchant_id, cursor, 3)
        if not page:
            break
        seen.extend(e.id for e in page)
        cursor = page[-1].seq
    assert seen == [e.id for e in emitted]


async def test_an_uncommitted_event_is_never_written(database: Database) -> None:
    merchant_id = await _merchant(database)
    async with database.uow() as uow:
        await emit(
            uow,
            merchant_id=merchant_id,
            event_type=EventType.INVOICE_SETTLED,
            data={},
            at=datetime.now(UTC),
        )
    async with database.uow() as reader:
        assert await reader.events.after(merchant_id, 0, 10) == []
