"""Dashboard test helpers: a signed-in HTTP client, and invoices with payments and webhooks."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import httpx

from chaingate.adapters.db.uow import Database
from chaingate.adapters.passwords import Argon2PasswordHasher
from chaingate.domain.events import EventType
from chaingate.domain.ids import new_id
from chaingate.domain.invoice import AdditionalStatus, InvoiceStatus, PaymentStatus
from chaingate.domain.models import Payment
from chaingate.services.dashboard_auth import create_user
from chaingate.services.events import emit

PASSWORD = "correct horse battery staple"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match is not None, "no CSRF token in the page"
    return match.group(1)


async def add_user(db: Database, merchant_id: str, email: str, now: datetime) -> None:
    async with db.uow() as uow:
        await create_user(uow, merchant_id, email, PASSWORD, now, passwords=Argon2PasswordHasher())


async def log_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, code: str = ""
) -> httpx.Response:
    """Fill in and send the login form; the client keeps the session cookie."""
    form = await client.get("/dashboard/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/dashboard/login",
        data={"email": email, "password": password, "code": code, "csrf_token": csrf_of(form.text)},
    )


@dataclass(frozen=True)
class SeededPayment:
    txid: str
    amount: int


async def settle_with_payment(
    db: Database,
    invoice_id: str,
    amount: int,
    at: datetime,
    *,
    txid: str | None = None,
    status: InvoiceStatus = InvoiceStatus.SETTLED,
) -> SeededPayment:
    """Record a confirmed payment for the invoice and move it to `status`, with its events
    (and so its webhook deliveries), in one transaction as the tracker would."""
    txid = txid or "0x" + new_id("tx").encode().hex()[:64].ljust(64, "0")
    async with db.uow() as uow:
        invoice = await uow.invoices.get(invoice_id)
        assert invoice is not None
        payment = Payment(
            id=new_id("pay"),
            invoice_id=invoice.id,
            network=invoice.network,
            txid=txid,
            position="native",
            address=invoice.address,
            asset=invoice.asset,
            token_contract=None,
            from_address="0x" + "ab" * 20,
            amount=amount,
            block_number=42,
            block_hash="0x" + "cd" * 32,
            paid_at=at,
            confirmations=invoice.required_confirmations,
            status=PaymentStatus.CONFIRMED,
            reached_confirmations=True,
            created_at=at,
            updated_at=at,
        )
        assert await uow.payments.add_if_new(payment)
        await uow.invoices.save_state(
            invoice.id,
            status=status,
            additional_status=AdditionalStatus.NONE,
            amount_paid=amount,
            at=at,
        )
        for event_type in (EventType.INVOICE_PAYMENT_RECEIVED, EventType.INVOICE_SETTLED):
            if event_type is EventType.INVOICE_SETTLED and status is not InvoiceStatus.SETTLED:
                continue
            await emit(
                uow,
                merchant_id=invoice.merchant_id,
                event_type=event_type,
                data={"object": "invoice", "id": invoice.id},
                at=at,
                invoice_id=invoice.id,
            )
        await uow.commit()
    return SeededPayment(txid, amount)
