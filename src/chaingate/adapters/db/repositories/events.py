from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.tables import events
from chaingate.domain.models import Event


class EventRepository:
    """The outbox: events are rows written in the transaction that caused them.

    `seq` is taken at INSERT, not at COMMIT. Writers therefore lock the merchant's row before
    appending (see services/events.py), so per merchant, seq order is commit order and a
    reader's cursor can never pass an event that commits later.
    """

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, event: Event) -> None:
        await self._conn.execute(
            events.insert().values(
                id=event.id,
                merchant_id=event.merchant_id,
                type=event.type,
                invoice_id=event.invoice_id,
                body=event.body,
                created_at=event.created_at,
            )
        )

    async def get(self, merchant_id: str, event_id: str) -> Event | None:
        row = (
            (
                await self._conn.execute(
                    select(events).where(
                        events.c.id == event_id, events.c.merchant_id == merchant_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else Event(**row)

    async def after(
        self, merchant_id: str, after_seq: int, limit: int, *, invoice_id: str | None = None
    ) -> list[Event]:
        query = select(events).where(events.c.merchant_id == merchant_id, events.c.seq > after_seq)
        if invoice_id is not None:
            query = query.where(events.c.invoice_id == invoice_id)
        rows = (await self._conn.execute(query.order_by(events.c.seq).limit(limit))).mappings()
        return [Event(**r) for r in rows]
