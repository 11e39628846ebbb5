"""Re-deciding an invoice after its payments changed, and announcing what changed.

Shared by the tracker (payments seen, confirmed, reorged out) and the expirer. Runs inside
the caller's unit of work: the new state and its events commit together.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from chaingate.config import NetworkConfig
from chaingate.domain.events import EventType, status_events
from chaingate.domain.invoice import evaluate
from chaingate.domain.models import Invoice, Payment
from chaingate.ports import ChainFamily, UnitOfWork
from chaingate.services.events import emit
from chaingate.services.payloads import invoice_document, payment_document


@dataclass
class PaymentChanges:
    """What happened to one invoice's payments in this transaction."""

    received: list[Payment] = field(default_factory=list)
    removed: list[Payment] = field(default_factory=list)


async def settle_invoice_state(
    uow: UnitOfWork,
    invoice_id: str,
    *,
    network: NetworkConfig,
    family: ChainFamily,
    chain_time: datetime | None,
    now: datetime,
    checkout_base: str | None,
    changes: PaymentChanges | None = None,
) -> Invoice:
    """Lock the invoice, evaluate it against its stored payments, save, and emit events.

    `chain_time` is a time the chain has provably passed (services.chain_time.passed_time), used
    to decide expiry instead of the wall clock; None proves nothing. `checkout_base` builds the
    events' `checkout_url` (Settings.checkout_base_url).
    """
    invoice = await uow.invoices.lock(invoice_id)
    assert invoice is not None, f"invoice {invoice_id} vanished under a lock"
    before = invoice.status
    payments = await uow.payments.for_invoice(invoice_id)
    result = evaluate(
        invoice.facts,
        [p.facts for p in payments],
        expiry_reached=chain_time is not None and chain_time > invoice.expires_at,
    )
    changed = (
        result.status != invoice.status
        or result.additional_status != invoice.additional_status
        or result.amount_paid != invoice.amount_paid
    )
    if changed:
        await uow.invoices.save_state(
            invoice_id,
            status=result.status,
            additional_status=result.additional_status,
            amount_paid=result.amount_paid,
            at=now,
        )
        invoice = replace(
            invoice,
            status=result.status,
            additional_status=result.additional_status,
            amount_paid=result.amount_paid,
            updated_at=now,
        )
    view = invoice_document(invoice, payments, network, family, checkout_base=checkout_base)
    changes = changes or PaymentChanges()
    for payment, event_type in [
        *((p, EventType.INVOICE_PAYMENT_RECEIVED) for p in changes.received),
        *((p, EventType.INVOICE_PAYMENT_REMOVED) for p in changes.removed),
    ]:
        await _emit(
            uow, invoice, event_type, view, now, payment=payment_document(payment, network, family)
        )
    for event in status_events(before, result.transitions):
        await _emit(
            uow,
            invoice,
            event.type,
            {**view, "status": event.status.value},
            now,
            previous_status=event.previous_status.value,
        )
    return invoice


async def _emit(
    uow: UnitOfWork,
    invoice: Invoice,
    event_type: EventType,
    view: dict[str, Any],
    now: datetime,
    *,
    payment: dict[str, Any] | None = None,
    previous_status: str | None = None,
) -> None:
    extra: dict[str, Any] = {}
    if payment is not None:
        extra["payment"] = payment
    if previous_status is not None:
        extra["previous_status"] = previous_status  # status events: the status it left
    await emit(
        uow,
        merchant_id=invoice.merchant_id,
        event_type=event_type,
        data=view,
        at=now,
        invoice_id=invoice.id,
        extra=extra or None,
    )
