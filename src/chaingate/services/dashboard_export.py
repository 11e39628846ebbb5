"""CSV exports of a merchant's invoices and payments, streamed page by page.

Spreadsheets run cells that start with = + - @ (or tab, CR) as formulas; such cells get a
leading quote so an order id or metadata chosen by a customer cannot run in the merchant's sheet.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from chaingate.config import Settings
from chaingate.domain.models import Invoice
from chaingate.domain.money import format_amount
from chaingate.ports import Database
from chaingate.services.payloads import iso

EXPORT_PAGE = 500
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

INVOICE_COLUMNS = [
    "id", "created_at", "status", "additional_status", "network", "asset", "amount",
    "amount_paid", "address", "order_id", "expires_at", "metadata",
]  # fmt: skip
PAYMENT_COLUMNS = [
    "id", "invoice_id", "order_id", "created_at", "paid_at", "network", "asset", "amount",
    "txid", "position", "from_address", "block_number", "confirmations", "status",
]  # fmt: skip


def safe_cell(value: object) -> str:
    """The cell's text, prefixed with a quote when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_line(cells: Sequence[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow([safe_cell(c) for c in cells])
    return out.getvalue()


def _decimal(settings: Settings, network: str, asset: str, units: int) -> str:
    config = settings.network(network)
    decimals = config.asset_decimals(asset) if config is not None else None
    return str(units) if decimals is None else format_amount(units, decimals)


def _invoice_cells(settings: Settings, invoice: Invoice) -> list[object]:
    n, a = invoice.network, invoice.asset
    return [
        invoice.id,
        iso(invoice.created_at),
        invoice.status.value,
        invoice.additional_status.value,
        n,
        a,
        _decimal(settings, n, a, invoice.amount_due),
        _decimal(settings, n, a, invoice.amount_paid),
        invoice.address,
        invoice.order_id,
        iso(invoice.expires_at),
        json.dumps(invoice.metadata, separators=(",", ":"), sort_keys=True),
    ]


async def invoices_csv(
    db: Database, settings: Settings, merchant_id: str, start: datetime, end: datetime
) -> AsyncIterator[str]:
    """The header, then one line per invoice created in [start, end), oldest first.

    Each page is read in its own short transaction, so a long export never holds the database.
    """
    yield csv_line(INVOICE_COLUMNS)
    after: str | None = None
    while True:
        async with db.uow() as uow:
            page = await uow.reports.export_invoices(
                merchant_id, start, end, after_id=after, limit=EXPORT_PAGE
            )
        if not page:
            return
        yield "".join(csv_line(_invoice_cells(settings, i)) for i in page)
        after = page[-1].id


async def payments_csv(
    db: Database, settings: Settings, merchant_id: str, start: datetime, end: datetime
) -> AsyncIterator[str]:
    """The header, then one line per payment first seen in [start, end), oldest first."""
    yield csv_line(PAYMENT_COLUMNS)
    after: str | None = None
    while True:
        async with db.uow() as uow:
            page = await uow.reports.export_payments(
                merchant_id, start, end, after_id=after, limit=EXPORT_PAGE
            )
        if not page:
            return
        lines = []
        for row in page:
            p = row.payment
            lines.append(
                csv_line(
                    [
                        p.id,
                        p.invoice_id,
                        row.order_id,
                        iso(p.created_at),
                        iso(p.paid_at),
                        p.network,
                        p.asset,
                        _decimal(settings, p.network, p.asset, p.amount),
                        p.txid,
                        p.position,
                        p.from_address,
                        p.block_number,
                        p.confirmations,
                        p.status.value,
                    ]
                )
            )
        yield "".join(lines)
        after = page[-1].payment.id
