"""The schema's money and uniqueness guarantees, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from chaingate.adapters.db.tables import merchants
from chaingate.adapters.db.uow import Database
from chaingate.domain.models import Merchant


async def test_uncommitted_work_is_rolled_back(database: Database) -> None:
    now = datetime.now(UTC)
    async with database.uow() as uow:
        await uow.merchants.add(Merchant(id="m_1", name="Shop", created_at=now))
    async with database.uow() as uow:
        assert await uow.merchants.get("m_1") is None
        await uow.merchants.add(Merchant(id="m_1", name="Shop", created_at=now))
        await uow.commit()
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(merchants.c.name))).scalars().all()
    assert rows == ["Shop"]
