"""Entities as the services see them, independent of how they are stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from chaingate.domain.invoice import (
    AdditionalStatus,
    InvoiceFacts,
    InvoiceStatus,
    PaymentFacts,
    PaymentStatus,
)


@dataclass(frozen=True, slots=True)
class Merchant:
    id: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    merchant_id: str
    name: str
    secret_hash: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Wallet:
    id: str
    merchant_id: str
    network: str
    account_key: str
    next_index: int
    created_at: datetime
    address_type: str | None = None  # Bitcoin family script type; None on EVM
    gap_limit: int = 20  # unused addresses in a row the merchant's own wallet still scans
    on_gap: str = "warn"  # domain.gap.OnGap: warn (default) or refuse past the gap limit
    # domain.wallet_key.key_identity of the key; None once a proven owner of the same key
    # material claimed it (this wallet then hands out no more addresses).
    key_identity: str | None = None
    key_origin: str | None = None  # "fingerprint/84h/0h/0h", as the merchant gave it
    # The run of unused addresses (its start index) and the gap threshold last warned about.
    gap_warned_start: int | None = None
    gap_warned_threshold: int = 0
    custody: str = "watch_only"  # or "managed": the isolated signer holds the account key
    key_ref: str | None = None  # managed: the signer's ref of the account (never a key)


@dataclass(frozen=True, slots=True)
class TreasuryAddress:
    """Where a merchant's money goes on a network: hot (pays out), tokens_collector (funds gas
    top-ups), both managed by the signer; cold (watch-only: an address or an xpub)."""

    id: str
    merchant_id: str
    network: str
    role: str  # AddressRole value
    custody: str  # "managed" or "watch_only"
    address: str | None
    account_key: str | None  # managed HD account or cold xpub
    key_ref: str | None
    address_type: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Invoice:
    id: str
    merchant_id: str
    network: str
    asset: str
    amount_due: int
    amount_paid: int
    status: InvoiceStatus
    additional_status: AdditionalStatus
    address: str
    wallet_id: str
    derivation_index: int
    order_id: str | None
    metadata: dict[str, Any]
    required_confirmations: int
    tolerance_bps: int
    expires_at: datetime
    watch_until: datetime
    created_at: datetime
    updated_at: datetime
    redirect_url: str | None = None  # the hosted checkout sends the payer here once paid

    @property
    def facts(self) -> InvoiceFacts:
        return InvoiceFacts(
            status=self.status,
            amount_due=self.amount_due,
            tolerance_bps=self.tolerance_bps,
            expires_at=self.expires_at,
        )


@dataclass(frozen=True, slots=True)
class Payment:
    id: str
    invoice_id: str
    network: str
    txid: str
    position: str
    address: str
    asset: str
    token_contract: str | None
    from_address: str | None
    amount: int
    block_number: int | None  # None while only seen in the mempool
    block_hash: str | None
    paid_at: datetime  # block time, or when first seen in the mempool
    confirmations: int
    status: PaymentStatus
    reached_confirmations: bool
    created_at: datetime
    updated_at: datetime
    coinbase: bool = False  # a block reward output: confirmed only once mature

    @property
    def facts(self) -> PaymentFacts:
        return PaymentFacts(
            amount=self.amount,
            status=self.status,
            paid_at=self.paid_at,
            reached_confirmations=self.reached_confirmations,
            mined=self.block_number is not None,
        )


@dataclass(frozen=True, slots=True)
class ChainCursor:
    network: str
    height: int
    hash: str
    block_timestamp: datetime
    synced_at: datetime | None


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    id: str
    merchant_id: str
    type: str
    invoice_id: str | None
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    merchant_id: str
    url: str
    description: str | None
    secret_ciphertext: str
    event_types: tuple[str, ...]  # empty: every event
    enabled: bool
    consecutive_failures: int
    created_at: datetime
    updated_at: datetime

    def wants(self, event_type: str) -> bool:
        return self.enabled and (not self.event_types or event_type in self.event_types)


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    id: str
    endpoint_id: str
    event_id: str
    merchant_id: str
    status: str
    attempt_count: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class WebhookAttempt:
    id: int
    delivery_id: str
    attempted_at: datetime
    status_code: int | None
    duration_ms: int
    error: str | None
    response_excerpt: str | None


@dataclass(frozen=True, slots=True)
class DashboardUser:
    id: str
    merchant_id: str
    email: str
    password_hash: str
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    last_login_at: datetime | None
    totp_secret: str | None = None  # encrypted
    totp_last_step: int | None = None


@dataclass(frozen=True, slots=True)
class DashboardSession:
    token_hash: str  # SHA-256 of the cookie's token: a leaked table opens no session
    user_id: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
