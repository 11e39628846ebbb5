"""What services and repositories exchange besides the entities: query filters, read models,
and the outcome of one webhook attempt. Plain data, no behaviour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from chaingate.domain.invoice import InvoiceStatus
from chaingate.domain.models import Payment, WebhookDelivery


@dataclass(frozen=True, slots=True)
class InvoiceFilter:
    """The API's invoice list filters."""

    status: InvoiceStatus | None = None
    order_id: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


@dataclass(frozen=True, slots=True)
class InvoiceSearch:
    """The dashboard's invoice search."""

    status: str | None = None
    network: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    query: str | None = None  # an order id, a deposit address or a txid, matched exactly


@dataclass(frozen=True, slots=True)
class AmountRow:
    """One invoice's figures for the overview."""

    network: str
    asset: str
    status: str
    amount_due: int
    amount_paid: int
    day: datetime  # settled: when it settled (last update); others: when created


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery: WebhookDelivery
    endpoint_url: str
    event_type: str


@dataclass(frozen=True, slots=True)
class PaymentExportRow:
    payment: Payment
    order_id: str | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """What a dispatcher needs to send one delivery, read in one query."""

    delivery_id: str
    endpoint_id: str
    event_id: str
    event_type: str
    url: str
    secret_ciphertext: str
    body: str
    attempt_count: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    merchant_id: str
    key: str
    request_hash: str
    state: str  # in_progress | done
    response_status: int | None
    response_body: str | None
    locked_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """What one webhook attempt produced. `network_error` marks a missing answer worth retrying."""

    status_code: int | None
    duration_ms: int
    error: str | None
    response_excerpt: str | None
    network_error: bool = False
