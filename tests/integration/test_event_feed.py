"""The pull feed (`GET /v1/events`) never lets a reader's cursor pass an event that commits late."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chaingate.adapters.db.uow import Database
from chaingate.domain.events import EventType
from chaingate.domain.models import Merchant
from chaingate.services.events import emit


async def _merchant(database: Database) -> str:
    async with database.uow() as uow:
        await uow.merchants.add(Merchant(id="mer_feed", name="Feed", created_at=datetime.now(UTC)))
        await uow.commit()
    return "mer_feed"


async def test_an_event_committed_late_is_not_skipped(database: Database) -> None:
    if database.engine.dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers (BEGIN IMMEDIATE): commit order is seq order")
    merchant_id = await _merchant(database)
    now = datetime.now(UTC)
    slow = database.uow()
    await slow.__aenter__()
    try:
        early = await emit(
            slow,
            merchant_id=merchant_id,
            event_type=EventType.INVOICE_CREATED,
            data={"n": 1},
            at=now,
        )  # takes the lower seq, commits last
        async with database.uow() as fast:
            late = await emit(
                fast,
                merchant_id=merchant_id,
                event_type=EventType.INVOICE_CREATED,
                data={"n": 2},
                at=now,
            )
            await fast.commit()
        async with database.uow() as reader:
            visible = await reader.events.after(merchant_id, (-1, 0), 100)
        # Showing `late` now would move the reader's cursor past `early` for ever.
        assert [e.id for _, e in visible] == []
        await slow.commit()
    finally:
        await slow.__aexit__(None, None, None)
    async with database.uow() as reader:
        visible = await reader.events.after(merchant_id, (-1, 0), 100)
    assert [e.id for _, e in visible] == [early.id, late.id]


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
    seen, cursor = [], (-1, 0)
    while True:
        async with database.uow() as reader:
            page = await reader.events.after(merchant_id, cursor, 3)
        if not page:
            break
        seen.extend(e.id for _, e in page)
        cursor = page[-1][0]
    assert seen == [e.id for e in emitted]
