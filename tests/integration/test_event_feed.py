"""The pull feed (`GET /v1/events`) never lets a reader's cursor pass an event that commits late."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

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

    async def write(n: int, hold: asyncio.Event | None = None) -> Event:
        async with database.uow() as uow:
            event = await emit(
                uow,
                merchant_id=merchant_id,
                event_type=EventType.INVOICE_CREATED,
                data={"n": n},
                at=now,
            )
            if hold is None:
                await uow.commit()
            else:
                # Write the staged rows (taking the stream lock) but do not commit yet.
                await uow.merchants.lock([merchant_id])
                await uow.events.add(event)
                uow.staged_events.clear()
                await hold.wait()
                await uow.commit()
            return event

    release = asyncio.Event()
    slow = asyncio.ensure_future(write(1, release))
    await asyncio.sleep(0.3)
    fast = asyncio.ensure_future(write(2))
    await asyncio.sleep(0.5)
    # The second writer waits for the first: it cannot commit a higher seq ahead of it.
    assert not fast.done()
    async with database.uow() as reader:
        assert await reader.events.after(merchant_id, 0, 100) == []
    release.set()
    early, late = await asyncio.wait_for(asyncio.gather(slow, fast), 10)
    async with database.uow() as reader:
        visible = await reader.events.after(merchant_id, 0, 100)
    assert [e.id for e in visible] == [early.id, late.id]
    assert visible[0].seq < visible[1].seq


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
