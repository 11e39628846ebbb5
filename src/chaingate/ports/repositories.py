"""Repository Protocols: how the services read and write each aggregate inside a unit of work.

The SQL adapters in adapters/db/repositories/ implement them; bootstrap proves it to mypy.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from chaingate.domain.chain import BlockRef
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import (
    ApiKey,
    ChainCursor,
    DashboardSession,
    DashboardUser,
    Event,
    Invoice,
    Merchant,
    Payment,
    TreasuryAddress,
    Wallet,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from chaingate.domain.records import (
    AmountRow,
    DeliveryView,
    DueDelivery,
    IdempotencyRecord,
    InvoiceFilter,
    InvoiceSearch,
    PaymentExportRow,
)


class MerchantRepository(Protocol):
    async def add(self, merchant: Merchant) -> None: ...

    async def get(self, merchant_id: str) -> Merchant | None: ...

    async def lock(self, merchant_ids: list[str]) -> None:
        """Row-lock merchants until commit, in id order so two writers never wait in a cycle."""
        ...

    async def add_api_key(self, key: ApiKey) -> None: ...

    async def get_api_key(self, key_id: str) -> ApiKey | None: ...

    async def list_api_keys(self, merchant_id: str) -> list[ApiKey]: ...

    async def revoke_api_key(self, merchant_id: str, key_id: str, at: datetime) -> bool: ...


class WalletRepository(Protocol):
    async def add(self, wallet: Wallet) -> None:
        """Raises Conflict when a concurrent request registered the same wallet first."""
        ...

    async def for_network(self, merchant_id: str, network: str) -> Wallet | None: ...

    async def by_key_identity(self, network: str, key_identity: str) -> Wallet | None:
        """The wallet that holds this key material on `network` (any merchant's), or None."""
        ...

    async def release_key(self, wallet_id: str) -> Wallet:
        """Take the key from the wallet (it hands out no more addresses); the wallet as it was
        locked, so its next_index counts every address it handed out."""
        ...

    async def hold_key(self, wallet_id: str, key_identity: str, next_index: int) -> None:
        """Give the wallet the key back, continuing at `next_index` or beyond."""
        ...

    async def reserve_index(self, wallet_id: str) -> tuple[int, Wallet]:
        """Take the wallet's next derivation index; also answers the wallet as locked.

        The UPDATE row-locks the wallet until commit, so concurrent invoices serialize here and
        never share an index; a rollback gives the index back, so none is skipped either.
        """
        ...

    async def get(self, merchant_id: str, wallet_id: str) -> Wallet | None:
        """The merchant's wallet `wallet_id`; None for another merchant's or an unknown one."""
        ...

    async def set_gap_policy(self, wallet_id: str, gap_limit: int, on_gap: str) -> None: ...

    async def mark_gap_warned(self, wallet_id: str, run_start: int, threshold: int) -> None:
        """Remember the run of unused addresses (its first index) and the threshold warned."""
        ...

    async def paid_gaps(self, wallet_id: str) -> tuple[int | None, int]:
        """(the highest paid index or None, the widest distance between a paid index and the
        paid one before it — from -1 for the first —, 0 without payments). Reads every paid
        invoice of the wallet: not for hot paths."""
        ...

    async def highest_paid_index(self, wallet_id: str) -> int | None:
        """The highest derivation index of the wallet whose address received a payment that
        still stands (mempool or mined; an orphaned one — replaced, double-spent, reorged out —
        left nothing a wallet app would find), or None.
        """
        ...

    async def list(self, merchant_id: str) -> list[Wallet]: ...


class InvoiceRepository(Protocol):
    async def add(self, invoice: Invoice) -> None:
        """Raises Conflict `address_in_use` when another invoice already has the address."""
        ...

    async def get(self, invoice_id: str, *, merchant_id: str | None = None) -> Invoice | None:
        """The invoice, or None — also when it belongs to another merchant than `merchant_id`."""
        ...

    async def lock(self, invoice_id: str) -> Invoice | None:
        """Read for update: the row stays locked until commit (SQLite: the db write lock)."""
        ...

    async def page(
        self, merchant_id: str, filters: InvoiceFilter, *, before_id: str | None, limit: int
    ) -> list[Invoice]:
        """Newest first; `before_id` is the cursor (ids are time-ordered)."""
        ...

    async def save_state(
        self,
        invoice_id: str,
        *,
        status: InvoiceStatus,
        additional_status: AdditionalStatus,
        amount_paid: int,
        at: datetime,
    ) -> None: ...

    async def watched(
        self, network: str, addresses: Collection[str], now: datetime
    ) -> dict[str, str]:
        """address -> invoice id, for those of `addresses` an invoice still watches at `now`.

        Cost follows the number of candidates in a block, not the number of watched addresses.
        """
        ...

    async def oldest_created(self, network: str) -> datetime | None:
        """Creation time of the network's oldest invoice, if any."""
        ...

    async def due_for_expiry(
        self, network: str, reached: datetime, limit: int = 500
    ) -> list[str]: ...


class PaymentRepository(Protocol):
    async def add_if_new(self, payment: Payment) -> bool:
        """Insert unless (network, txid, position) exists; True when this call created it."""
        ...

    async def get_by_key(self, network: str, txid: str, position: str) -> Payment | None: ...

    async def for_invoice(self, invoice_id: str) -> list[Payment]: ...

    async def for_invoices(self, invoice_ids: Sequence[str]) -> dict[str, list[Payment]]: ...

    async def counted_above(self, network: str, height: int) -> list[Payment]:
        """Counted payments in blocks above `height` (what a reorg to `height` takes away)."""
        ...

    async def pending(self, network: str) -> list[Payment]:
        """Mined payments still short of their confirmations."""
        ...

    async def statuses(
        self, network: str, txids: Collection[str]
    ) -> dict[tuple[str, str], PaymentStatus]:
        """(txid, position) -> status of the stored payments of `txids`."""
        ...

    async def unmined(self, network: str) -> list[Payment]:
        """Counted payments seen in the mempool and not (yet) in a block."""
        ...

    async def update(self, payment_id: str, **values: Any) -> None: ...

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
        after it was orphaned.
        """
        ...


class ChainRepository(Protocol):
    async def cursor(self, network: str) -> ChainCursor | None: ...

    async def start_cursor(self, network: str, block: BlockRef, at: datetime) -> bool:
        """Place the first cursor; False if another tracker placed one first."""
        ...

    async def move_cursor(
        self, network: str, expected: ChainCursor, block: BlockRef, at: datetime
    ) -> bool:
        """Compare-and-set: move only if nobody else moved it since `expected` was read.

        Two trackers on one network both scan; only one commit wins, the other rolls back.
        """
        ...

    async def mark_synced(self, network: str, expected: ChainCursor, at: datetime) -> None: ...

    async def add_blocks(self, network: str, blocks: Sequence[BlockRef]) -> None: ...

    async def blocks_from(self, network: str, low: int) -> list[BlockRef]:
        """Stored canonical blocks at heights >= low, highest first."""
        ...

    async def forget_above(self, network: str, height: int) -> None: ...

    async def prune_below(self, network: str, height: int) -> None: ...


class EventRepository(Protocol):
    async def add(self, event: Event) -> None: ...

    async def get(self, merchant_id: str, event_id: str) -> Event | None: ...

    async def after(
        self, merchant_id: str, after_seq: int, limit: int, *, invoice_id: str | None = None
    ) -> list[Event]: ...


class WebhookRepository(Protocol):
    async def add_endpoint(self, endpoint: WebhookEndpoint) -> None: ...

    async def endpoint(self, merchant_id: str, endpoint_id: str) -> WebhookEndpoint | None: ...

    async def endpoints(self, merchant_id: str) -> list[WebhookEndpoint]: ...

    async def update_endpoint(self, endpoint_id: str, **values: Any) -> None: ...

    async def delete_endpoint(self, endpoint_id: str) -> None: ...

    async def add_delivery(self, delivery: WebhookDelivery) -> None: ...

    async def delivery(self, merchant_id: str, delivery_id: str) -> WebhookDelivery | None: ...

    async def deliveries(
        self, endpoint_id: str, *, before_id: str | None, limit: int
    ) -> list[WebhookDelivery]: ...

    async def attempts(self, delivery_ids: list[str]) -> dict[str, list[WebhookAttempt]]: ...

    async def claim_due(
        self,
        now: datetime,
        *,
        limit: int,
        per_endpoint: int,
        lease: timedelta,
        probe_after_failures: int = 5,
    ) -> list[DueDelivery]:
        """Lease up to `limit` due deliveries, at most `per_endpoint` from any one endpoint.

        The per-endpoint cap keeps a slow or failing endpoint from filling the batch, so one
        merchant's dead server never delays another's webhooks. Slots go round-robin (every
        endpoint's first delivery before anyone's second), endpoints that have been failing
        come last within a round, and one failing `probe_after_failures` times in a row gets a
        single probe per batch (a circuit breaker, half-open until an attempt succeeds).
        The lease (not a held lock) lets several dispatchers share the table; an expired lease
        is simply claimed again.
        """
        ...

    async def record_attempt(
        self,
        delivery_id: str,
        *,
        attempted_at: datetime,
        status_code: int | None,
        duration_ms: int,
        error: str | None,
        response_excerpt: str | None,
        outcome: str,
        next_attempt_at: datetime,
    ) -> None:
        """Store one attempt and the delivery's new state; `outcome` is the delivery status."""
        ...

    async def record_endpoint_outcome(self, endpoint_id: str, *, succeeded: bool) -> None:
        """Count failed attempts in a row (a success resets it); claim_due's breaker reads it."""
        ...

    async def reschedule(self, delivery_id: str, at: datetime) -> None:
        """Queue a delivery again now (manual redelivery); its attempt history is kept."""
        ...


class IdempotencyRepository(Protocol):
    async def insert(
        self, merchant_id: str, key: str, request_hash: str, now: datetime, expires_at: datetime
    ) -> bool: ...

    async def get(self, merchant_id: str, key: str) -> IdempotencyRecord | None: ...

    async def relock(
        self,
        merchant_id: str,
        key: str,
        stale_before: datetime,
        now: datetime,
        request_hash: str,
        expires_at: datetime,
    ) -> bool:
        """Take over an abandoned in-progress or expired key (its request died or aged out)."""
        ...

    async def complete(
        self, merchant_id: str, key: str, locked_at: datetime, status: int, body: str
    ) -> bool:
        """Store the answer, only if this request still holds the claim it took at `locked_at`
        (a request slower than the stale limit may have lost it to a retry).
        """
        ...

    async def release(self, merchant_id: str, key: str) -> None: ...


class UserRepository(Protocol):
    async def add(self, user: DashboardUser) -> None:
        """Raises Conflict when the e-mail is taken."""
        ...

    async def by_email(self, email: str) -> DashboardUser | None: ...

    async def get(self, user_id: str) -> DashboardUser | None: ...

    async def record_failure(
        self, user_id: str, *, max_failures: int, lock_until: datetime
    ) -> tuple[int, datetime | None]:
        """Count one failed login and lock the account once `max_failures` are reached, in a
        single statement: concurrent failures each see the count the others left, so none can
        slip past the limit. Returns the new count and lock deadline.
        """
        ...

    async def record_success(
        self, user_id: str, at: datetime, password_hash: str, *, now: datetime
    ) -> bool:
        """Reset the failure count, unless a lock is in force at `now` (one set by a concurrent
        failure since the caller looked): then change nothing and return False.
        """
        ...

    async def set_totp(
        self, user_id: str, secret_ciphertext: str | None, step: int | None
    ) -> None: ...

    async def use_totp_step(self, user_id: str, step: int) -> bool:
        """Record `step` as used; False when it (or a later one) already was: a replay."""
        ...


class SessionRepository(Protocol):
    async def add(self, session: DashboardSession) -> None: ...

    async def get(self, token_hash: str) -> DashboardSession | None: ...

    async def touch(self, token_hash: str, at: datetime) -> None: ...

    async def remove(self, token_hash: str) -> None: ...

    async def remove_stale(self, user_id: str, *, idle_before: datetime, now: datetime) -> None:
        """Drop the user's sessions that are past either timeout."""
        ...


class ReportRepository(Protocol):
    async def search_invoices(
        self, merchant_id: str, search: InvoiceSearch, *, before_id: str | None, limit: int
    ) -> list[Invoice]:
        """Newest first; `before_id` is the cursor (ids are time-ordered)."""
        ...

    async def amounts_since(self, merchant_id: str, since: datetime) -> list[AmountRow]:
        """Figures of the invoices created or settled since `since`, plus every one in progress."""
        ...

    async def events_for_invoice(self, merchant_id: str, invoice_id: str) -> list[Event]: ...

    async def deliveries_for_events(
        self, merchant_id: str, event_ids: Sequence[str]
    ) -> list[DeliveryView]: ...

    async def attempts(self, delivery_ids: Sequence[str]) -> dict[str, list[WebhookAttempt]]: ...

    async def invoice_counts(self, merchant_id: str) -> dict[str, int]: ...

    async def export_invoices(
        self, merchant_id: str, start: datetime, end: datetime, *, after_id: str | None, limit: int
    ) -> list[Invoice]:
        """Invoices created in [start, end), oldest first, keyset-paged by id."""
        ...

    async def export_payments(
        self, merchant_id: str, start: datetime, end: datetime, *, after_id: str | None, limit: int
    ) -> list[PaymentExportRow]:
        """Payments first seen in [start, end) on the merchant's invoices, oldest first."""
        ...


class TreasuryRepository(Protocol):
    async def add(self, entry: TreasuryAddress) -> None:
        """Raises Conflict (`treasury_role_exists`) when the merchant already has the role on
        the network."""
        ...

    async def get(self, merchant_id: str, entry_id: str) -> TreasuryAddress | None:
        """The merchant's entry; None for another merchant's or an unknown one."""
        ...

    async def for_role(
        self, merchant_id: str, network: str, role: str
    ) -> TreasuryAddress | None: ...

    async def list(self, merchant_id: str) -> list[TreasuryAddress]: ...
