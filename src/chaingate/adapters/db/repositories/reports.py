"""Read-only queries behind the merchant dashboard: search, overview figures, exports.

Every query is scoped by merchant id. Amounts come back as ints; the callers sum them in
Python because SQLite stores base units as padded strings, where SQL SUM would not be exact.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import String, func, literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.repositories.invoices import _invoice_fields
from chaingate.adapters.db.tables import (
    events,
    invoices,
    payments,
    wallets,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)
from chaingate.domain.invoice import PaymentStatus
from chaingate.domain.models import Event, Invoice, Payment, WebhookAttempt, WebhookDelivery
from chaingate.domain.records import AmountRow, DeliveryView, InvoiceSearch, PaymentExportRow


class ReportRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def search_invoices(
        self, merchant_id: str, search: InvoiceSearch, *, before_id: str | None, limit: int
    ) -> list[Invoice]:
        """Newest first; `before_id` is the cursor (ids are time-ordered)."""
        query = select(invoices).where(invoices.c.merchant_id == merchant_id)
        if search.status:
            query = query.where(invoices.c.status == search.status)
        if search.network:
            query = query.where(invoices.c.network == search.network)
        if search.created_from is not None:
            query = query.where(invoices.c.created_at >= search.created_from)
        if search.created_to is not None:
            query = query.where(invoices.c.created_at < search.created_to)
        if search.query:
            # Each way to match is its own indexed lookup (order id, the unique (network,
            # address) index over the merchant's networks — an invoice's network is one of its
            # merchant's wallets' — the id, a payment's txid); an OR of them in one WHERE made
            # the planners scan all of the merchant's invoices instead.
            own_networks = select(wallets.c.network).where(wallets.c.merchant_id == merchant_id)
            matches = union_all(
                select(invoices.c.id).where(
                    invoices.c.merchant_id == merchant_id, invoices.c.order_id == search.query
                ),
                select(invoices.c.id).where(
                    invoices.c.network.in_(own_networks), invoices.c.address == search.query
                ),
                select(literal(search.query, String)),
                select(payments.c.invoice_id).where(payments.c.txid == search.query),
            )
            query = query.where(invoices.c.id.in_(matches))
        if before_id is not None:
            query = query.where(invoices.c.id < before_id)
        rows = (
            await self._conn.execute(query.order_by(invoices.c.id.desc()).limit(limit))
        ).mappings()
        return [Invoice(**_invoice_fields(r)) for r in rows]

    async def amounts_since(self, merchant_id: str, since: datetime) -> list[AmountRow]:
        """Figures of the invoices created or settled since `since`, plus every one in progress."""
        i = invoices.c
        query = select(
            i.network, i.asset, i.status, i.amount_due, i.amount_paid, i.created_at, i.updated_at
        ).where(
            i.merchant_id == merchant_id,
            (i.created_at >= since) | (i.updated_at >= since) | (i.status == "processing"),
        )
        result = await self._conn.execute(query)
        return [
            AmountRow(
                network=r.network,
                asset=r.asset,
                status=r.status,
                amount_due=r.amount_due,
                amount_paid=r.amount_paid,
                day=r.updated_at if r.status == "settled" else r.created_at,
            )
            for r in result
        ]

    async def events_for_invoice(self, merchant_id: str, invoice_id: str) -> list[Event]:
        rows = (
            await self._conn.execute(
                select(events)
                .where(events.c.merchant_id == merchant_id, events.c.invoice_id == invoice_id)
                .order_by(events.c.seq)
            )
        ).mappings()
        return [Event(**r) for r in rows]

    async def deliveries_for_events(
        self, merchant_id: str, event_ids: Sequence[str]
    ) -> list[DeliveryView]:
        if not event_ids:
            return []
        d = webhook_deliveries
        rows = (
            await self._conn.execute(
                select(d, webhook_endpoints.c.url, events.c.type)
                .join(webhook_endpoints, webhook_endpoints.c.id == d.c.endpoint_id)
                .join(events, events.c.id == d.c.event_id)
                .where(d.c.merchant_id == merchant_id, d.c.event_id.in_(list(event_ids)))
                .order_by(d.c.id)
            )
        ).mappings()
        views = []
        for r in rows:
            fields = {f.name: r[f.name] for f in dataclasses.fields(WebhookDelivery)}
            views.append(DeliveryView(WebhookDelivery(**fields), r["url"], r["type"]))
        return views

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]:
        grouped: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
        if not delivery_ids:
            return grouped
        rows = (
            await self._conn.execute(
                select(webhook_attempts)
                .where(webhook_attempts.c.delivery_id.in_(list(delivery_ids)))
                .order_by(webhook_attempts.c.id)
            )
        ).mappings()
        for r in rows:
            grouped[r["delivery_id"]].append(WebhookAttempt(**r))
        return grouped

    async def invoice_counts(self, merchant_id: str) -> dict[str, int]:
        rows = await self._conn.execute(
            select(invoices.c.network, func.count())
            .where(invoices.c.merchant_id == merchant_id)
            .group_by(invoices.c.network)
        )
        return {network: int(count) for network, count in rows}

    async def export_invoices(
        self, merchant_id: str, start: datetime, end: datetime, *, after_id: str | None, limit: int
    ) -> list[Invoice]:
        """Invoices created in [start, end), oldest first, keyset-paged by id."""
        query = select(invoices).where(
            invoices.c.merchant_id == merchant_id,
            invoices.c.created_at >= start,
            invoices.c.created_at < end,
        )
        if after_id is not None:
            query = query.where(invoices.c.id > after_id)
        rows = (await self._conn.execute(query.order_by(invoices.c.id).limit(limit))).mappings()
        return [Invoice(**_invoice_fields(r)) for r in rows]

    async def export_payments(
        self, merchant_id: str, start: datetime, end: datetime, *, after_id: str | None, limit: int
    ) -> list[PaymentExportRow]:
        """Payments first seen in [start, end) on the merchant's invoices, oldest first."""
        query = (
            select(payments, invoices.c.order_id)
            .join(invoices, invoices.c.id == payments.c.invoice_id)
            .where(
                invoices.c.merchant_id == merchant_id,
                payments.c.created_at >= start,
                payments.c.created_at < end,
            )
        )
        if after_id is not None:
            query = query.where(payments.c.id > after_id)
        rows = (await self._conn.execute(query.order_by(payments.c.id).limit(limit))).mappings()
        names = [f.name for f in dataclasses.fields(Payment)]
        return [
            PaymentExportRow(
                Payment(**{**{n: r[n] for n in names}, "status": PaymentStatus(r["status"])}),
                r["order_id"],
            )
            for r in rows
        ]
