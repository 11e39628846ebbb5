from __future__ import annotations

from sqlalchemy import and_, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from chaingate.adapters.db.tables import events
from chaingate.domain.models import Event

EventCursor = tuple[int, int]  # (tx_order, seq)


class EventRepository:
    """The outbox: events are rows written in the transaction that caused them."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    @property
    def _postgres(self) -> bool:
        return self._conn.dialect.name == "postgresql"

    async def add(self, event: Event) -> None:
        tx_order: ColumnElement[int] | int = (
            literal_column("pg_current_xact_id()::text::bigint") if self._postgres else 0
        )
        await self._conn.execute(
            events.insert().values(
                id=event.id,
                merchant_id=event.merchant_id,
                type=event.type,
                invoice_id=event.invoice_id,
                body=event.body,
                created_at=event.created_at,
                tx_order=tx_order,
            )
        )

    async def get(self, merchant_id: str, event_id: str) -> Event | None:
        row = (
            (
                await self._conn.execute(
                    select(*_EVENT_COLUMNS).where(
                        events.c.id == event_id, events.c.merchant_id == merchant_id
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else Event(**row)

    async def after(
        self,
        merchant_id: str,
        cursor: EventCursor,
        limit: int,
        *,
        invoice_id: str | None = None,
    ) -> list[tuple[EventCursor, Event]]:
        """Committed events past `cursor`, in an order no later commit can insert into."""
        tx_order, seq = cursor
        query = select(*_EVENT_COLUMNS, events.c.tx_order).where(
            events.c.merchant_id == merchant_id,
            or_(
                events.c.tx_order > tx_order,
                and_(events.c.tx_order == tx_order, events.c.seq > seq),
            ),
        )
        if self._postgres:
            # Hide transactions that committed while an older one is still running: the older
            # one's events will sort before them once it commits.
            horizon: ColumnElement[int] = literal_column(
                "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
            )
            query = query.where(events.c.tx_order < horizon)
        if invoice_id is not None:
            query = query.where(events.c.invoice_id == invoice_id)
        query = query.order_by(events.c.tx_order, events.c.seq).limit(limit)
        rows = (await self._conn.execute(query)).mappings()
        return [
            ((r["tx_order"], r["seq"]), Event(**{k: v for k, v in r.items() if k != "tx_order"}))
            for r in rows
        ]


_EVENT_COLUMNS = (
    events.c.seq,
    events.c.id,
    events.c.merchant_id,
    events.c.type,
    events.c.invoice_id,
    events.c.body,
    events.c.created_at,
)
