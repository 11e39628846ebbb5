"""Event types a merchant can subscribe to; each is written to the outbox with its state change."""

from __future__ import annotations

from enum import StrEnum

from chaingate.domain.invoice import InvoiceStatus


class EventType(StrEnum):
    INVOICE_CREATED = "invoice.created"
    INVOICE_PAYMENT_RECEIVED = "invoice.payment_received"
    INVOICE_PAYMENT_REMOVED = "invoice.payment_removed"  # reorged out or failed after being seen
    INVOICE_PROCESSING = "invoice.processing"
    INVOICE_SETTLED = "invoice.settled"
    INVOICE_EXPIRED = "invoice.expired"
    INVOICE_INVALID = "invoice.invalid"
    INVOICE_REOPENED = "invoice.reopened"  # processing -> new after a payment vanished


STATUS_EVENTS: dict[InvoiceStatus, EventType] = {
    InvoiceStatus.NEW: EventType.INVOICE_REOPENED,
    InvoiceStatus.PROCESSING: EventType.INVOICE_PROCESSING,
    InvoiceStatus.SETTLED: EventType.INVOICE_SETTLED,
    InvoiceStatus.EXPIRED: EventType.INVOICE_EXPIRED,
    InvoiceStatus.INVALID: EventType.INVOICE_INVALID,
}

ALL_EVENT_TYPES = frozenset(t.value for t in EventType)
