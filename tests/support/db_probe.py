"""Reading the gateway's database from the outside while it runs, and moving its clocks on.

Reads use a plain SQLAlchemy engine (no `BEGIN IMMEDIATE`), so polling never takes SQLite's
write lock away from the gateway. The two "time travel" writes stand in for waiting out a
timeout while no gateway runs: an abandoned Idempotency-Key claim turns stale after 60 s, a
dead dispatcher's lease runs out after `lease_duration`. Moving those timestamps back is what
the passing minute would do; the gateway's own recovery path then does the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import create_async_engine

from chaingate.adapters.db.tables import (
    chain_cursors,
    events,
    idempotency_keys,
    invoices,
    payments,
    webhook_deliveries,
)


class DbProbe:
    def __init__(self, url: str) -> None:
        args = {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}
        self.engine = create_async_engine(url, **args)

    async def close(self) -> None:
        await self.engine.dispose()

    async def cursor(self, network: str) -> tuple[int, str] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(chain_cursors.c.height, chain_cursors.c.hash).where(
                        chain_cursors.c.network == network
                    )
                )
            ).first()
        return None if row is None else (int(row[0]), str(row[1]))

    async def pending_deliveries(self) -> int:
        async with self.engine.connect() as conn:
            count = await conn.scalar(
                select(func.count()).where(webhook_deliveries.c.status != "succeeded")
            )
        return int(count or 0)

    async def has_order(self, order_id: str) -> bool:
        async with self.engine.connect() as conn:
            found = await conn.scalar(select(invoices.c.id).where(invoices.c.order_id == order_id))
        return found is not None

    async def claim_state(self, key: str) -> str | None:
        """The state of the Idempotency-Key claim `key` ("in_progress", "done"), or None."""
        async with self.engine.connect() as conn:
            state = await conn.scalar(
                select(idempotency_keys.c.state).where(idempotency_keys.c.key == key)
            )
        return None if state is None else str(state)

    async def rows(self, table_name: str) -> list[dict[str, Any]]:
        table = {
            t.name: t for t in (payments, invoices, events, webhook_deliveries, idempotency_keys)
        }[table_name]
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(select(table))).mappings()]

    async def age_abandoned_claims(self, by: timedelta) -> int:
        """Move in-progress Idempotency-Key claims `by` into the past (no gateway may run)."""
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(
                    select(idempotency_keys.c.merchant_id, idempotency_keys.c.key).where(
                        idempotency_keys.c.state == "in_progress"
                    )
                )
            ).all()
            for merchant_id, key in rows:
                locked = await conn.scalar(
                    select(idempotency_keys.c.locked_at).where(
                        idempotency_keys.c.merchant_id == merchant_id,
                        idempotency_keys.c.key == key,
                    )
                )
                assert locked is not None
                await conn.execute(
                    update(idempotency_keys)
                    .where(
                        idempotency_keys.c.merchant_id == merchant_id,
                        idempotency_keys.c.key == key,
                    )
                    .values(locked_at=locked - by)
                )
        return len(rows)

    async def end_dead_leases(self) -> int:
        """Let every running delivery lease run out now (no gateway may run)."""
        now = datetime.now(UTC)
        d = webhook_deliveries
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(d)
                .where(d.c.status == "pending", d.c.lease_until.is_not(None), d.c.lease_until > now)
                .values(lease_until=now - timedelta(seconds=1))
            )
        return int(result.rowcount)
