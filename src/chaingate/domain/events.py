"""Event types a merchant can subscribe to; each is written to the outbox with its state change."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    # invalid -> processing/settled: the reversed money is in blocks again. A merchant who
    # cancelled or refunded on invoice.invalid must look at the order again.
    INVOICE_REVALIDATED = "invoice.revalidated"
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


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """One event a status change announces: its type, the status the invoice shows in it, and
    the status it left (`previous_status` in the event)."""

    type: EventType
    status: InvoiceStatus
    previous_status: InvoiceStatus


def status_events(before: InvoiceStatus, transitions: Sequence[InvoiceStatus]) -> list[StatusEvent]:
    """The events for an invoice that was `before` and entered `transitions` in order.

    Each entered status has its own event. Leaving `invalid` is announced first by
    `invoice.revalidated`, showing where the invoice ended up: a merchant who acted on
    `invoice.invalid` learns it from one event, whichever statuses follow.
    """
    events: list[StatusEvent] = []
    if before is InvoiceStatus.INVALID and transitions:
        events.append(StatusEvent(EventType.INVOICE_REVALIDATED, transitions[-1], before))
    previous = before
    for status in transitions:
        events.append(StatusEvent(STATUS_EVENTS[status], status, previous))
        previous = status
    return events
