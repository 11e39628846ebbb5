from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from chaingate.adapters.db.repositories._sql import insert_ignoring_duplicates
from chaingate.adapters.db.tables import invoices, payments
from chaingate.domain.errors import Conflict
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import Invoice, Payment
from chaingate.domain.records import InvoiceFilter

_CHUNK = 500


class InvoiceRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, invoice: Invoice) -> None:
        """Raises Conflict `address_in_use` when another invoice already has the address."""
        try:
            await self._conn.execute(invoices.insert().values(**_invoice_row(invoice)))
        except IntegrityError as exc:
            # uq_invoices_network_address. Keys are unique by their material, so only a key
            # shared outside the gateway's knowledge gets here; never a 500 for the merchant.
            if "address" not in str(exc.orig):
                raise
            raise Conflict(
                f"the address of derivation index {invoice.derivation_index} already belongs "
                f"to another invoice on {invoice.network}: this wallet's key is used by another "
                "wallet too",
                code="address_in_use",
            ) from None

    async def get(self, invoice_id: str, *, merchant_id: str | None = None) -> Invoice | None:
        """The invoice, or None — also when it belongs to another merchant than `merchant_id`."""
        query = select(invoices).where(invoices.c.id == invoice_id)
        if merchant_id is not None:
            query = query.where(invoices.c.merchant_id == merchant_id)
        row = (await self._conn.execute(query)).mappings().first()
        return _invoice(row)

    async def lock(self, invoice_id: str) -> Invoice | None:
        """Read for update: the row stays locked until commit (SQLite: the db write lock)."""
        query = select(invoices).where(invoices.c.id == invoice_id).with_for_update()
        return _invoice((await self._conn.execute(query)).mappings().first())

    async def page(
        self, merchant_id: str, filters: InvoiceFilter, *, before_id: str | None, limit: int
    ) -> list[Invoice]:
        """Newest first; `before_id` is the cursor (ids are time-ordered)."""
        query = select(invoices).where(invoices.c.merchant_id == merchant_id)
        if filters.status is not None:
            query = query.where(invoices.c.status == filters.status.value)
        if filters.order_id is not None:
            query = query.where(invoices.c.order_id == filters.order_id)
        if filters.created_from is not None:
            query = query.where(invoices.c.created_at >= filters.created_from)
        if filters.created_to is not None:
            query = query.where(invoices.c.created_at < filters.created_to)
        if before_id is not None:
            query = query.where(invoices.c.id < before_id)
        query = query.order_by(invoices.c.id.desc()).limit(limit)
        rows = (await self._conn.execute(query)).mappings()
        return [Invoice(**_invoice_fields(r)) for r in rows]

    async def save_state(
        self,
        invoice_id: str,
        *,
        status: InvoiceStatus,
        additional_status: AdditionalStatus,
        amount_paid: int,
        at: datetime,
    ) -> None:
        await self._conn.execute(
            update(invoices)
            .where(invoices.c.id == invoice_id)
            .values(
                status=status.value,
                additional_status=additional_status.value,
                amount_paid=amount_paid,
                updated_at=at,
            )
        )

    async def watched(
        self, network: str, addresses: Collection[str], now: datetime
    ) -> dict[str, str]:
        """address -> invoice id, for those of `addresses` an invoice still watches at `now`.

        Cost follows the number of candidates in a block, not the number of watched addresses.
        """
        found: dict[str, str] = {}
        candidates = list(addresses)
        for start in range(0, len(candidates), _CHUNK):
            chunk = candidates[start : start + _CHUNK]
            rows = await self._conn.execute(
                select(invoices.c.address, invoices.c.id).where(
                    invoices.c.network == network,
                    invoices.c.address.in_(chunk),
                    invoices.c.watch_until > now,
                )
            )
            found.update({address: invoice_id for address, invoice_id in rows})
        return found

    async def oldest_created(self, network: str) -> datetime | None:
        """Creation time of the network's oldest invoice, if any."""
        result = await self._conn.execute(
            select(func.min(invoices.c.created_at)).where(invoices.c.network == network)
        )
        oldest: datetime | None = result.scalar_one_or_none()
        return oldest

    async def due_for_expiry(self, network: str, reached: datetime, limit: int = 500) -> list[str]:
        rows = await self._conn.execute(
            select(invoices.c.id)
            .where(
                invoices.c.network == network,
                invoices.c.status == InvoiceStatus.NEW.value,
                invoices.c.expires_at < reached,
            )
            .order_by(invoices.c.expires_at)
            .limit(limit)
        )
        return [r[0] for r in rows]


class PaymentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add_if_new(self, payment: Payment) -> bool:
        """Insert unless (network, txid, position) exists; True when this call created it."""
        return await insert_ignoring_duplicates(self._conn, payments, _payment_row(payment))

    async def get_by_key(self, network: str, txid: str, position: str) -> Payment | None:
        row = (
            (
                await self._conn.execute(
                    select(payments).where(
                        payments.c.network == network,
                        payments.c.txid == txid,
                        payments.c.position == position,
                    )
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else Payment(**_payment_fields(row))

    async def for_invoice(self, invoice_id: str) -> list[Payment]:
        rows = (
            await self._conn.execute(
                select(payments)
                .where(payments.c.invoice_id == invoice_id)
                .order_by(
                    payments.c.block_number.nulls_last(), payments.c.txid, payments.c.position
                )
            )
        ).mappings()
        return [Payment(**_payment_fields(r)) for r in rows]

    async def for_invoices(self, invoice_ids: Sequence[str]) -> dict[str, list[Payment]]:
        grouped: dict[str, list[Payment]] = {i: [] for i in invoice_ids}
        for start in range(0, len(invoice_ids), _CHUNK):
            rows = (
                await self._conn.execute(
                    select(payments)
                    .where(payments.c.invoice_id.in_(invoice_ids[start : start + _CHUNK]))
                    .order_by(
                        payments.c.block_number.nulls_last(), payments.c.txid, payments.c.position
                    )
                )
            ).mappings()
            for r in rows:
                grouped[r["invoice_id"]].append(Payment(**_payment_fields(r)))
        return grouped

    async def counted_above(self, network: str, height: int) -> list[Payment]:
        """Counted payments in blocks above `height` (what a reorg to `height` takes away)."""
        rows = (
            await self._conn.execute(
                select(payments).where(
                    payments.c.network == network,
                    payments.c.block_number > height,
                    payments.c.status.in_(
                        [PaymentStatus.PENDING.value, PaymentStatus.CONFIRMED.value]
                    ),
                )
            )
        ).mappings()
        return [Payment(**_payment_fields(r)) for r in rows]

    async def pending(self, network: str) -> list[Payment]:
        """Mined payments still short of their confirmations."""
        rows = (
            await self._conn.execute(
                select(payments).where(
                    payments.c.network == network,
                    payments.c.status == PaymentStatus.PENDING.value,
                    payments.c.block_number.is_not(None),
                )
            )
        ).mappings()
        return [Payment(**_payment_fields(r)) for r in rows]

    async def statuses(
        self, network: str, txids: Collection[str]
    ) -> dict[tuple[str, str], PaymentStatus]:
        """(txid, position) -> status of the stored payments of `txids`."""
        found: dict[tuple[str, str], PaymentStatus] = {}
        wanted = list(txids)
        for start in range(0, len(wanted), _CHUNK):
            rows = await self._conn.execute(
                select(payments.c.txid, payments.c.position, payments.c.status).where(
                    payments.c.network == network,
                    payments.c.txid.in_(wanted[start : start + _CHUNK]),
                )
            )
            found.update(
                {(txid, position): PaymentStatus(status) for txid, position, status in rows}
            )
        return found

    async def unmined(self, network: str) -> list[Payment]:
        """Counted payments seen in the mempool and not (yet) in a block."""
        rows = (
            await self._conn.execute(
                select(payments).where(
                    payments.c.network == network,
                    payments.c.status == PaymentStatus.PENDING.value,
                    payments.c.block_number.is_(None),
                )
            )
        ).mappings()
        return [Payment(**_payment_fields(r)) for r in rows]

    async def update(self, payment_id: str, **values: Any) -> None:
        if "status" in values:
            values["status"] = PaymentStatus(values["status"]).value
        await self._conn.execute(
            update(payments).where(payments.c.id == payment_id).values(**values)
        )

    async def reattach(
        self,
        payment_id: str,
        *,
        block_number: int | None,
        block_hash: str | None,
        paid_at: datetime,
        at: datetime,
    ) -> None:
        """A payment seen again (in a new canonical block, or back in the mempool: no block)
        after it was orphaned."""
        await self._conn.execute(
            update(payments)
            .where(payments.c.id == payment_id)
            .values(
                block_number=block_number,
                block_hash=block_hash,
                paid_at=paid_at,
                confirmations=0,
                status=PaymentStatus.PENDING.value,
                updated_at=at,
            )
        )


def _invoice_row(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.id,
        "merchant_id": invoice.merchant_id,
        "network": invoice.network,
        "asset": invoice.asset,
        "amount_due": invoice.amount_due,
        "amount_paid": invoice.amount_paid,
        "status": invoice.status.value,
        "additional_status": invoice.additional_status.value,
        "address": invoice.address,
        "wallet_id": invoice.wallet_id,
        "derivation_index": invoice.derivation_index,
        "order_id": invoice.order_id,
        "metadata": json.dumps(invoice.metadata, separators=(",", ":")),
        "required_confirmations": invoice.required_confirmations,
        "tolerance_bps": invoice.tolerance_bps,
        "expires_at": invoice.expires_at,
        "watch_until": invoice.watch_until,
        "created_at": invoice.created_at,
        "updated_at": invoice.updated_at,
        "redirect_url": invoice.redirect_url,
    }


def _invoice_fields(row: RowMapping) -> dict[str, Any]:
    return {
        **row,
        "status": InvoiceStatus(row["status"]),
        "additional_status": AdditionalStatus(row["additional_status"]),
        "metadata": json.loads(row["metadata"]),
    }


def _invoice(row: RowMapping | None) -> Invoice | None:
    return None if row is None else Invoice(**_invoice_fields(row))


def _payment_row(payment: Payment) -> dict[str, Any]:
    return {
        "id": payment.id,
        "invoice_id": payment.invoice_id,
        "network": payment.network,
        "txid": payment.txid,
        "position": payment.position,
        "address": payment.address,
        "asset": payment.asset,
        "token_contract": payment.token_contract,
        "from_address": payment.from_address,
        "amount": payment.amount,
        "block_number": payment.block_number,
        "block_hash": payment.block_hash,
        "paid_at": payment.paid_at,
        "confirmations": payment.confirmations,
        "status": payment.status.value,
        "reached_confirmations": payment.reached_confirmations,
        "coinbase": payment.coinbase,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def _payment_fields(row: RowMapping) -> dict[str, Any]:
    return {**row, "status": PaymentStatus(row["status"])}
