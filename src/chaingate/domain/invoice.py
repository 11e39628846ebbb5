"""The invoice state machine: given an invoice and its payments, decide status and flags.

Statuses follow BTCPay's model so merchants feel at home, stricter where it matters:

    new --(full amount seen in time)--> processing --(enough confirmations)--> settled
    new --(expiry reached)--> expired
    processing --(a not-yet-confirmed payment vanished)--> new
    processing/settled --(a payment that had reached its confirmations vanished)--> invalid
    invalid --(mined payments cover the amount again)--> processing --> settled

`settled` and `expired` are terminal for the status; payments that arrive later are still
recorded and show in `additional_status` (`overpaid`, `paid_late`). `invalid` is terminal only
while the money is gone: a reorged-out payment is often mined again (its transaction goes back
to the mempool), and then the chain, not our earlier verdict, decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from chaingate.domain.chain import COINBASE_MATURITY
from chaingate.domain.money import threshold_with_tolerance


class InvoiceStatus(StrEnum):
    NEW = "new"
    PROCESSING = "processing"
    SETTLED = "settled"
    EXPIRED = "expired"
    INVALID = "invalid"


class AdditionalStatus(StrEnum):
    NONE = "none"
    UNDERPAID = "underpaid"
    OVERPAID = "overpaid"
    PAID_LATE = "paid_late"


class PaymentStatus(StrEnum):
    PENDING = "pending"  # seen, fewer confirmations than required
    CONFIRMED = "confirmed"  # reached the invoice's required confirmations
    ORPHANED = "orphaned"  # its block left the canonical chain
    FAILED = "failed"  # its transaction failed on chain
    WRONG_ASSET = "wrong_asset"  # another asset than the invoice's: recorded, never counted
    DUST = "dust"  # below the asset's dust threshold (address poisoning): recorded, never counted

    @property
    def counts(self) -> bool:
        return self in (PaymentStatus.PENDING, PaymentStatus.CONFIRMED)


# Statuses new money never moves (`invalid` moves when its money is mined again, see evaluate).
TERMINAL = frozenset({InvoiceStatus.SETTLED, InvoiceStatus.EXPIRED})


@dataclass(frozen=True, slots=True)
class PaymentFacts:
    amount: int
    status: PaymentStatus
    paid_at: datetime  # block timestamp: when the chain says the money moved
    reached_confirmations: bool  # once confirmed, losing it later is a reversal, not a retry
    mined: bool = True  # False: a mempool sighting, which a replacement (RBF) may still undo


@dataclass(frozen=True, slots=True)
class InvoiceFacts:
    status: InvoiceStatus
    amount_due: int
    tolerance_bps: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Evaluation:
    status: InvoiceStatus
    additional_status: AdditionalStatus
    amount_paid: int
    transitions: tuple[InvoiceStatus, ...]  # every status entered, in order (for events)


def evaluate(
    invoice: InvoiceFacts, payments: Sequence[PaymentFacts], *, expiry_reached: bool
) -> Evaluation:
    """Decide the invoice's status from scratch; `transitions` lists each status newly entered.

    `expiry_reached` is the caller's proof that the chain has passed `expires_at` (a verified
    block at or after it); a payment in a block after expiry is such proof too.

    Mempool sightings may make an invoice `processing` but never `settled`, and a settled
    invoice's amount (hence `overpaid`) counts mined payments only: a fee bump mined before
    the mempool pass noticed its original must not announce the money twice.

    An `invalid` invoice whose counted MINED payments cover the amount again goes back through
    `processing` (to `settled` once they are confirmed): the merchant's money is on chain.
    """
    counted = [p for p in payments if p.status.counts]
    paid = sum(p.amount for p in counted)
    mined_paid = sum(p.amount for p in counted if p.mined)
    in_time = sum(p.amount for p in counted if p.paid_at <= invoice.expires_at)
    late = paid - in_time
    confirmed = sum(p.amount for p in counted if p.status is PaymentStatus.CONFIRMED)
    threshold = threshold_with_tolerance(invoice.amount_due, invoice.tolerance_bps)
    expired_now = expiry_reached or late > 0
    lost_confirmed = any(p.reached_confirmations and not p.status.counts for p in payments)

    path: list[InvoiceStatus] = []
    status = invoice.status
    if status is InvoiceStatus.INVALID and mined_paid >= threshold:
        # The money is in blocks again (re-mined after the reorg, or paid anew). A mempool
        # sighting is not enough here: the reversed transaction may be double-spent next.
        status = _enter(path, InvoiceStatus.PROCESSING)
    if status is InvoiceStatus.NEW:
        if in_time >= threshold:
            status = _enter(path, InvoiceStatus.PROCESSING)
        elif expired_now:
            status = _enter(path, InvoiceStatus.EXPIRED)
    if status is InvoiceStatus.PROCESSING:
        if paid < threshold:
            target = InvoiceStatus.INVALID if lost_confirmed else InvoiceStatus.NEW
            status = _enter(path, target)
        elif confirmed >= threshold:
            status = _enter(path, InvoiceStatus.SETTLED)
    elif status is InvoiceStatus.SETTLED and lost_confirmed and confirmed < threshold:
        status = _enter(path, InvoiceStatus.INVALID)

    if status is InvoiceStatus.SETTLED:
        paid = mined_paid
    return Evaluation(
        status=status,
        additional_status=_additional(status, invoice, paid, in_time, late, threshold),
        amount_paid=paid,
        transitions=tuple(path),
    )


def _enter(path: list[InvoiceStatus], status: InvoiceStatus) -> InvoiceStatus:
    path.append(status)
    return status


def _additional(
    status: InvoiceStatus,
    invoice: InvoiceFacts,
    paid: int,
    in_time: int,
    late: int,
    threshold: int,
) -> AdditionalStatus:
    if status is InvoiceStatus.EXPIRED and (late > 0 or in_time >= threshold):
        # Money after expiry, or the full amount in time but counted only after the invoice
        # expired (a reorg brought it back, or a block stamped earlier than the one that
        # proved expiry): never silent, the merchant decides.
        return AdditionalStatus.PAID_LATE
    if paid > invoice.amount_due:
        return AdditionalStatus.OVERPAID
    if 0 < paid < threshold:
        return AdditionalStatus.UNDERPAID
    return AdditionalStatus.NONE


def payment_status_for(
    confirmations: int, required_confirmations: int, *, coinbase: bool = False
) -> PaymentStatus:
    """A counted payment is confirmed once it has the invoice's required confirmations.

    A coinbase output cannot be spent before it matures, so it waits for that too; a mempool
    sighting (0 confirmations) is always pending.
    """
    needed = max(required_confirmations, 1)
    if coinbase:
        needed = max(needed, COINBASE_MATURITY)
    if confirmations >= needed:
        return PaymentStatus.CONFIRMED
    return PaymentStatus.PENDING
