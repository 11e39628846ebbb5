"""Reconciling the gateway's books with the chain: the oracle shared by the fault tests.

Expectations come from what the payer actually sent (its receipts), never from the gateway's
own code: an invoice is settled when its payments reach the amount (all are confirmed by the
time these checks run), short of it is `new`/`underpaid`, above it `overpaid`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from tests.support.crash_run import Plan
from tests.support.db_probe import DbProbe
from tests.support.payer import SentTransfer

COUNTED = ("pending", "confirmed")


def expected_state(plan: Plan) -> tuple[int, str, str]:
    """(amount paid in base units, status, additional_status) once every payment is confirmed."""
    paid = sum(plan.parts)
    if paid >= plan.amount:
        return paid, "settled", "overpaid" if paid > plan.amount else "none"
    return paid, "new", "underpaid"


def to_invoice(plans: list[Plan], sent: list[SentTransfer]) -> list[SentTransfer]:
    """The transfers that reached an invoice's address, in any asset."""
    addresses = {p.address for p in plans}
    return [t for t in sent if t.to in addresses]


def row_status(plan: Plan, transfer: SentTransfer) -> str:
    """A confirmed payment in the invoice's asset counts; another asset is only recorded."""
    return "confirmed" if transfer.asset == plan.currency else "wrong_asset"


async def check_payments_match_chain(
    probe: DbProbe, plans: list[Plan], sent: list[SentTransfer]
) -> None:
    """One payment row per on-chain transfer to an invoice (txid, position), nothing else:
    none for a transfer to an address no invoice owns, none twice."""
    payments = await probe.rows("payments")
    keyed = {(p["txid"], p["position"]): p for p in payments}
    reaching = to_invoice(plans, sent)
    assert len(payments) == len(reaching), (
        f"{len(payments)} payment rows for {len(reaching)} on-chain transfers to invoices"
    )
    plan_of = {p.address: p for p in plans}
    for transfer in reaching:
        row = keyed.get((transfer.txid, transfer.position))
        assert row is not None, f"transfer {transfer} was never recorded"
        plan = plan_of[transfer.to]
        seen = (row["amount"], row["asset"], row["status"], row["invoice_id"])
        wanted = (transfer.amount, transfer.asset, row_status(plan, transfer), plan.invoice_id)
        assert seen == wanted, (transfer, seen)


async def check_invoices_reconcile(probe: DbProbe, plans: list[Plan]) -> None:
    """amount_paid is the sum of the counted payment rows; status follows from the payments."""
    payments = await probe.rows("payments")
    counted: dict[str, int] = defaultdict(int)
    for payment in payments:
        if payment["status"] in COUNTED:
            counted[payment["invoice_id"]] += payment["amount"]
    invoices = {i["id"]: i for i in await probe.rows("invoices")}
    assert len(invoices) == len(plans)
    for plan in plans:
        assert plan.invoice_id is not None
        invoice = invoices[plan.invoice_id]
        assert invoice["amount_paid"] == counted[plan.invoice_id], plan.key
        state = (invoice["amount_paid"], invoice["status"], invoice["additional_status"])
        assert state == expected_state(plan), (plan.key, state, expected_state(plan))


def check_event_counts(
    plans: list[Plan], sent: list[SentTransfer], events: list[dict[str, Any]]
) -> None:
    """Per invoice: created once, one payment_received per transfer, each status entered once."""
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)), "the event feed repeated an event"
    by_invoice: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        by_invoice[event["data"]["id"]].append(event)
    assert set(by_invoice) == {p.invoice_id for p in plans}
    for plan in plans:
        assert plan.invoice_id is not None
        paid, _, _ = expected_state(plan)
        arrived = [t for t in sent if t.to == plan.address]  # wrong-asset ones are announced too
        expected = Counter({"invoice.created": 1, "invoice.payment_received": len(arrived)})
        if paid >= plan.amount:
            expected.update(["invoice.processing", "invoice.settled"])
        mine = by_invoice[plan.invoice_id]
        assert Counter(e["type"] for e in mine) == expected, (plan.key, [e["type"] for e in mine])
        received = [e["payment"]["txid"] for e in mine if e["type"] == "invoice.payment_received"]
        assert len(received) == len(set(received)), f"{plan.key}: a payment announced twice"
