"""The invoice state machine, case by case (pure logic: no database, no node)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chaingate.domain.events import EventType, status_events
from chaingate.domain.invoice import (
    AdditionalStatus as A,
)
from chaingate.domain.invoice import (
    InvoiceFacts,
    PaymentFacts,
    evaluate,
    payment_status_for,
)
from chaingate.domain.invoice import (
    InvoiceStatus as S,
)
from chaingate.domain.invoice import (
    PaymentStatus as P,
)

EXPIRES = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BEFORE = EXPIRES - timedelta(minutes=5)
AFTER = EXPIRES + timedelta(minutes=5)


def invoice(status: S = S.NEW, due: int = 1000, tolerance_bps: int = 0) -> InvoiceFacts:
    return InvoiceFacts(
        status=status, amount_due=due, tolerance_bps=tolerance_bps, expires_at=EXPIRES
    )


def pay(
    amount: int,
    status: P = P.PENDING,
    at: datetime = BEFORE,
    reached: bool | None = None,
    mined: bool = True,
) -> PaymentFacts:
    return PaymentFacts(
        amount=amount,
        status=status,
        paid_at=at,
        reached_confirmations=status is P.CONFIRMED if reached is None else reached,
        mined=mined,
    )


def test_nothing_paid_stays_new() -> None:
    result = evaluate(invoice(), [], expiry_reached=False)
    assert (result.status, result.additional_status, result.transitions) == (S.NEW, A.NONE, ())


def test_full_amount_seen_goes_processing_then_settles_on_confirmations() -> None:
    seen = evaluate(invoice(), [pay(1000)], expiry_reached=False)
    assert seen.status is S.PROCESSING and seen.transitions == (S.PROCESSING,)
    confirmed = evaluate(invoice(S.PROCESSING), [pay(1000, P.CONFIRMED)], expiry_reached=False)
    assert confirmed.status is S.SETTLED and confirmed.transitions == (S.SETTLED,)


def test_already_confirmed_payment_passes_through_processing() -> None:
    result = evaluate(invoice(), [pay(1000, P.CONFIRMED)], expiry_reached=False)
    assert result.transitions == (S.PROCESSING, S.SETTLED)


def test_partial_payments_accumulate() -> None:
    one = evaluate(invoice(), [pay(400)], expiry_reached=False)
    assert (one.status, one.additional_status, one.amount_paid) == (S.NEW, A.UNDERPAID, 400)
    both = evaluate(invoice(), [pay(400), pay(600)], expiry_reached=False)
    assert (both.status, both.additional_status) == (S.PROCESSING, A.NONE)


def test_underpaid_then_expired() -> None:
    result = evaluate(invoice(), [pay(400)], expiry_reached=True)
    assert (result.status, result.additional_status) == (S.EXPIRED, A.UNDERPAID)


def test_overpaid() -> None:
    result = evaluate(invoice(), [pay(1500, P.CONFIRMED)], expiry_reached=False)
    assert (result.status, result.additional_status) == (S.SETTLED, A.OVERPAID)


def test_tolerance_accepts_a_small_shortfall() -> None:
    result = evaluate(invoice(tolerance_bps=100), [pay(990)], expiry_reached=False)
    assert result.status is S.PROCESSING
    short = evaluate(invoice(tolerance_bps=100), [pay(989)], expiry_reached=False)
    assert short.status is S.NEW


def test_payment_after_expiry_is_recorded_as_paid_late() -> None:
    result = evaluate(invoice(), [pay(1000, at=AFTER)], expiry_reached=False)
    assert (result.status, result.additional_status, result.amount_paid) == (
        S.EXPIRED,
        A.PAID_LATE,
        1000,
    )
    later = evaluate(invoice(S.EXPIRED), [pay(1000, at=AFTER)], expiry_reached=True)
    assert later.status is S.EXPIRED and later.transitions == ()


def test_payment_mined_before_expiry_counts_even_if_seen_late() -> None:
    result = evaluate(invoice(), [pay(1000, at=BEFORE)], expiry_reached=True)
    assert result.status is S.PROCESSING


def test_unconfirmed_payment_vanishing_reopens_the_invoice() -> None:
    result = evaluate(invoice(S.PROCESSING), [pay(1000, P.ORPHANED)], expiry_reached=False)
    assert (result.status, result.transitions, result.amount_paid) == (S.NEW, (S.NEW,), 0)


def test_confirmed_payment_vanishing_invalidates() -> None:
    lost = pay(1000, P.ORPHANED, reached=True)
    settled = evaluate(invoice(S.SETTLED), [lost], expiry_reached=False)
    assert settled.status is S.INVALID and settled.transitions == (S.INVALID,)
    processing = evaluate(invoice(S.PROCESSING), [lost, pay(500)], expiry_reached=False)
    assert processing.status is S.INVALID


def test_failed_payment_does_not_count() -> None:
    result = evaluate(invoice(), [pay(1000, P.FAILED)], expiry_reached=False)
    assert result.status is S.NEW and result.amount_paid == 0


def test_settled_stays_settled_when_an_extra_pending_payment_vanishes() -> None:
    result = evaluate(
        invoice(S.SETTLED), [pay(1000, P.CONFIRMED), pay(5, P.ORPHANED)], expiry_reached=False
    )
    assert result.status is S.SETTLED and result.transitions == ()


def test_expired_does_not_move_on_new_money() -> None:
    result = evaluate(invoice(S.EXPIRED), [pay(1000, P.CONFIRMED)], expiry_reached=True)
    assert result.status is S.EXPIRED and result.transitions == ()


def test_invalid_invoice_whose_payment_is_mined_again_is_re_decided() -> None:
    # The reorged-out payment is in a block again (same row, counted again, not yet confirmed).
    back = pay(1000, P.PENDING, reached=True)
    seen = evaluate(invoice(S.INVALID), [back], expiry_reached=True)
    assert (seen.status, seen.transitions, seen.amount_paid) == (
        S.PROCESSING,
        (S.PROCESSING,),
        1000,
    )
    confirmed = evaluate(invoice(S.INVALID), [pay(1000, P.CONFIRMED)], expiry_reached=True)
    assert confirmed.status is S.SETTLED
    assert confirmed.transitions == (S.PROCESSING, S.SETTLED)


def test_invalid_invoice_stays_invalid_until_mined_money_covers_it() -> None:
    in_mempool = evaluate(invoice(S.INVALID), [pay(1000, mined=False)], expiry_reached=False)
    assert (in_mempool.status, in_mempool.transitions) == (S.INVALID, ())
    short = evaluate(invoice(S.INVALID), [pay(600, P.CONFIRMED)], expiry_reached=False)
    assert (short.status, short.additional_status) == (S.INVALID, A.UNDERPAID)
    lost = evaluate(invoice(S.INVALID), [pay(1000, P.ORPHANED, reached=True)], expiry_reached=True)
    assert (lost.status, lost.transitions) == (S.INVALID, ())


def test_full_payment_in_time_counted_after_expiry_is_flagged_paid_late() -> None:
    # Expired on a block stamped after expires_at; the next block (stamped earlier, legal on
    # Bitcoin) brings the whole amount: the invoice stays expired but says so.
    result = evaluate(invoice(S.EXPIRED), [pay(1000, at=BEFORE)], expiry_reached=False)
    assert (result.status, result.additional_status, result.amount_paid) == (
        S.EXPIRED,
        A.PAID_LATE,
        1000,
    )
    partial = evaluate(invoice(S.EXPIRED), [pay(400, at=BEFORE)], expiry_reached=True)
    assert partial.additional_status is A.UNDERPAID


def test_settled_amount_counts_mined_payments_only() -> None:
    # A fee bump mined (and confirmed) before the mempool pass saw its original disappear.
    original = pay(1000, mined=False)
    result = evaluate(
        invoice(S.PROCESSING), [original, pay(1000, P.CONFIRMED)], expiry_reached=False
    )
    assert (result.status, result.additional_status, result.amount_paid) == (
        S.SETTLED,
        A.NONE,
        1000,
    )
    overpaid = evaluate(
        invoice(S.SETTLED), [pay(1000, P.CONFIRMED), pay(300, mined=True)], expiry_reached=False
    )
    assert (overpaid.additional_status, overpaid.amount_paid) == (A.OVERPAID, 1300)


def test_mempool_sightings_make_processing_never_settled() -> None:
    result = evaluate(invoice(), [pay(1000, mined=False)], expiry_reached=False)
    assert (result.status, result.amount_paid) == (S.PROCESSING, 1000)


def test_confirmation_threshold() -> None:
    assert payment_status_for(2, 3) is P.PENDING
    assert payment_status_for(3, 3) is P.CONFIRMED
    assert payment_status_for(1, 0) is P.CONFIRMED  # a mined payment has one confirmation


def test_mempool_sighting_is_pending_and_coinbase_waits_for_maturity() -> None:
    assert payment_status_for(0, 1) is P.PENDING  # seen in the mempool: no confirmation yet
    assert payment_status_for(99, 1, coinbase=True) is P.PENDING
    assert payment_status_for(100, 1, coinbase=True) is P.CONFIRMED
    assert payment_status_for(120, 150, coinbase=True) is P.PENDING  # the larger rule wins
    assert payment_status_for(150, 150, coinbase=True) is P.CONFIRMED


def test_status_events_say_which_status_they_left() -> None:
    settle = status_events(S.NEW, (S.PROCESSING, S.SETTLED))
    assert [(e.type, e.status, e.previous_status) for e in settle] == [
        (EventType.INVOICE_PROCESSING, S.PROCESSING, S.NEW),
        (EventType.INVOICE_SETTLED, S.SETTLED, S.PROCESSING),
    ]
    assert status_events(S.SETTLED, ()) == []


def test_leaving_invalid_is_announced_as_revalidated_first() -> None:
    events = status_events(S.INVALID, (S.PROCESSING, S.SETTLED))
    assert [(e.type, e.status, e.previous_status) for e in events] == [
        (EventType.INVOICE_REVALIDATED, S.SETTLED, S.INVALID),
        (EventType.INVOICE_PROCESSING, S.PROCESSING, S.INVALID),
        (EventType.INVOICE_SETTLED, S.SETTLED, S.PROCESSING),
    ]
    later = status_events(S.PROCESSING, (S.SETTLED,))  # confirmed in a later block
    assert [e.type for e in later] == [EventType.INVOICE_SETTLED]
