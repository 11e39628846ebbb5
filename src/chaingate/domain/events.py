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
    # The run of unused addresses passed another multiple of the wallet's gap limit.
    WALLET_GAP_WARNING = "wallet.gap_warning"
    # A merchant who proved control of this wallet's key took it over: no more addresses here.
    WALLET_KEY_CLAIMED = "wallet.key_claimed"


STATUS_EVENTS: dict[InvoiceStatus, EventType] = {
    InvoiceStatus.NEW: EventType.INVOICE_REOPENED,
    InvoiceStatus.PROCESSING: EventType.INVOICE_PROCESSING,
    InvoiceStatus.SETTLED: EventType.INVOICE_SETTLED,
    InvoiceStatus.EXPIRED: EventType.INVOICE_EXPIRED,
    InvoiceStatus.INVALID: EventType.INVOICE_INVALID,
}

ALL_EVENT_TYPES = frozenset(t.value for t in EventType)
